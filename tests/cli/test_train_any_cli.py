"""`brickwork train MODEL` takes what `summary` takes; a file.py:NAME run needs its code back.

Two true runs of the installed command train; the rest runs it in this process (`run_here`)."""

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from command_line import run, run_here
from PIL import Image

QUICK = ["--epochs", "1", "--batch-size", "256", "--workers", "0"]
MODELS = textwrap.dedent(
    """
    import torch
    from torch import nn


    class MnistCNN(nn.Module):
        def __init__(self, n_classes=10, width=4):
            super().__init__()
            self.conv = nn.Conv2d(1, width, 3, padding=1)
            self.head = nn.Linear(width * 8 * 8, n_classes)

        def forward(self, x):
            return self.head(torch.relu(self.conv(x)).flatten(1))
    """
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("code")
    (folder / "my_models.py").write_text(MODELS)
    result = run("train", "my_models.py:MnistCNN", "--kwargs", "width=2", *QUICK, "--out", "run",
                 cwd=folder)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("MnistCNN: 1,310 parameters")
    return folder


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        ("evaluate", "run"),
        ("predict", "run", "digit.png"),
        ("export", "run", "--format", "pt2", "--out", "model.pt2"),
    ],
)
def test_a_code_run_is_used_only_with_its_code(trained: Path, command: tuple[str, ...]) -> None:
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(trained / "digit.png")
    refused = run_here(*command, cwd=trained)
    assert refused.returncode == 2
    assert refused.stderr.splitlines()[0] == (
        "error: run/model.safetensors: its model was built by code, my_models.py:MnistCNN, not "
        "from a spec; pass that file: load(path, code='my_models.py'), or --code my_models.py"
    )
    used = run_here(*command, "--code", "my_models.py", cwd=trained)
    assert used.returncode == 0, used.stderr


@pytest.mark.slow
def test_a_code_run_resumes_with_its_code_and_refuses_other_arguments(trained: Path) -> None:
    out = ("--out", "run", "--resume")
    other = run_here("train", "my_models.py:MnistCNN", "--kwargs", "width=3", *out, cwd=trained)
    assert other.returncode == 2
    assert "contradicts the run's model, MnistCNN called with () and (width=2)" in other.stderr
    no_code = run_here("train", *out, cwd=trained)
    assert no_code.returncode == 2
    assert "pass that file" in no_code.stderr
    done = run_here("train", *out, "--code", "my_models.py", cwd=trained)
    assert done.returncode == 2
    assert "the run is complete" in done.stderr


@pytest.mark.slow
def test_a_family_by_name(tmp_path: Path) -> None:
    args = ("--model-args", "{widths: [4, 4, 4, 4]}", *QUICK, "--out", "run")
    result = run("train", "resnet18_small", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "run" / "config.json").read_text())["epochs"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("my_models.py",), "my_models.py is a Python file: name the model in it"),
        (("my_models.py:Nope",), "unknown name 'Nope'"),
        (("my_models.py:MnistCNN", "--model-args", "{a: 1}"), "--model-args goes with a family"),
        (("resnet18_small", "--args", "3"), "takes keyword arguments only"),
        (("resnet18_small", "--model-args", "[3]"), "expected a mapping of arguments"),
        (("my_models.py:MnistCNN", "--kwargs", "n_classes=3"), "outputs of shape [3] but"),
        (("my_models.py:MnistCNN", "--kwargs", "width=os.sep"), "only Python literals"),
        (("--code", "my_models.py"), "--code goes with --resume"),
        (("--memory-limit", "16XB"), "--memory-limit '16XB': expected a size such as 16GiB"),
        (("--init", "nope.safetensors"), "error: --init nope.safetensors: no such file"),
        (("--freeze", "layer9*"), "error: --freeze 'layer9*' matches no module of CNNClassifier"),
        (
            ("cnn_classifier", "--data", "synthetic:3,224,224,4,40", "--memory-limit", "8GiB"),
            "a step of 256 samples needs 58.34 GiB to train (fp32, adamw) but --memory-limit is "
            "8.00 GiB; no batch fits",
        ),
    ],
)
def test_bad_models_are_one_line_and_write_nothing(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    (tmp_path / "my_models.py").write_text(MODELS)
    result = run_here("train", *args, *QUICK, "--out", "run", cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr.splitlines()[0]
    assert not (tmp_path / "run").exists()
