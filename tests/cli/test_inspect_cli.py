"""`brickwork summary` and `doctor` as a user runs them (what they say to bad input is checked in
this process: `run_here`)."""

import json
from pathlib import Path

import pytest
from command_line import EXAMPLES, run, run_here


def test_summary_of_a_users_class(tmp_path: Path) -> None:
    user = tmp_path / "guide.py"
    user.write_text(
        "from torch import nn\n\n"
        "class Net(nn.Module):\n"
        "    def __init__(self, in_c, n_classes, activation='relu'):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(in_c, 8, 3, padding=1)\n"
        "        self.fc = nn.Linear(8 * 28 * 28, n_classes)\n\n"
        "    def forward(self, x):\n"
        "        return self.fc(self.conv(x).flatten(1))\n"
    )
    result = run(
        "summary",
        f"{user}:Net",
        "--args",
        "1, 10",
        "--kwargs",
        "activation='lrelu'",
        "--input-shape",
        "1,28,28",
    )
    assert result.returncode == 0, result.stderr
    assert "conv (Conv2d)" in result.stdout
    assert "total params: 62,810" in result.stdout
    failing = run("summary", f"{user}:Net", "--args", "1, 10", "--input-shape", "1,32,32")
    assert failing.returncode == 1
    assert "error: fc (Linear) failed on input of shape [1, 8192]" in failing.stdout


def test_summary_of_a_spec_as_json() -> None:
    result = run("summary", str(EXAMPLES / "guide_classifier.yaml"), "--json", "--batch-size", "4")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["total_params"] == 51_930_186
    assert data["batch_size"] == 4
    assert data["rows"][0]["output_shape"] == [4, 10]


def test_summary_of_a_family() -> None:
    result = run("summary", "cnn_classifier", "--input-shape", "3,32,32", "--depth", "1")
    assert result.returncode == 0, result.stderr
    assert "total params: 67,659,402" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("summary", "nope.py:Net", "--input-shape", "1,28,28"),
            "error: no such Python file: nope.py",
        ),
        (
            ("summary", "examples/mlp.yaml", "--args", "1"),
            "--args and --kwargs go with a path/to/file.py:NAME target",
        ),
        (("summary", "cnn_classifier"), "needs input_shape"),
        (
            ("summary", "resnet18", "--input-shape", "3,64,64", "--device-memory", "16XB"),
            "error: --device-memory '16XB': expected a size such as 16GiB",
        ),
        (
            ("summary", "resnet18", "--input-shape", "3,64,64", "--device-memory=-1GiB"),
            "error: --device-memory '-1GiB': expected a size such as 16GiB",
        ),
    ],
)
def test_summary_bad_input(args: tuple[str, ...], message: str) -> None:
    result = run_here(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_summary_says_the_largest_batch_that_trains_in_a_memory() -> None:
    guide = str(EXAMPLES / "guide_classifier.yaml")
    fp32 = run("summary", guide, "--device-memory", "4GiB", "--json", "--depth", "0")
    assert fp32.returncode == 0, fp32.stderr
    fit = json.loads(fp32.stdout)["device_memory"]
    assert fit["bytes"] == 4 * 2**30
    assert fit["fixed_bytes"] + fit["largest_batch"] * fit["bytes_per_sample"] <= 4 * 2**30
    assert fit["fixed_bytes"] + (fit["largest_batch"] + 1) * fit["bytes_per_sample"] > 4 * 2**30
    sgd = run("summary", guide, "--device-memory", "4GiB", "--optimizer", "sgd", "--fit")
    assert sgd.returncode == 0, sgd.stderr
    line = sgd.stdout.splitlines()[-1]
    assert line.startswith("the largest batch that trains in 4.00 GiB (fp32, sgd) is ")
    larger = int(line.split(" is ")[1].split(":")[0])
    assert larger > fit["largest_batch"]  # one state per parameter, not two
    assert f"batch {larger}" in sgd.stdout or f"({larger}," in sgd.stdout


DOCTOR_FILE = """
from torch import nn


class Classifier(nn.Module):
    def __init__(self, flat):
        super().__init__()
        self.encoder = nn.Conv2d(1, 8, 3, padding=1)
        self.decoder = nn.Linear(flat, 10)

    def forward(self, x):
        return self.decoder(self.encoder(x).flatten(1))


class Broken(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, missing_name)

        def forward(self, x):
            return self.fc(x)
"""


@pytest.fixture
def doctor_file(tmp_path: Path) -> Path:
    path = tmp_path / "patient.py"
    path.write_text(DOCTOR_FILE)
    return path


def test_doctor_exit_status_follows_the_findings(doctor_file: Path) -> None:
    sick = run("doctor", f"{doctor_file}:Classifier", "--args", "4 * 8", "--input-shape", "1,28,28")
    assert sick.returncode == 2  # not a literal: bad input
    sick = run("doctor", f"{doctor_file}:Classifier", "--args", "100", "--input-shape", "1,28,28")
    assert sick.returncode == 1
    assert (
        "`decoder` is Linear(in_features=100) but receives 6272 = 8×28×28 features" in sick.stdout
    )
    healthy = run(
        "doctor",
        f"{doctor_file}:Classifier",
        "--args",
        "6272",
        "--input-shape",
        "1,28,28",
        "--json",
    )
    assert healthy.returncode == 0, healthy.stdout
    assert json.loads(healthy.stdout) == {
        "model": "Classifier",
        "findings": [],
        "not_run": [],
        "not_run_reason": "the forward failed",
        "run": "meta",
        "run_reason": None,
        "silenced": [],
        "training": None,
        "losses": [],
        "ok": True,
    }


def test_doctor_reports_construction_failures_as_findings(doctor_file: Path) -> None:
    result = run("doctor", f"{doctor_file}:Broken", "--input-shape", "4")
    assert result.returncode == 1
    assert "construction-error" in result.stdout
    assert f"{doctor_file}:18: NameError: name 'missing_name' is not defined" in result.stdout
    assert "missing-forward" in result.stdout
    assert "is inside `__init__`" in result.stdout
    assert "Traceback" not in result.stderr


def test_doctor_on_a_spec() -> None:
    result = run("doctor", str(EXAMPLES / "small_resnet.yaml"))
    assert result.returncode == 0
    assert "no problems found" in result.stdout


CLI_MODELS = """
import argparse
from torch import nn

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.1)
options = parser.parse_args()  # a training script's own options, parsed on import


class Tokens(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 4)
        self.head = nn.Linear(4, 2)

    def forward(self, ids):
        return self.head(self.embed(ids).mean(1))


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 3)
        self.b = nn.Linear(6, 3)

    def forward(self, x, y):
        return self.a(x) + self.b(y)


class Masked(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 4)
        self.spare = nn.Linear(4, 4)

    def forward(self, input_ids, attention_mask):
        if not bool(attention_mask.all()):
            raise ValueError("the mask holds ones")
        return self.embed(input_ids) * attention_mask[..., None]


class IdsAndScale(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 4)

    def forward(self, ids, scale):
        return self.embed(ids) * scale
"""


@pytest.fixture
def cli_models(tmp_path: Path) -> Path:
    path = tmp_path / "cli_models.py"
    path.write_text(CLI_MODELS)
    return path


def test_token_models_take_an_input_dtype(cli_models: Path) -> None:
    result = run("doctor", f"{cli_models}:Tokens", "--input-shape", "5", "--input-dtype", "long")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no problems found" in result.stdout


def test_several_inputs_take_several_input_shapes(cli_models: Path) -> None:
    result = run(
        "summary",
        f"{cli_models}:TwoInputs",
        "--input-shape",
        "4",
        "--input-shape",
        "6",
        "--batch-size",
        "2",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["macs"] == 2 * (4 * 3 + 6 * 3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("summary", "{file}", "--input-shape", "4"),
            "is a Python file: name the model in it, path/to/file.py:NAME",
        ),
        (
            ("doctor", "{file}:Tokens", "--input-shape", "5", "--batch-size", "-2"),
            "--batch-size: expected a positive integer, got '-2'",
        ),
        (
            ("doctor", "{file}:Tokens", "--input-shape", "5", "--batch-size", "0"),
            "--batch-size: expected a positive integer, got '0'",
        ),
        (
            ("doctor", "{file}:Tokens", "--input-shape", "5", "--input-dtype", "cmplx"),
            "unknown input_dtype 'cmplx'",
        ),
    ],
)
def test_model_options_bad_input(cli_models: Path, args: tuple[str, ...], message: str) -> None:
    result = run_here(*(a.format(file=cli_models) for a in args))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_named_inputs_from_shapes_run_for_real_where_they_must(cli_models: Path) -> None:
    model = f"{cli_models}:Masked"
    named = ("--input", "input_ids:2,5:long", "--input", "attention_mask:2,5:long")
    result = run("summary", model, *named, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["run"], data["error"], data["batch_size"]) == ("real", None, 2)
    assert data["rows"][0]["input_kwargs"] == {"input_ids": [2, 5], "attention_mask": [2, 5]}
    assert "aten._local_scalar_dense" in data["run_reason"]
    meta = run("summary", model, *named, "--run", "meta")
    assert meta.returncode == 1
    assert "stopped on meta: " in meta.stdout
    doctor = run("doctor", model, *named)
    assert doctor.returncode == 1
    assert "unused-module" in doctor.stdout
    assert "ran on real tensors" in doctor.stdout
    quiet = run("doctor", model, *named, "--ignore", "unused-module,state-leak")
    assert quiet.returncode == 0, quiet.stdout
    assert "(1 silenced)" in quiet.stdout
    assert run("doctor", model, *named, "--select", "state-leak").returncode == 0


def test_one_input_dtype_per_input_shape_in_order(cli_models: Path) -> None:
    shapes = ("--input-shape", "5", "--input-shape", "5,1")
    result = run(
        "summary", f"{cli_models}:IdsAndScale", *shapes, "--input-dtype", "long",
        "--input-dtype", "bfloat16", "--batch-size", "3", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"][0]["input_shape"] == [[3, 5], [3, 5, 1]]


def test_input_data_files(cli_models: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    ids, mask = torch.randint(0, 20, (4, 6)), torch.ones(4, 6, dtype=torch.long)
    save_file({"input_ids": ids, "attention_mask": mask}, str(tmp_path / "inputs.safetensors"))
    torch.save({"input_ids": ids, "attention_mask": mask}, tmp_path / "inputs.pt")
    for name in ("inputs.safetensors", "inputs.pt"):
        result = run(
            "summary", f"{cli_models}:Masked", "--input-data", str(tmp_path / name), "--json"
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["rows"][0]["output_shape"] == [4, 6, 4]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--input", "ids:2,5:long", "--input-shape", "5"), "--input-shape and --input both give"),
        (("--input", "ids"), "--input: expected NAME:SHAPE[:DTYPE] such as input_ids:1,128:long"),
        (
            ("--input-data", "missing.safetensors"),
            "--input-data: no such file: missing.safetensors",
        ),
        (("--input-shape", "5", "--run", "fast"), "argument --run: invalid choice: 'fast'"),
        (
            ("--input-shape", "5", "--input-dtype", "long", "--input-dtype", "long"),
            "2 --input-dtype for 1 --input-shape: give one per input",
        ),
        (("--input-shape", "5", "--ignore", "unused"), "ignore: unknown finding code 'unused'"),
    ],
)
def test_input_options_bad_input(cli_models: Path, args: tuple[str, ...], message: str) -> None:
    result = run_here("doctor", f"{cli_models}:Masked", *args)
    assert result.returncode == 2, result.stdout
    assert message in result.stderr


TRAINING_FILE = """
import torch
from torch import nn


def setup(softmax=True):
    torch.manual_seed(0)
    layers = [nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 5)]
    model = nn.Sequential(*layers, *([nn.Softmax(dim=1)] if softmax else []))
    x, y = torch.randn(8, 12), torch.randint(0, 5, (8,))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    return {"model": model, "optimizer": optimizer, "loss": nn.CrossEntropyLoss(), "batch": (x, y)}


def typo():
    return {"modle": nn.Linear(2, 2)}


def no_model():
    return {"loss": nn.CrossEntropyLoss()}


def broken_loss(output, target):
    return output.sum() / undefined_name


def smooth_loss(output, target):
    return nn.functional.cross_entropy(output, target, label_smoothing=0.1)


def make_optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(12, 5)

    def forward(self, x):
        return self.fc(x)


NOT_CALLABLE = 3
"""


@pytest.fixture
def training_file(tmp_path: Path) -> Path:
    path = tmp_path / "train.py"
    path.write_text(TRAINING_FILE)
    return path


def test_doctor_checks_a_training_scripts_objects(training_file: Path) -> None:
    sick = run("doctor", f"{training_file}:setup")
    assert sick.returncode == 1, sick.stderr
    assert "error   probabilities-as-logits 3: the output is already a softmax" in sick.stdout
    assert "training checks: 5 step(s) of AdamW(lr=0.003, weight_decay=0.01) on your inputs" in (
        sick.stdout
    )
    healthy = run("doctor", f"{training_file}:setup", "--kwargs", "softmax=False", "--json")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    data = json.loads(healthy.stdout)
    assert data["findings"] == []
    assert len(data["losses"]) == 6
    assert data["losses"][-1] < data["losses"][0]


def test_doctor_takes_a_loss_and_an_optimizer_from_a_file(training_file: Path) -> None:
    result = run(
        "doctor",
        f"{training_file}:Net",
        "--input-shape",
        "12",
        "--loss",
        f"{training_file}:smooth_loss",
        "--optimizer",
        f"{training_file}:make_optimizer",
        "--steps",
        "2",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "training checks: 2 step(s) of SGD(lr=0.1, momentum=0.9) on a random batch of 8 against a "
        "random " in result.stdout
    )
    assert "smooth_loss; loss " in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--loss", "cross_entropi"), "did you mean 'cross_entropy'?"),
        (
            ("--loss", "ce", "--optimizer", "adamm"),
            "unknown optimizer 'adamm'; did you mean 'adam'?",
        ),
        (("--loss", "ce", "--optimizer", "{file}:NOT_CALLABLE"), "is a int, not a function"),
        (("--loss", "ce", "--steps", "0"), "expected a positive integer, got '0'"),
        (("--loss", "{file}:nowhere"), "--loss: {file}: unknown name 'nowhere'"),
        (("--loss", "{file}.gone.py:fn"), "--loss: no such Python file: {file}.gone.py"),
        (
            ("--loss", "{file}:broken_loss"),
            "the loss broken_loss raised at {file}:24 on the output [8, 5] (float32): NameError",
        ),
    ],
)
def test_doctor_training_bad_input(
    training_file: Path, args: tuple[str, ...], message: str
) -> None:
    filled = [a.format(file=training_file) for a in args]
    result = run_here("doctor", f"{training_file}:Net", "--input-shape", "12", *filled)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert message.format(file=training_file) in lines[0]
    assert len(lines) <= 2  # the error, and a hint when one is known


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("typo", "unknown key 'modle'; did you mean 'model'?"),
        ("no_model", "{file}:no_model(): the dict needs 'model', an nn.Module"),
    ],
)
def test_a_training_scripts_dict_without_its_model(
    training_file: Path, name: str, message: str
) -> None:
    result = run_here("doctor", f"{training_file}:{name}")
    assert result.returncode == 2
    assert message.format(file=training_file) in result.stderr.splitlines()[0]
