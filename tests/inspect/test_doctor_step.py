"""The doctor's training checks: each bug in a training step found, its fix clean, the user's
objects left as they were, and correct setups that look odd left alone."""

import random
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from brickwork import doctor
from brickwork.errors import ConfigError, UserCodeError
from brickwork.inspect.doctor_step import TRAINING_CODES
from brickwork.inspect.findings import FINDING_CODES
from brickwork.inspect.training_setup import LOSSES, setup_arguments

sys.path.insert(0, str(Path(__file__).parent))
import step_cases as cases

# (code, severity, buggy setup (its fixed form: fixed=True), message pattern, hint pattern,
#  every code the buggy setup gives)
CASES: list[tuple[str, str, Any, str, str, tuple[str, ...]]] = [
    (
        "probabilities-as-logits",
        "error",
        cases.softmax_then_cross_entropy,
        r"^the output is already a softmax \(each row sums to 1\) and CrossEntropyLoss applies "
        r"log-softmax again: .* cannot go below 0\.90 on 5 classes; the softmax is `3` \(Softmax\)$",
        "return the logits",
        (),
    ),
    (
        "probabilities-as-logits",
        "error",
        cases.sigmoid_then_bce_with_logits,
        r"already a sigmoid and BCEWithLogitsLoss applies its own: .* the sigmoid is sigmoid in the "
        r"model's forward at .*step_cases\.py:\d+$",
        "drop the sigmoid",
        (),
    ),
    (
        "logits-as-probabilities",
        "error",
        cases.nll_on_logits,
        r"^NLLLoss takes log-probabilities, but the output is raw scores \(logits\)",
        "CrossEntropyLoss",
        (),
    ),
    (
        "logits-as-probabilities",
        "error",
        cases.bce_on_logits,
        r"^BCELoss takes probabilities in \[0, 1\], but the output ranges over \[-\d",
        "BCEWithLogitsLoss",
        (),
    ),
    (
        "loss-target-mismatch",
        "error",
        cases.regression_target_without_its_dimension,
        r"^the output \[8, 1\] and the target \[8\] broadcast to \[8, 8\] in MSELoss",
        r"target\.unsqueeze\(-1\)",
        (),
    ),
    (
        "loss-target-mismatch",
        "error",
        cases.float_class_indices,
        r"takes class indices as integers, one per sample, but the target is float32 \[8\]$",
        r"^target\.long\(\)$",
        (),
    ),
    (
        "loss-target-mismatch",
        "error",
        cases.class_indices_with_a_dimension_too_many,
        r"a target of shape \[8\], but the target is \[8, 1\]$",
        r"target\.squeeze\(1\)",
        (),
    ),
    (
        "loss-target-mismatch",
        "error",
        cases.one_class_under_cross_entropy,
        r"^the output has 1 class along dimension 1 \(\[8, 1\]\): CrossEntropyLoss over one class "
        r"is always 0",
        "BCEWithLogitsLoss",
        (),
    ),
    (
        "loss-target-mismatch",
        "error",
        cases.multi_hot_under_cross_entropy,
        r"as class probabilities, but its rows sum to 2$",
        "BCEWithLogitsLoss",
        (),
    ),
    (
        "loss-target-mismatch",
        "error",
        cases.relu_head_with_negative_targets,
        r"^the output comes from `3` \(ReLU\), so it stays in \[0, ∞\], but \d+% of the targets "
        r"lie outside .* \(MSE stays above 0\.\d+\)$",
        "plain Linear",
        (),
    ),
    (
        "labels-out-of-range",
        "error",
        cases.labels_from_one,
        r"^the class indices go up to 5, but the output has 5 classes \(0 to 4\)$",
        "subtract 1",
        (),
    ),
    (
        "labels-out-of-range",
        "error",
        cases.class_indices_under_bce,
        r"^BCEWithLogitsLoss takes targets in \[0, 1\] .* but they range over \[\d, \d\]$",
        "CrossEntropyLoss",
        (),
    ),
    (
        "initial-loss",
        "warning",
        cases.last_layer_initialised_large,
        r"^the first loss is \d+\.\d, far from the 1\.61 \(log 5\) of a model that knows nothing "
        r".* `2`'s weights have std 2\.\d+, \d+× PyTorch's default",
        r"initialise `2` smaller",
        (),
    ),
    (
        "optimizer-misses-params",
        "error",
        cases.head_replaced_after_the_optimizer,
        r"^2 trainable parameter\(s\) \(165 values\) are in no parameter group .*: `2\.weight`, "
        r"`2\.bias`; it holds 2 of the same shapes that the model no longer has",
        "make the optimizer after the model is final",
        (),
    ),
    (
        "optimizer-misses-params",
        "error",
        cases.loss_parameter_left_out,
        r"^1 trainable parameter\(s\) \(1 values\) .*: `\(loss\)\.log_t`$",
        "add_param_group",
        (),
    ),
    (
        "eval-mode-training",
        "error",
        cases.left_in_eval_mode,
        r"^the model is in eval mode while 591 of its parameters train: its 2 "
        r"BatchNorm1d/Dropout behave as at test time",
        r"model\.train\(\)",
        (),
    ),
    (
        "frozen-but-updating",
        "error",
        cases.frozen_backbone_in_a_decaying_group,
        r"^3 parameter\(s\) with requires_grad=False change in DecayEverything\(lr=0\.1\)\.step\(\)"
        r": `backbone\.0\.weight`, `backbone\.0\.bias`, `backbone\.1\.weight`",
        "leave frozen parameters out of the optimizer",
        (),
    ),
    (
        "frozen-but-updating",
        "warning",
        cases.frozen_backbone_in_training_mode,
        r"^1 norm\(s\) in `backbone`, whose parameters are all frozen, are in training mode: "
        r".*: `backbone\.1`$",
        r"model\.backbone\.eval\(\)",
        (),
    ),
    (
        "bias-before-norm",
        "warning",
        cases.conv_bias_before_batch_norm,
        r"^`0` \(Conv2d\) adds a bias just before `1` \(BatchNorm2d\), which subtracts each "
        r"channel's mean and so cancels it: its 8 bias parameters",
        "bias=False",
        (),
    ),
    (
        "dead-units",
        "error",
        cases.relus_dead_at_init,
        r"^`1` \(ReLU\): 32 of its 32 units \(100%\) output 0 for every sample of the batch at init",
        "init of the layer before",
        (),
    ),
    (
        "saturated-activations",
        "warning",
        cases.sigmoids_saturated_at_init,
        r"^sigmoid in the model's forward at .*step_cases\.py:\d+: \d+% of its values are within "
        r"0\.01 of 0 or 1 at init \(its input's std is \d+",
        "scale down the init of the layer before",
        (),
    ),
    (
        "saturated-activations",
        "warning",
        cases.wide_sigmoid_layer_under_sgd,
        r"^`2` \(Sigmoid\): \d+% of its values are within 0\.01 of 0 or 1 after the first step",
        r"SGD\(lr=3\) pushed its inputs far out: lower the learning rate",
        (),
    ),
    (
        "vanishing-gradients",
        "warning",
        cases.deep_sigmoid_stack,
        r"^the first layer's gradient is \d\.\de-0\d of the last one's .*`0` .*`16` .*, through 8 "
        r"sigmoid/tanh activation\(s\)",
        "ReLU/GELU",
        (),
    ),
    (
        "exploding-gradients",
        "warning",
        cases.tiny_first_layer,
        r"^the first layer's gradient is [\d.]+e\+\d+ times the last one's",
        "clip_grad_norm_",
        (),
    ),
    (
        "exploding-gradients",
        "error",
        cases.sqrt_at_zero,
        r"^the first backward gives gradients that are not finite: `offset`$",
        "set_detect_anomaly",
        (),
    ),
    (
        "cannot-overfit",
        "error",
        cases.learning_rate_zero,
        r"^the loss of one fixed batch \(8 samples, SGD\(lr=0\)\) does not move in 5 step\(s\): "
        r"(1\.705 → ){5}1\.705$",
        "learning rate is not 0",
        (),
    ),
    (
        "cannot-overfit",
        "warning",
        cases.bottleneck_of_one,
        r"^the loss of one fixed batch \(8 samples, Adam\(lr=0\.03\)\) gets no nearer its floor "
        r"0\.0\d+ than \d+% of where it started in 15 steps: ",
        "capacity",
        (),
    ),
]


@pytest.mark.parametrize(
    ("code", "severity", "setup", "message", "hint", "others"),
    CASES,
    ids=[f"{c[0]}-{c[2].__name__}" for c in CASES],
)
def test_each_bug_is_found_and_its_fix_is_clean(
    code: str, severity: str, setup: Any, message: str, hint: str, others: tuple[str, ...]
) -> None:
    report = doctor(**setup())
    assert sorted(report.codes()) == sorted([code, *others]), str(report)
    finding = next(f for f in report.findings if f.code == code)
    assert finding.severity == severity
    assert report.ok is (severity != "error")
    assert re.search(message, finding.message), finding.message
    assert finding.hint is not None
    assert re.search(hint, finding.hint), finding.hint
    assert f"--ignore {code}" in finding.silence
    clean = doctor(**setup(fixed=True))
    assert clean.findings == [], str(clean)
    assert clean.training is not None
    assert len(clean.losses) > 1


def test_every_training_code_is_a_finding_code_with_a_case() -> None:
    assert set(TRAINING_CODES) <= set(FINDING_CODES)
    assert {c[0] for c in CASES} == set(TRAINING_CODES)


@pytest.mark.parametrize("setup", cases.HEALTHY, ids=lambda f: f.__name__)
def test_correct_setups_that_look_odd_are_clean(setup: Any) -> None:
    report = doctor(**setup())
    codes = {"bias-before-norm"} if setup is cases.guide_classifier else set()
    assert set(report.codes()) == codes, str(report)
    assert len(report.losses) > 1
    assert report.losses[-1] < report.losses[0]


def test_the_guides_classifier_wastes_only_its_conv_biases() -> None:
    report = doctor(**cases.guide_classifier())
    assert report.ok
    wasted = [
        (f.path, re.search(r"its (\d+) bias parameters", f.message).group(1))  # type: ignore[union-attr]
        for f in report.findings
    ]
    assert wasted == [("encoder.conv_blocks.0.0", "32"), ("encoder.conv_blocks.1.0", "64")]
    quiet = doctor(**cases.guide_classifier(), ignore=["bias-before-norm"])
    assert quiet.findings == []
    assert len(quiet.silenced) == 2


@pytest.mark.slow
def test_the_guides_classifier_at_28_by_28_wastes_only_its_conv_biases() -> None:
    report = doctor(**cases.guide_classifier(28))
    # its first dense layer has 50,176 inputs: AdamW's first step saturates the sigmoid after
    # it, and AdamW learns on through that, as brickwork train shows on MNIST
    assert set(report.codes()) == {"bias-before-norm"}, str(report)


def test_log_softmax_into_cross_entropy_is_a_warning() -> None:
    report = doctor(**cases.classify(cases.mlp(nn.LogSoftmax(dim=1))))
    finding = next(f for f in report.findings)
    assert report.codes() == ["probabilities-as-logits"]
    assert finding.severity == "warning"
    assert "already a log-softmax" in finding.message
    assert report.ok


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

    with pytest.raises(UserCodeError, match=r"^the loss loss raised at .*test_doctor_step\.py:\d+"):
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
