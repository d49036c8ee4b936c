"""The doctor's training checks: each bug in a training step found, its fix clean, and correct
setups that look odd left alone (how the checks run: test_doctor_step_runs.py)."""

import re
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from brickwork import doctor
from brickwork.inspect.doctor_step import TRAINING_CODES
from brickwork.inspect.findings import FINDING_CODES

sys.path.insert(0, str(Path(__file__).parent))
import healthy_step_cases as healthy
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
        "loss-target-mismatch",
        "error",
        cases.one_hot_integer_labels,
        r"^CrossEntropyLoss raises on the output \[8, 5\] \(float32\) and the target \[8, 5\] "
        r"\(int64\): RuntimeError: Expected floating point type for target with class probabilities",
        r"one-hot labels\? give the indices, target\.argmax\(1\)",
        (),
    ),
    (
        "loss-target-mismatch",
        "error",
        cases.sigmoid_bce_target_without_its_dimension,
        r"^BCELoss raises on the output \[8, 1\] \(float32\) and the target \[8\] \(float32\)",
        r"target\.view_as\(output\)",
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
        "error",
        cases.frozen_after_zero_grad_without_none,
        r"^4 parameter\(s\) with requires_grad=False change in SGD\(lr=0\.1, momentum=0\.9, "
        r"weight_decay=0\.01\)\.step\(\): .*; they still hold a gradient \(zeros left by "
        r"zero_grad\(set_to_none=False\)",
        r"p\.grad = None",
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
        "error",
        cases.loss_rebuilt_from_a_number,
        r"^the loss is a tensor made from numbers, with no grad_fn \(torch\.tensor\(loss\.item\(\)\)",
        r"without \.item\(\) or \.detach\(\)",
        (),
    ),
    (
        "cannot-overfit",
        "warning",
        cases.bottleneck_of_one,
        r"^the loss of one fixed batch \(8 samples, Adam\(lr=0\.03\)\) stalls \d+% of the way from "
        r"its floor 0\.0\d+ to where it started, after 100 steps: ",
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


@pytest.mark.parametrize("setup", healthy.HEALTHY, ids=lambda f: f.__name__)
def test_correct_setups_that_look_odd_are_clean(setup: Any) -> None:
    report = doctor(**setup())
    codes = {"bias-before-norm"} if setup is healthy.guide_classifier else set()
    assert set(report.codes()) == codes, str(report)
    assert len(report.losses) > 1
    assert report.losses[-1] < report.losses[0]


def test_the_guides_classifier_wastes_only_its_conv_biases() -> None:
    report = doctor(**healthy.guide_classifier())
    assert report.ok
    wasted = [
        (f.path, re.search(r"its (\d+) bias parameters", f.message).group(1))  # type: ignore[union-attr]
        for f in report.findings
    ]
    assert wasted == [("encoder.conv_blocks.0.0", "32"), ("encoder.conv_blocks.1.0", "64")]
    quiet = doctor(**healthy.guide_classifier(), ignore=["bias-before-norm"])
    assert quiet.findings == []
    assert len(quiet.silenced) == 2


@pytest.mark.slow
def test_the_guides_classifier_at_28_by_28_wastes_only_its_conv_biases() -> None:
    report = doctor(**healthy.guide_classifier(28))
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


@pytest.mark.parametrize("steps", [5, 10, 20])
@pytest.mark.parametrize("optimizer", ["adamw-1e-4", "sgd-0.01", "sgd-0.1-nesterov"])
def test_a_slow_or_bumpy_start_under_a_common_optimizer_is_no_finding(
    optimizer: str, steps: int
) -> None:
    report = doctor(**healthy.guide_classifier_trained_with(optimizer, steps))
    assert set(report.codes()) == {"bias-before-norm"}, str(report)


@pytest.mark.parametrize("steps", [10, 20])
def test_a_head_that_learns_slowly_on_frozen_features_is_no_finding(steps: int) -> None:
    report = doctor(**healthy.head_on_a_frozen_backbone(steps))
    assert report.findings == [], str(report)
    assert report.losses[-1] < report.losses[0]


def test_the_optimizer_is_described_with_the_settings_that_shape_its_steps() -> None:
    model = cases.mlp()
    optimizers = {
        "SGD(lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)": torch.optim.SGD(
            model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01
        ),
        "Adam(lr=0.001, betas=(0.5, 0.999))": torch.optim.Adam(
            model.parameters(), betas=(0.5, 0.999)
        ),
        "SGD(lr=0.1)": torch.optim.SGD(model.parameters(), lr=0.1),
    }
    for text, optimizer in optimizers.items():
        report = doctor(**cases.classify(model, optimizer=optimizer), steps=1)
        assert (report.training or "").startswith(f"1 step(s) of {text} on"), report.training
