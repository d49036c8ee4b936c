"""brickwork.export: every registered model in every format, metadata, dynamic batch, bad input."""

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import brickwork
from brickwork import ConfigError, ExportError, create_model, export, list_models
from brickwork.train import CheckpointError

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")

FORMATS = ("onnx", "pt2", "torchscript")
SUFFIX = {"onnx": ".onnx", "pt2": ".pt2", "torchscript": ".ts"}
BATCH = 5  # neither the batch size exported at (2) nor one export() checks itself (3, 1)
TOLERANCE = 1e-4

# model name → (small arguments, per-sample input). Every registered model needs a row.
RESNET = {"widths": (4, 8, 8, 8), "n_classes": 3}
FAMILY_CASES: dict[str, tuple[dict[str, Any], tuple[int, ...]]] = {
    "cnn_classifier": (
        {"in_c": 3, "enc_sizes": [4, 8], "dec_sizes": [16], "n_classes": 3, "input_shape": (8, 8)},
        (3, 8, 8),
    ),
    "mlp": ({"in_features": 48, "hidden": [16], "n_classes": 3}, (3, 4, 4)),
    "simple_convnet": ({"in_chans": 3, "widths": [8, 16], "n_classes": 3}, (3, 9, 9)),
    "unet": ({"in_chans": 3, "widths": [4, 8], "n_classes": 2}, (3, 8, 8)),
    **dict.fromkeys(
        (
            "resnet18",
            "resnet34",
            "resnet50",
            "resnet101",
            "resnet152",
            "resnet18_small",
            "resnet34_small",
            "resnet50_small",
        ),
        (RESNET, (3, 16, 16)),
    ),
}
# Exporting a ResNet takes seconds to tens of seconds on two cores in each format, whatever its
# widths, and the variants differ only in depth, block and stem: `make test` exports resnet18
# (basic blocks, ImageNet stem) and resnet50_small (bottlenecks, small stem);
# BRICKWORK_EXPORT_ALL=1 exports every variant (36 cases, about two minutes).
QUICK = ["cnn_classifier", "mlp", "simple_convnet", "unet"]
RESNETS = (
    sorted(n for n in FAMILY_CASES if n.startswith("resnet"))
    if os.environ.get("BRICKWORK_EXPORT_ALL")
    else ["resnet18", "resnet50_small"]
)


def needs(fmt: str) -> None:
    if fmt == "onnx":
        for name in ("onnx", "onnxscript", "onnxruntime"):
            pytest.importorskip(name)


def run_exported(path: Path, fmt: str, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
    """Read an exported file back with its own runtime: the output for ``x`` and the metadata."""
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == ["input"]
        assert isinstance(session.get_inputs()[0].shape[0], str)  # a named, dynamic batch
        (out,) = session.run(None, {"input": x.numpy()})
        stored = session.get_modelmeta().custom_metadata_map
        return torch.from_numpy(out), {k: json.loads(v) for k, v in stored.items()}
    extra = {"brickwork.json": ""}
    if fmt == "pt2":
        program = torch.export.load(path, extra_files=extra)
        out = program.module()(x)
    else:
        out = torch.jit.load(str(path), _extra_files=extra)(x)
    return out, json.loads(extra["brickwork.json"])


def assert_matches(model: nn.Module, path: Path, fmt: str, x: torch.Tensor) -> dict[str, Any]:
    """The exported file gives the model's outputs for ``x``; returns the file's metadata."""
    with torch.no_grad():
        expected = model.eval()(x)
        got, metadata = run_exported(path, fmt, x)
    assert got.shape == expected.shape
    assert (got - expected).abs().max() <= TOLERANCE
    return metadata


def test_every_registered_model_has_a_case() -> None:
    assert sorted(FAMILY_CASES) == list_models()
    assert {type(create_model(n, **FAMILY_CASES[n][0])) for n in list_models()} == {
        type(create_model(n, **FAMILY_CASES[n][0])) for n in QUICK + RESNETS
    }  # every family class is exported by `make test`


def _family_case(name: str, fmt: str) -> Any:
    return pytest.param(name, fmt, marks=pytest.mark.slow if name.startswith("resnet") else ())


@pytest.mark.parametrize(
    ("name", "fmt"), [_family_case(n, f) for n in QUICK + RESNETS for f in FORMATS]
)
def test_registered_model_exports(name: str, fmt: str, tmp_path: Path) -> None:
    needs(fmt)
    kwargs, shape = FAMILY_CASES[name]
    model = create_model(name, **kwargs)
    path = export(model, fmt, tmp_path / f"{name}{SUFFIX[fmt]}", input_shape=shape)
    assert path == tmp_path / f"{name}{SUFFIX[fmt]}"
    metadata = assert_matches(model, path, fmt, torch.randn(BATCH, *shape))
    assert metadata["input_shape"] == list(shape)
    assert metadata["input_dtype"] == "float32"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, nn.Module]:
    """A trained run's model file, with the metadata a run writes."""
    run = tmp_path_factory.mktemp("run")
    model = brickwork.CNNClassifier(1, [4], [8], 3, input_shape=(6, 6))
    extra = {"classes": ["cat", "dog", "owl"], "mean": [0.25], "std": [0.5], "data": "mine"}
    brickwork.save(model, run / "model.safetensors", extra=extra)
    return run, model


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_run_exports_beside_its_model_with_its_metadata(
    saved: tuple[Path, nn.Module], fmt: str
) -> None:
    needs(fmt)
    run, model = saved
    path = export(run, fmt)
    assert path == run / f"model{SUFFIX[fmt]}"
    metadata = assert_matches(model, path, fmt, torch.randn(BATCH, 1, 6, 6))
    assert metadata == {
        "brickwork_version": brickwork.__version__,
        "input_shape": [1, 6, 6],
        "input_dtype": "float32",
        "classes": ["cat", "dog", "owl"],
        "mean": [0.25],
        "std": [0.5],
    }
    path.unlink()


def test_a_file_exports_beside_itself_and_into_a_folder(
    saved: tuple[Path, nn.Module], tmp_path: Path
) -> None:
    run, model = saved
    copy = tmp_path / "digits.safetensors"
    copy.write_bytes((run / "model.safetensors").read_bytes())
    assert export(copy, "torchscript") == tmp_path / "digits.ts"
    folder = tmp_path / "deploy"
    folder.mkdir()
    assert export(str(copy), "pt2", folder) == folder / "digits.pt2"
    assert export(model, "torchscript", tmp_path / "other.pt") == tmp_path / "other.pt"
    assert export(model, "pt2", folder) == folder / "model.pt2"


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_model_of_token_ids(fmt: str, tmp_path: Path) -> None:
    needs(fmt)
    model = brickwork.build(
        {
            "input": [6],
            "input_dtype": "long",
            "model": [
                {"embedding": {"num_embeddings": 7, "embedding_dim": 4}},
                "flatten",
                {"linear": {"out": 3}},
            ],
        }
    )
    path = export(model, fmt, tmp_path / f"ids{SUFFIX[fmt]}")
    metadata = assert_matches(model, path, fmt, torch.randint(0, 7, (BATCH, 6)))
    assert metadata["input_dtype"] == "int64"


class Plain(nn.Module):
    """A model of the user's own: no spec, a BatchNorm whose mode matters."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(x))  # type: ignore[no-any-return]


def test_a_users_own_model_with_an_input_shape_and_metadata(tmp_path: Path) -> None:
    model = Plain()  # in training mode: exported in eval mode, and left in training mode
    before = {k: v.clone() for k, v in model.state_dict().items()}
    path = export(model, "pt2", tmp_path / "plain.pt2", input_shape=(4,), metadata={"task": "x"})
    assert model.training
    assert model.norm.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key  # running stats untouched
    metadata = assert_matches(model, path, "pt2", torch.randn(BATCH, 4))
    assert metadata["task"] == "x"
    assert metadata["input_shape"] == [4]


class BatchOfTwo(nn.Module):
    """Python control flow on the batch size: a trace bakes in the branch it saw."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 if x.shape[0] == 2 else x * 3


def test_a_file_that_disagrees_with_pytorch_is_not_written(tmp_path: Path) -> None:
    out = tmp_path / "model.ts"
    with pytest.raises(ExportError) as info:
        export(BatchOfTwo(), "torchscript", out, input_shape=(3,))
    message = str(info.value)
    assert message.startswith(f"{out}: the exported torchscript file's outputs differ from PyTorch")
    assert "at batch size 3 (allowed: 0.0001" in message
    assert "it was not written" in message
    assert list(tmp_path.iterdir()) == []


def test_a_failed_export_keeps_the_previous_file(tmp_path: Path) -> None:
    out = tmp_path / "model.pt2"
    export(brickwork.build({"input": [3], "model": [{"linear": {"out": 2}}]}), "pt2", out)
    previous = (
        out.read_bytes()
    )  # an export of brickwork's: it may be replaced, if the new one works
    with pytest.raises(ExportError, match=r"torch\.export cannot export BatchOfTwo with a dynamic"):
        export(BatchOfTwo(), "pt2", out, input_shape=(3,))
    assert out.read_bytes() == previous
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt2"]


def test_onnx_is_checked_against_pytorch_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs("onnx")
    monkeypatch.setattr(
        sys.modules["brickwork.exporting.check"], "TOLERANCE", -1.0
    )  # nothing agrees
    model = brickwork.CNNClassifier(1, [4], [8], 3, input_shape=(6, 6))
    with pytest.raises(ExportError, match=r"model\.onnx: the exported onnx file's outputs differ"):
        export(model, "onnx", tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []


def test_onnx_without_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now fails
    model = brickwork.CNNClassifier(1, [4], [8], 3, input_shape=(6, 6))
    with pytest.raises(ConfigError, match="needs the onnxruntime package") as info:
        export(model, "onnx", tmp_path / "model.onnx")
    assert info.value.hint == "pip install 'brickwork[export]'"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.gpu
def test_a_model_on_the_gpu_is_exported_from_a_copy(tmp_path: Path) -> None:
    model = brickwork.CNNClassifier(1, [4], [8], 3, input_shape=(6, 6)).cuda()
    path = export(model, "pt2", tmp_path / "model.pt2")
    assert next(model.parameters()).is_cuda
    assert model.training
    assert_matches(model.cpu(), path, "pt2", torch.randn(BATCH, 1, 6, 6))


MODEL = brickwork.CNNClassifier(1, [4], [], 3, input_shape=(6, 6))


@pytest.mark.parametrize(
    ("source", "kwargs", "error", "message"),
    [
        (
            "model",
            {"format": "tflite"},
            ConfigError,
            "unknown export format 'tflite'; valid: onnx, pt2, torchscript",
        ),
        (
            "model",
            {"format": "ONNX"},
            ConfigError,
            "unknown export format 'ONNX'; did you mean 'onnx'?",
        ),
        (
            "model",
            {"out": None},
            ConfigError,
            "out: a model object has no run directory to export beside",
        ),
        (
            "model",
            {"out": "{tmp}/no/such/m.pt2"},
            ConfigError,
            "m.pt2: no such directory {tmp}/no/such",
        ),
        (
            "model",
            {"out": "{tmp}/m.onnx"},
            ConfigError,
            "m.onnx: the pt2 format writes .pt2 files, not .onnx (onnx's suffix)",
        ),
        (
            "model",
            {"out": "{tmp}/m.bin"},
            ConfigError,
            "m.bin: the pt2 format writes .pt2 files, not .bin",
        ),
        (
            "model",
            {"out": "{tmp}/m"},
            ConfigError,
            "m: the pt2 format writes .pt2 files; this name has no suffix",
        ),
        (
            "model",
            {"input_shape": (0, 6, 6)},
            ConfigError,
            "input_shape[0]: sizes must be positive integers, got 0",
        ),
        (
            "model",
            {"input_shape": (1, 7, 7)},
            brickwork.ShapeError,
            "CNNClassifier was built for input_shape=(6, 6)",
        ),
        ("model", {"input_dtype": "complex"}, ConfigError, "unknown input_dtype 'complex'"),
        (
            "model",
            {"metadata": {"when": object()}},
            ConfigError,
            "metadata: must be JSON-serialisable",
        ),
        (
            "plain",
            {},
            ConfigError,
            "input_shape: Plain has no brickwork spec to give its input shape",
        ),
        (
            "plain",
            {"input_shape": (5,)},
            brickwork.ShapeError,
            "Plain fails on a random float32 input of shape (2, 5) (RuntimeError: ",
        ),
        (
            "plain",
            {"input_shape": (4,), "input_dtype": torch.int64},
            brickwork.ShapeError,
            "Plain fails on a random int64 input of shape (2, 4)",
        ),
        ("meta", {}, ConfigError, "the model is on the meta device: it has no weights to export"),
        ("{tmp}/missing.safetensors", {}, CheckpointError, "missing.safetensors: no such file"),
        ("{tmp}", {}, CheckpointError, "no model.safetensors (has the run finished an epoch?)"),
        (
            "{tmp}/garbage.safetensors",
            {},
            CheckpointError,
            "garbage.safetensors: not a readable safetensors file",
        ),
        (
            "{tmp}/foreign.safetensors",
            {},
            CheckpointError,
            "a safetensors file without brickwork's metadata",
        ),
    ],
)
def test_bad_input(
    source: str, kwargs: dict[str, Any], error: type[Exception], message: str, tmp_path: Path
) -> None:
    from safetensors.torch import save_file

    (tmp_path / "garbage.safetensors").write_bytes(b"\x00" * 64)
    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    models: dict[str, Any] = {"model": MODEL, "plain": Plain()}
    with torch.device("meta"):
        models["meta"] = brickwork.CNNClassifier(1, [4], [], 3, input_shape=(6, 6))
    arguments: dict[str, Any] = {"format": "pt2", "out": tmp_path / "m.pt2", **kwargs}
    if isinstance(arguments["out"], str):
        arguments["out"] = arguments["out"].format(tmp=tmp_path)
    if source not in models:
        arguments.pop("out")
    before = sorted(tmp_path.iterdir())
    with pytest.raises(error) as info:
        export(models.get(source, source.format(tmp=tmp_path)), **arguments)
    assert message.format(tmp=tmp_path) in str(info.value)
    assert sorted(tmp_path.iterdir()) == before  # nothing written


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GRAPH_CASES = [("two_inputs.yaml", "onnx"), ("two_heads.yaml", "onnx")]
GRAPH_CASES += [("two_heads.yaml", "pt2"), ("two_inputs.yaml", "torchscript")]


@pytest.mark.slow  # the ONNX exporter takes seconds a model on two cores
@pytest.mark.parametrize(("example", "fmt"), GRAPH_CASES)
def test_a_graph_of_several_inputs_or_outputs(example: str, fmt: str, tmp_path: Path) -> None:
    needs(fmt)
    model = brickwork.build(EXAMPLES / example)
    inputs = brickwork.spec.example_inputs(brickwork.to_spec(model), BATCH, device="cpu")
    xs = [torch.randn(x.shape) for x in inputs]
    path = export(model, fmt, tmp_path / f"model{SUFFIX[fmt]}")
    with torch.no_grad():
        expected = model.eval()(*xs)
    want = list(expected.values()) if isinstance(expected, dict) else [expected]
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        got = session.run(None, {n: x.numpy() for n, x in zip(names, xs, strict=True)})
        metadata = {
            k: json.loads(v) for k, v in session.get_modelmeta().custom_metadata_map.items()
        }
        spec = brickwork.to_spec(model)
        assert names == list(spec.get("inputs", {"input": None}))
        if isinstance(expected, dict):
            assert [o.name for o in session.get_outputs()] == list(expected)
        outs = [torch.from_numpy(o) for o in got]
    else:
        extra = {"brickwork.json": ""}
        if fmt == "pt2":
            out = torch.export.load(path, extra_files=extra).module()(*xs)
        else:
            out = torch.jit.load(str(path), _extra_files=extra)(*xs)
        metadata = json.loads(extra["brickwork.json"])
        outs = list(out.values()) if isinstance(out, dict) else [out]
    assert len(outs) == len(want)
    for got_t, want_t in zip(outs, want, strict=True):
        assert (got_t - want_t).abs().max() <= TOLERANCE
    if example == "two_inputs.yaml":
        assert metadata["inputs"] == {
            "image": {"shape": [3, 32, 32], "dtype": "float32"},
            "features": {"shape": [8], "dtype": "float32"},
        }
    else:
        assert metadata["input_shape"] == [3, 32, 32]


def _zip(path: Path, members: dict[str, str]) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return path


DESCRIBED = json.dumps({"brickwork_version": "0.1.0", "input_shape": [1, 4, 4]})
NOT_EXPORTS: dict[str, Any] = {  # files that look like an export brickwork wrote, and are not
    "bytes in an onnx": ("onnx", lambda p: p.write_bytes(b"my model; brickwork_version 0.1")),
    "a zip with a brickwork.json elsewhere": (
        "pt2",
        lambda p: _zip(p, {"docs/brickwork.json": DESCRIBED, "docs/notes.txt": "mine"}),
    ),
    "a zip whose brickwork.json is not brickwork's": (
        "torchscript",
        lambda p: _zip(p, {"archive/extra/brickwork.json": '{"mine": 1}', "archive/x": ""}),
    ),
    "a zip of two folders": (
        "pt2",
        lambda p: _zip(p, {"archive/extra/brickwork.json": DESCRIBED, "mine/notes.txt": "x"}),
    ),
}


@pytest.mark.parametrize("case", sorted(NOT_EXPORTS))
def test_only_an_export_brickwork_wrote_is_replaced(case: str, tmp_path: Path) -> None:
    fmt, make = NOT_EXPORTS[case]
    target = tmp_path / f"user{SUFFIX[fmt]}"
    make(target)
    before = target.read_bytes()
    model = brickwork.CNNClassifier(1, [4], [8], 3, input_shape=(4, 4))
    with pytest.raises(ConfigError, match=f"is not a brickwork {fmt} export: it was not replaced"):
        export(model, fmt, target)
    assert target.read_bytes() == before


def test_an_onnx_export_of_brickworks_is_replaced(tmp_path: Path) -> None:
    model = brickwork.CNNClassifier(1, [4], [8], 3, input_shape=(4, 4))
    target = export(model, "onnx", tmp_path / "model.onnx")
    export(model, "onnx", target)  # its own file: no --overwrite needed
