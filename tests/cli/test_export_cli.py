"""`brickwork export` as a user runs it: a trained run in each format, and bad input."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import brickwork
from brickwork.cli import main
from brickwork.train.weights import read_metadata

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")

COMMAND = Path(sys.executable).with_name("brickwork")
SUFFIX = {"onnx": ".onnx", "pt2": ".pt2", "torchscript": ".ts"}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COMMAND), *args], capture_output=True, text=True, timeout=300, check=False
    )


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The command in this process (no start-up cost): exit status, stdout, stderr."""
    try:
        status = main(list(args))
    except SystemExit as exit:  # argparse's errors
        status = int(exit.code or 0)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run, kept small: a one-conv classifier, one epoch on synthetic 6×6 images."""
    root = tmp_path_factory.mktemp("runs")
    spec = root / "tiny.yaml"
    spec.write_text("model: {cnn_classifier: {enc_sizes: [4], dec_sizes: [8]}}\n")
    out = root / "tiny"
    result = run(
        "train", str(spec), "--data", "synthetic:1,6,6,3,30", "--epochs", "1", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    return out


def exported_output(path: Path, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
    """Run an exported file with its own runtime; its output for ``x`` and its metadata."""
    extra = {"brickwork.json": ""}
    if path.suffix == ".onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (out,) = session.run(None, {"input": x.numpy()})
        stored = session.get_modelmeta().custom_metadata_map
        return torch.from_numpy(out), {k: json.loads(v) for k, v in stored.items()}
    if path.suffix == ".pt2":
        out = torch.export.load(path, extra_files=extra).module()(x)
    else:
        out = torch.jit.load(str(path), _extra_files=extra)(x)
    return out, json.loads(extra["brickwork.json"])


@pytest.mark.parametrize("fmt", ["onnx", "pt2", "torchscript"])
def test_export_a_run_in_each_format(trained: Path, fmt: str) -> None:
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")
    result = run("export", str(trained), "--format", fmt)
    assert result.returncode == 0, result.stderr
    path = trained / f"model{SUFFIX[fmt]}"
    assert result.stdout.startswith(f"{path} (")
    assert "checked against PyTorch at batch sizes 2, 3, 1" in result.stdout
    assert result.stderr == ""  # the exporters' warnings and log lines are kept quiet
    model = brickwork.load(trained / "model.safetensors").eval()
    x = torch.randn(4, 1, 6, 6)
    with torch.no_grad():
        got, metadata = exported_output(path, x)
        assert (got - model(x)).abs().max() <= 1e-4
    saved = read_metadata(trained / "model.safetensors")
    assert metadata["input_shape"] == [1, 6, 6]
    assert metadata["input_dtype"] == "float32"
    for key in ("classes", "mean", "std"):
        assert metadata[key] == saved[key], key


def test_out_names_a_file_or_a_folder(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = str(trained / "model.safetensors")
    status, out, err = run_main(
        capsys, "export", model, "--format", "torchscript", "--out", str(tmp_path / "m.pt")
    )
    assert (status, err) == (0, "")
    assert out.startswith(f"{tmp_path / 'm.pt'} (")
    status, out, err = run_main(capsys, "export", model, "--format", "pt2", "--out", str(tmp_path))
    assert (status, err) == (0, "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "model.pt2"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("{tmp}/missing", "--format", "pt2"), "error: {tmp}/missing: no such file"),
        (
            ("{tmp}", "--format", "pt2"),
            "error: {tmp}: no model.safetensors (has the run finished an epoch?)",
        ),
        (
            ("{tmp}/garbage.safetensors", "--format", "pt2"),
            "error: {tmp}/garbage.safetensors: not a readable safetensors file",
        ),
        (
            ("{tmp}/foreign.safetensors", "--format", "pt2"),
            "error: {tmp}/foreign.safetensors: a safetensors file without brickwork's metadata",
        ),
        (
            ("{run}", "--format", "tflite"),
            "error: argument --format: invalid choice: 'tflite' (choose from 'onnx', 'pt2', 'torchscript')",
        ),
        (("{run}",), "error: the following arguments are required: --format"),
        (
            ("{run}", "--format", "pt2", "--out", "{tmp}/no/m.pt2"),
            "error: {tmp}/no/m.pt2: no such directory {tmp}/no\nhint: create it first",
        ),
        (
            ("{run}", "--format", "onnx", "--out", "{tmp}/m.pt2"),
            "error: {tmp}/m.pt2: the onnx format writes .onnx files, not .pt2 (pt2's suffix)\nhint: name it m.onnx, or export to the pt2 format",
        ),
        (
            ("{run}", "--format", "torchscript", "--out", "{tmp}/m.safetensors"),
            "error: {tmp}/m.safetensors: the torchscript format writes .ts or .pt files, not .safetensors\nhint: name it m.ts",
        ),
    ],
)
def test_bad_input_is_one_line_and_status_2(
    trained: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    message: str,
) -> None:
    from safetensors.torch import save_file

    (tmp_path / "garbage.safetensors").write_bytes(b"\x00" * 64)
    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    before = sorted(tmp_path.iterdir())
    status, out, err = run_main(
        capsys, "export", *(a.format(tmp=tmp_path, run=trained) for a in args)
    )
    assert status == 2
    assert out == ""
    assert err.startswith(message.format(tmp=tmp_path))
    assert len(err.strip().splitlines()) <= 2  # the error and, maybe, a hint
    assert sorted(tmp_path.iterdir()) == before


def test_the_installed_command_reports_bad_input_without_a_traceback(tmp_path: Path) -> None:
    result = run("export", str(tmp_path), "--format", "onnx")
    assert result.returncode == 2
    assert (
        result.stderr
        == f"error: {tmp_path}: no model.safetensors (has the run finished an epoch?)\n"
    )


def test_onnx_without_the_extra_says_what_to_install(
    trained: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    status, _, err = run_main(capsys, "export", str(trained), "--format", "onnx")
    assert status == 2
    assert err == (
        "error: ONNX export needs the onnxruntime package, which is not installed\n"
        "hint: pip install 'brickwork[export]'\n"
    )


def test_a_file_that_disagrees_with_pytorch_is_status_1_and_not_written(
    trained: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        sys.modules["brickwork.exporting.check"], "TOLERANCE", -1.0
    )  # nothing agrees
    out = tmp_path / "model.ts"
    args = ("export", str(trained), "--format", "torchscript", "--out", str(out))
    status, _, err = run_main(capsys, *args)
    assert status == 1
    assert err.startswith(
        f"error: {out}: the exported torchscript file's outputs differ from PyTorch's by up to "
    )
    assert err.strip().endswith("it was not written")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(brickwork.ExportError):  # --debug shows the traceback instead
        main(["--debug", *args])


def test_export_replaces_only_an_export_it_wrote(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "model.pt2"
    target.write_bytes(b"someone's file")
    status, _, err = run_main(
        capsys, "export", str(trained), "--format", "pt2", "--out", str(target)
    )
    assert status == 2
    assert "model.pt2 exists and is not a brickwork pt2 export: it was not replaced" in err
    assert target.read_bytes() == b"someone's file"
    status, _, err = run_main(
        capsys, "export", str(trained), "--format", "pt2", "--out", str(target), "--overwrite"
    )
    assert status == 0, err
    status, _, err = run_main(
        capsys, "export", str(trained), "--format", "pt2", "--out", str(target)
    )
    assert status == 0, err  # its own earlier export is replaced without --overwrite


def test_export_checks_the_model_files_digest(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged = tmp_path / "model.safetensors"
    data = bytearray((trained / "model.safetensors").read_bytes())
    data[-2] ^= 0x01
    damaged.write_bytes(bytes(data))
    status, _, err = run_main(capsys, "export", str(damaged), "--format", "torchscript")
    assert status == 2
    assert "SHA-256 differs" in err
    assert "hint: use another copy, or pass --no-verify" in err
    status, _, err = run_main(
        capsys, "export", str(damaged), "--format", "torchscript", "--no-verify"
    )
    assert status == 0, err
