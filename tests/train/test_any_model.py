"""Any model trains: a user's nn.Module, a file.py:NAME target, a family by name; its files
record where it came from, and load only with the code handed over."""

import json
import os
import signal
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from brickwork.errors import CheckpointError, CodeWarning, ConfigError, SpecError
from brickwork.train import RunInterruptedError, TrainConfig, fit, load, load_weights
from brickwork.train.commands import run_training
from brickwork.train.model_choice import ModelRequest, build_plan
from brickwork.train.run import Opening

QUICK = {"epochs": 1, "batch_size": 128, "lr": 1e-2}

GUIDE_FILE = textwrap.dedent(
    """
    import torch
    from torch import nn


    def conv_block(in_f, out_f, *args, **kwargs):
        return nn.Sequential(
            nn.Conv2d(in_f, out_f, *args, **kwargs), nn.BatchNorm2d(out_f), nn.LeakyReLU()
        )


    class GuideNet(nn.Module):
        # the guide's classifier written by hand, for the digits' 8x8 images
        def __init__(self, n_classes=10):
            super().__init__()
            self.encoder = nn.Sequential(
                conv_block(1, 4, kernel_size=3, padding=1),
                conv_block(4, 8, kernel_size=3, padding=1),
            )
            self.decoder = nn.Sequential(nn.Linear(8 * 8 * 8, 16), nn.Sigmoid())
            self.last = nn.Linear(16, n_classes)

        def forward(self, x):
            return self.last(self.decoder(self.encoder(x).flatten(1)))


    def make(width):
        return GuideNet()


    instance = GuideNet()
    """
)
GUIDE_SPEC = {
    "model": [
        {"conv_block": {"out": 4, "kernel_size": 3, "padding": 1, "activation": "lrelu"}},
        {"conv_block": {"out": 8, "kernel_size": 3, "padding": 1, "activation": "lrelu"}},
        "flatten",
        {"dec_block": {"out": 16}},
        {"linear": {"out": 10}},
    ]
}


class Net(nn.Module):
    """A model of the user's own, defined in Python and handed to fit."""

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU())
        self.head = nn.Linear(32, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@pytest.fixture
def code(tmp_path: Path) -> Path:
    path = tmp_path / "my_models.py"
    path.write_text(GUIDE_FILE)
    return path


def train(request: ModelRequest, out: Path, resume: bool = False, **options: object) -> None:
    given = {**QUICK, "workers": 0, **options} if not resume else {}
    run_training(request, given, Opening(out, resume), progress=False, log=lambda _: None)


@pytest.mark.slow
def test_fit_takes_any_module_and_its_weights_load_into_it(tmp_path: Path, digits) -> None:
    fit(Net(), digits, TrainConfig(**QUICK), out=tmp_path / "run", log=lambda _: None)
    run = tmp_path / "run"
    origin = json.loads((run / "model.json").read_text())
    assert origin["name"] == "Net"
    assert origin["file"] == Path(__file__).name
    with pytest.raises(CheckpointError, match=r"built in Python with arguments .*load_weights"):
        load(run)
    model = Net()
    load_weights(model, run / "model.safetensors")
    assert torch.equal(model.head.weight, load_file(run / "model.safetensors")["head.weight"])


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (Net(n_classes=3), r"outputs of shape \[3\] but digits has 10 classes"),
        (nn.Sequential(nn.Flatten(), nn.Linear(10, 10)), r"cannot take input of shape \(1, 8, 8\)"),
    ],
)
def test_a_model_that_does_not_fit_the_data_writes_nothing(
    tmp_path: Path, digits, model: nn.Module, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        fit(model, digits, TrainConfig(**QUICK), out=tmp_path / "run", log=lambda _: None)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_the_guide_from_file_py_name_trains_as_from_its_spec(tmp_path: Path, code: Path) -> None:
    train(ModelRequest(f"{code}:GuideNet"), tmp_path / "code")
    train(ModelRequest(GUIDE_SPEC), tmp_path / "spec")
    by_code = list(load(tmp_path / "code", code=code).state_dict().values())
    by_spec = list(load(tmp_path / "spec").state_dict().values())
    assert [t.shape for t in by_code] == [t.shape for t in by_spec]
    assert all(torch.equal(a, b) for a, b in zip(by_code, by_spec, strict=True))


@pytest.mark.slow
def test_a_code_run_resumes_bit_identically(tmp_path: Path, code: Path, digits) -> None:
    request = ModelRequest(f"{code}:make", args="8")
    train(request, tmp_path / "straight")

    def interrupt(model: nn.Module, epoch: int, step: int) -> None:
        if (epoch, step) == (0, 4):
            os.kill(os.getpid(), signal.SIGINT)

    model = build_plan({"code": {"target": f"{code}:make", "args": "8", "kwargs": None}}, seed=0)
    stopped = tmp_path / "stopped"
    with pytest.raises(RunInterruptedError):
        fit(model, digits, TrainConfig(**QUICK, workers=0), out=stopped, on_step=interrupt)
    train(ModelRequest(code=str(code)), stopped, resume=True)
    assert (stopped / "model.safetensors").read_bytes() == (
        tmp_path / "straight" / "model.safetensors"
    ).read_bytes()


@pytest.mark.slow
def test_a_code_models_file_loads_only_with_its_code(tmp_path: Path, code: Path) -> None:
    train(ModelRequest(f"{code}:GuideNet"), tmp_path / "run", epochs=1)
    file = tmp_path / "run" / "model.safetensors"
    with pytest.raises(CheckpointError, match=r"built by code, my_models.py:GuideNet.*--code"):
        load(file)
    model = load(file, code=code)
    assert type(model).__name__ == "GuideNet"
    code.write_text(GUIDE_FILE + "\n# edited\n")
    with pytest.warns(CodeWarning, match="differs from the my_models.py"):
        load(file, code=code)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (ModelRequest("CODE"), r"is a Python file: name the model in it"),
        (ModelRequest("CODE:Missing"), r"unknown name 'Missing'"),
        (ModelRequest("CODE:instance", args="1"), r"is a module instance; it takes no"),
        (ModelRequest("CODE:GuideNet", model_args="{a: 1}"), r"--model-args goes with a family"),
        (ModelRequest("resnet18_small", args="1"), r"takes keyword arguments only"),
        (ModelRequest("resnet18_small", model_args="[1]"), r"--model-args: expected a mapping"),
        (ModelRequest(GUIDE_SPEC, kwargs="a=1"), r"need a MODEL to apply to"),
        (ModelRequest(None, code="CODE"), r"--code goes with --resume"),
        (ModelRequest("CODE:GuideNet", kwargs="n_classes=3"), r"outputs of shape \[3\]"),
    ],
)
def test_bad_model_requests_write_nothing(
    tmp_path: Path, code: Path, request_: ModelRequest, message: str
) -> None:
    fields = {k: str(v).replace("CODE", str(code)) for k, v in vars(request_).items() if v}
    if isinstance(request_.source, dict):
        fields["source"] = request_.source
    with pytest.raises((ConfigError, SpecError), match=message):
        train(ModelRequest(**fields), tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_family_by_name_with_its_arguments(tmp_path: Path) -> None:
    train(ModelRequest("resnet18_small", model_args="{widths: [4, 8, 8, 8]}"), tmp_path, epochs=1)
    assert load(tmp_path).fc.in_features == 8
