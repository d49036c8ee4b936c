"""How the doctor's training checks run: the user's objects left as they were, the same
findings each run, the arguments they take, and what they say when a step cannot run."""

import random
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from brickwork import doctor
from brickwork.errors import ConfigError, UserCodeError
from brickwork.inspect.doctor_step import TRAINING_CODES
from brickwork.inspect.training_setup import LOSSES, setup_arguments

sys.path.insert(0, str(Path(__file__).parent))
import step_cases as cases


def _state(
    model: nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, torch.Tensor], Any, dict[str, bool], list[bool], dict[str, Any]]:
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in grads.items()},
        {n: m.training for n, m in model.named_modules()},
        [p.requires_grad for p in model.parameters()],
        {
            "state": {
                i: {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in s.items()}
                for i, s in optimizer.state_dict()["state"].items()
            },
            "groups": [
                {k: v for k, v in g.items() if k != "params"}
                for g in optimizer.state_dict()["param_groups"]
            ],
        },
    )


def test_the_users_objects_are_left_as_they_were() -> None:
    model = nn.Sequential(cases.Backbone(), nn.Dropout(0.5), nn.Linear(5, 5))
    model[0].backbone[0].requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.01, total_steps=50)
    x, y = cases.batch()
    nn.functional.cross_entropy(model(x), y).backward()  # a step taken, gradients left behind
    optimizer.step()
    scheduler.step()
    model[0].backbone.eval()
    before = _state(model, optimizer)
    rng, python_rng = torch.get_rng_state(), random.getstate()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    report = doctor(model, input_data=x, target=y, loss="cross_entropy", optimizer=optimizer)
    assert report.losses
    assert report.training
    after = _state(model, optimizer)
    for old, new in zip(before[0].values(), after[0].values(), strict=True):
        assert torch.equal(old, new)
    assert before[1].keys() == after[1].keys()
    assert all(torch.equal(before[1][k], after[1][k]) for k in before[1])
    assert before[2:4] == after[2:4]
    assert before[4]["groups"] == after[4]["groups"]
    for i, state in before[4]["state"].items():
        for key, value in state.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(after[4]["state"][i][key]))
    assert scheduler.last_epoch == 1
    assert torch.equal(torch.get_rng_state(), rng)
    assert random.getstate() == python_rng
    if cuda is not None:
        now = torch.cuda.get_rng_state_all()
        assert all(torch.equal(a, b) for a, b in zip(cuda, now, strict=True))
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_the_checks_are_the_same_each_run() -> None:
    first = doctor(**cases.last_layer_initialised_large())
    second = doctor(**cases.last_layer_initialised_large())
    assert first.losses == second.losses
    assert first.findings == second.findings


@pytest.mark.parametrize("name", LOSSES.names())
def test_a_random_target_fits_each_named_loss(name: str) -> None:
    ends = {"bce": [nn.Sigmoid()], "nll": [nn.LogSoftmax(dim=1)]}
    report = doctor(**cases.classify(cases.mlp(*ends.get(name, [])), name))
    assert report.findings == [], str(report)
    assert "a random target" in (report.training or "")


def test_a_family_or_spec_is_built_for_real_to_train() -> None:
    spec = Path(__file__).parents[2] / "examples" / "mlp.yaml"
    report = doctor(str(spec), loss="cross_entropy", optimizer="adamw", steps=2)
    assert report.findings == [], str(report)
    assert (report.training or "").startswith("2 step(s) of AdamW(lr=0.001, weight_decay=0.01)")


def test_a_model_on_meta_cannot_train() -> None:
    with torch.device("meta"):
        model = cases.mlp()
    report = doctor(model, (cases.FEATURES,), loss="cross_entropy")
    assert report.not_run == list(TRAINING_CODES)
    assert "the model's weights are on meta" in str(report)


def test_a_forward_that_fails_runs_no_training_check() -> None:
    report = doctor(cases.mlp(), (cases.FEATURES + 1,), loss="cross_entropy")
    assert report.codes() == ["shape-mismatch"]
    assert set(TRAINING_CODES) <= set(report.not_run)
    assert report.training is None


def test_a_loss_that_raises_stops_the_steps_and_says_which_checks_did_not_run() -> None:
    report = doctor(**cases.float_class_indices())
    assert "cannot-overfit" in report.not_run
    assert "not run, because the loss raised: initial-loss" in str(report)


def test_nothing_to_train() -> None:
    report = doctor(nn.Flatten(), (3, 4), loss="mse")
    assert report.findings == []
    assert report.training == "nothing to train: the model has no trainable parameter"


def test_the_report_carries_the_training_run() -> None:
    report = doctor(**cases.learning_rate_zero(fixed=True), steps=2)
    data = report.to_dict()
    assert data["training"].startswith("2 step(s) of SGD(lr=0.1) on a random batch of 8")
    assert len(data["losses"]) == 3
    assert "training checks: 2 step(s)" in str(report)


def test_a_comment_on_the_users_line_silences_a_finding(tmp_path: Path) -> None:
    source = (
        Path(cases.__file__)
        .read_text()
        .replace(
            "return self.out(torch.sigmoid(self.hidden(x)))  # the line the finding names",
            "return self.out(torch.sigmoid(self.hidden(x)))  # brickwork: ignore[saturated-activations]",
        )
    )
    (tmp_path / "quiet_cases.py").write_text(source)
    sys.path.insert(0, str(tmp_path))
    try:
        quiet = __import__("quiet_cases")
        report = doctor(**quiet.sigmoids_saturated_at_init())
    finally:
        sys.path.remove(str(tmp_path))
    assert report.findings == []
    assert [f.code for f in report.silenced] == ["saturated-activations"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            {"loss": "cross_entropi"},
            r"^loss: unknown loss 'cross_entropi'; did you mean 'cross_entropy'\?",
        ),
        ({"loss": 3}, r"^loss must be a name \(.*\), an nn\.Module or a function"),
        (
            {"loss": "mse", "optimizer": "adamm"},
            r"^optimizer: unknown optimizer 'adamm'; did you mean 'adam'\?",
        ),
        ({"loss": "mse", "optimizer": 0.1}, r"^optimizer must be a name"),
        (
            {"loss": "mse", "optimizer": lambda model: model.parameters()},
            r"^optimizer: <lambda>\(model\) returned generator, not a torch\.optim\.Optimizer",
        ),
        ({"loss": "mse", "steps": 0}, r"^steps must be a positive integer, got 0"),
        (
            {"loss": lambda out, target: out @ target},
            r"^cannot make a random target that fits the loss on an output of shape \[8, 5\]: "
            r"RuntimeError: mat1 and mat2 shapes cannot be multiplied",
        ),
    ],
)
def test_bad_training_arguments_are_one_line_errors(
    arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        doctor(cases.mlp(), (cases.FEATURES,), **arguments)


def test_a_target_needs_its_inputs() -> None:
    with pytest.raises(ConfigError, match="target= goes with input_data="):
        doctor(cases.mlp(), (cases.FEATURES,), loss="cross_entropy", target=torch.zeros(8))


def test_the_training_script_dict_gives_the_doctors_arguments() -> None:
    model = cases.mlp()
    x, y = cases.batch()
    script = {
        "model": model,
        "optimizer": torch.optim.SGD(model.parameters(), 0.1),
        "loss": "ce",
        "batch": (x, y),
    }
    arguments = setup_arguments(script, "train.py:setup()")
    assert arguments["model_or_spec"] is model
    assert arguments["input_data"] is x
    assert arguments["target"] is y
    assert doctor(**arguments).findings == []
    with pytest.raises(ConfigError, match=r"unknown key 'modle'; did you mean 'model'\?"):
        setup_arguments({"modle": model}, "train.py:setup()")
    with pytest.raises(ConfigError, match=r"'batch' must be a pair \(input, target\)"):
        setup_arguments({"model": model, "batch": x}, "f()")


class PairOut(nn.Module):
    """Logits and features: a model whose output a named loss cannot take as it is."""

    def __init__(self) -> None:
        super().__init__()
        self.body = cases.mlp()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.body(x), x


@pytest.mark.parametrize("given", [False, True])
def test_an_output_the_loss_cannot_take_skips_the_checks_with_a_note(given: bool) -> None:
    x, y = cases.batch()
    batch = {"input_data": x, "target": y} if given else {"input_shape": (cases.FEATURES,)}
    report = doctor(PairOut(), loss="cross_entropy", **batch)
    assert report.findings == [], str(report)
    assert "CrossEntropyLoss does not take the model's output, a tuple" in str(report)
    assert {"probabilities-as-logits", "cannot-overfit"} <= set(report.not_run)

    def first(out: tuple[torch.Tensor, torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(out[0], target)

    fine = doctor(PairOut(), loss=first, **batch)
    assert fine.findings == [], str(fine)
    assert fine.not_run == []
    assert fine.losses[-1] < fine.losses[0]


def test_a_loss_that_raises_in_its_own_code_is_bad_input() -> None:
    def loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return out.sum() / target.nonexistent  # type: ignore[attr-defined]

    with pytest.raises(
        UserCodeError, match=r"^the loss loss raised at .*test_doctor_step_runs\.py:\d+"
    ):
        doctor(cases.mlp(), (cases.FEATURES,), loss=loss)


def test_a_failure_after_the_first_step_stops_the_steps_with_a_note() -> None:
    calls: list[int] = []

    def loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("out of data")
        return nn.functional.cross_entropy(out, target)

    x, y = cases.batch()
    report = doctor(cases.mlp(), input_data=x, target=y, loss=loss)
    assert report.findings == []
    assert report.not_run == ["cannot-overfit"]
    assert "raised RuntimeError: out of data" in str(report)


def test_an_optimizer_that_needs_a_closure() -> None:
    model = cases.mlp()
    report = doctor(**cases.classify(model, optimizer=torch.optim.LBFGS(model.parameters())))
    assert report.findings == [], str(report)
    assert report.losses[-1] < report.losses[0]
