import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import brickwork
from brickwork import doctor
from brickwork.inspect.doctor import NEEDS_A_FULL_PASS

sys.path.insert(0, str(Path(__file__).parent))
import doctor_cases as cases

sys.path.insert(0, str(Path(__file__).parents[1]))


def only(report: brickwork.Report, code: str) -> brickwork.Finding:
    assert report.codes() == [code], str(report)
    return report.findings[0]


# (code, buggy model, the same model fixed, per-sample input shape, message pattern, hint pattern)
CASES: list[tuple[str, Any, Any, tuple[int, ...], str, str | None]] = [
    (
        "missing-forward",
        cases.IndentedForward,
        cases.DedentedForward,
        (4,),
        r"`def forward` at .*doctor_cases\.py:\d+ is inside `__init__` \(an indentation slip\)",
        "dedent",
    ),
    (
        "shape-mismatch",
        lambda: cases.Classifier(32 * 28 * 28),
        cases.Classifier,
        (1, 28, 28),
        r"^`decoder\.0\.0` is Linear\(in_features=25088\) but receives 50176 = 64×28×28 features$",
        "set in_features=50176",
    ),
    (
        "shape-mismatch",
        lambda: cases.WrongChannels(8),
        cases.WrongChannels,
        (3, 12, 12),
        r"^`conv2` is Conv2d\(in_channels=8\) but receives 16 channels",
        "set in_channels=16",
    ),
    (
        "shape-mismatch",
        lambda: cases.WrongNorm(32),
        cases.WrongNorm,
        (3, 12, 12),
        r"^`norm` is BatchNorm2d\(num_features=32\) but receives 16 channels",
        "set num_features=16",
    ),
    (
        "shape-mismatch",
        lambda: cases.WrongLayerNorm(6),
        cases.WrongLayerNorm,
        (5, 4),
        r"^`norm` is LayerNorm\(\(6,\)\) but receives input \[3, 5, 8\]",
        r"set normalized_shape=\(8,\)",
    ),
    (
        "shape-mismatch",
        lambda: cases.Attention(6),
        cases.Attention,
        (5, 8),
        r"^Attention fails on input \[3, 5, 8\] at .*doctor_cases\.py:\d+: ",
        "brickwork.summary",
    ),
    (
        "forward-error",
        cases.Misspelt,
        lambda: cases.Misspelt(typo=False),
        (4,),
        r"Misspelt\.forward raises AttributeError at .*doctor_cases\.py:\d+: 'Misspelt' object has no attribute 'decodr'",
        r"did you mean 'decoder'\?",
    ),
    (
        "forward-error",
        cases.CalledWithoutInput,
        lambda: cases.CalledWithoutInput(bug=False),
        (4,),
        r"^`encoder` \(Linear\) was called without its input at .*doctor_cases\.py:\d+",
        r"self\.encoder\(x\)",
    ),
    (
        "unused-module",
        cases.Unused,
        lambda: cases.Unused(use_extra=True),
        (4,),
        r"^`extra` \(Sequential, 72 parameters\) is registered but forward never calls it",
        "call it in forward",
    ),
    (
        "unregistered-module",
        cases.PlainList,
        lambda: cases.PlainList(registered=True),
        (4,),
        r"^`layers` is a plain list of 3 module\(s\) \(Linear\)",
        r"use nn\.ModuleList",
    ),
    (
        "unregistered-module",
        cases.PlainDictOfParameters,
        lambda: cases.PlainDictOfParameters(registered=True),
        (4,),
        r"^`scales` is a plain dict of 2 trainable tensor\(s\)",
        r"use nn\.ParameterDict",
    ),
    (
        "batch-size-changed",
        cases.ViewBatch,
        lambda: cases.ViewBatch(flatten=True),
        (1, 14, 14),
        r"first dimension is 12 but the batch has 3 samples: it changes inside the model's own forward, before `fc` receives \[12, 392\]",
        r"x\.flatten\(1\)",
    ),
    (
        "state-leak",
        cases.TraceOnSelf,
        lambda: cases.TraceOnSelf(local=True),
        (4,),
        r"^`self\.trace` grows on every call \(2 → 4 items after two calls\)",
        "local list",
    ),
    (
        "no-grad-param",
        cases.Detached,
        lambda: cases.Detached(detach=False),
        (4,),
        r"2 trainable parameter\(s\) get no gradient from the output: `a\.weight`, `a\.bias`",
        "requires_grad_",
    ),
    (
        "input-ignored",
        cases.IgnoresInput,
        lambda: cases.IgnoresInput(ignore=False),
        (4,),
        r"^the output does not depend on the input$",
        None,
    ),
]


@pytest.mark.parametrize(
    ("code", "buggy", "fixed", "shape", "message", "hint"),
    CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)],
)
def test_each_bug_is_found_and_its_fix_is_clean(
    code: str, buggy: Any, fixed: Any, shape: tuple[int, ...], message: str, hint: str | None
) -> None:
    report = doctor(buggy(), shape)
    finding = only(report, code)
    assert finding.severity == "error"
    assert not report.ok
    assert __import__("re").search(message, finding.message), finding.message
    if hint is not None:
        assert finding.hint is not None
        assert __import__("re").search(hint, finding.hint), finding.hint
    clean = doctor(fixed(), shape)
    assert clean.findings == [], str(clean)
    assert clean.ok


def test_a_failed_forward_says_which_checks_did_not_run() -> None:
    report = doctor(cases.Classifier(32 * 28 * 28), (1, 28, 28))
    assert report.not_run == list(NEEDS_A_FULL_PASS)
    assert "not run, because the forward failed: unused-module" in str(report)
    assert doctor(cases.Classifier(), (1, 28, 28)).not_run == []


def test_mixed_devices() -> None:
    model = cases.Unused(use_extra=True)
    model.decoder.to("meta")
    finding = only(doctor(model, (4,)), "mixed-devices")
    assert "cpu: encoder, extra" in finding.message
    assert "meta: decoder" in finding.message


def test_side_effects_are_warnings() -> None:
    report = doctor(cases.Noisy(), (4,))
    assert report.codes() == ["side-effect", "side-effect"]
    assert all(f.severity == "warning" for f in report.findings)
    assert report.ok  # warnings do not fail the model
    printed, warned = report.findings
    assert __import__("re").search(
        r"forward prints at .*doctor_cases\.py:\d+: 'x torch\.Size\(\[3, 4\]\)'", printed.message
    )
    assert "DeprecationWarning" in warned.message
    assert "this API is old" in warned.message
    assert doctor(cases.Noisy(noisy=False), (4,)).findings == []


def test_a_tensor_kept_on_self_is_a_warning() -> None:
    finding = only(doctor(cases.KeepsLastOutput(), (4,)), "state-leak")
    assert finding.severity == "warning"
    assert "`self.last` is set to a tensor of each call" in finding.message


def test_a_trainable_tensor_that_is_not_a_parameter() -> None:
    model = cases.DedentedForward()
    model.scale = torch.ones(2, requires_grad=True)
    finding = only(doctor(model, (4,)), "unregistered-module")
    assert finding.path == "scale"
    assert "nn.Parameter" in (finding.hint or "")


def test_the_model_is_left_as_it_was() -> None:
    model = cases.TraceOnSelf()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    doctor(model, (4,))
    assert model.trace == []  # the leak happened on the meta copy
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])
    assert sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()) == 0


@pytest.mark.parametrize(
    ("model", "shape", "dtype"),
    [
        (cases.Classifier(), (1, 28, 28), None),
        (cases.Attention(), (5, 8), None),
        (cases.Tokens(), (7,), torch.long),
        (brickwork.LayerStack([4, 8, 2]), (4,), None),
        (nn.GRU(4, 8, batch_first=True), (5, 4), None),
        (nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), (6, 16), None),
    ],
)
def test_healthy_hand_written_models_are_clean(
    model: nn.Module, shape: tuple[int, ...], dtype: torch.dtype | None
) -> None:
    report = doctor(model, shape, input_dtype=dtype)
    assert report.findings == [], str(report)


def test_specs_and_examples_are_clean() -> None:
    for path in sorted((Path(__file__).parents[2] / "examples").glob("*.yaml")):
        assert doctor(str(path)).findings == [], path.name


def test_report_renders_and_serialises() -> None:
    report = doctor(cases.Unused(), (4,))
    text = str(report)
    assert text.startswith("error   unused-module" + " " * 11 + "extra: `extra` (Sequential")
    assert "hint: call it in forward" in text
    assert "Unused: 1 error(s), 0 warning(s)" in text
    data = report.to_dict()
    assert data["ok"] is False
    assert data["findings"][0]["code"] == "unused-module"


@pytest.mark.parametrize(
    ("model", "shape", "data"),
    [
        (cases.GuideRNN(), (5, 8), None),
        (cases.SeqFirst(), None, torch.randn(7, 3, 8)),
        (cases.FrozenAttentionEval().eval().requires_grad_(False), (10, 32), None),
        (cases.Checkpointed(), (4,), None),
        (cases.OldWeightNorm(), (8,), None),
        (cases.DataclassOutput(), (4,), None),
        (cases.LossFirst(), (4,), None),
        (cases.IndirectCalls(), (4,), None),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else None,
)
def test_healthy_idioms_that_look_odd_on_meta_are_clean(
    model: nn.Module, shape: tuple[int, ...] | None, data: torch.Tensor | None
) -> None:
    report = doctor(model, shape, input_data=data)
    assert report.findings == [], str(report)


def test_modules_kept_out_of_the_optimizer_on_purpose() -> None:
    report = doctor(cases.FrozenTeacher(), (4,))
    finding = only(report, "unregistered-module")  # the list of activations is not reported
    assert finding.severity == "warning"
    assert finding.path == "_teacher"
    assert report.ok


def test_data_dependent_forwards_run_for_real() -> None:
    report = doctor(cases.DataDependent(), (4,))
    assert report.findings == [], str(report)
    assert report.run == "real"
    assert "aten._local_scalar_dense" in (report.run_reason or "")
    assert "ran on real tensors" in str(report)


def test_data_dependent_forwards_of_a_model_on_meta_are_a_meta_limit_not_a_bug() -> None:
    report = doctor(cases.DataDependent().to("meta"), (4,))
    finding = only(report, "meta-limit")
    assert finding.severity == "warning"
    assert report.ok
    assert report.not_run == list(NEEDS_A_FULL_PASS)
    assert "not run, because the forward needs real values" in str(report)


def test_the_users_own_hooks_do_not_run() -> None:
    model = cases.DedentedForward()
    seen: list[torch.Tensor] = []
    model.fc.register_forward_hook(lambda module, args, out: seen.append(out))
    doctor(model, (4,))
    brickwork.summary(model, (4,))
    assert seen == []


@pytest.mark.parametrize("batch_size", [0, -2, 1.5])
def test_bad_batch_size(batch_size: Any) -> None:
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        doctor(cases.DedentedForward(), (4,), batch_size=batch_size)


@pytest.mark.parametrize(
    ("model", "shape", "dtype"),
    [
        (cases.SeqFirstEncoder(), (6,), torch.long),
        (cases.FlatLogits(), (6,), torch.long),
        (nn.TransformerEncoderLayer(16, 2, 32), (6, 16), None),
        (nn.LSTM(4, 8), (5, 4), None),
    ],
    ids=["seq-first-encoder", "flat-logits", "encoder-layer", "lstm"],
)
def test_correct_code_raises_no_false_alarm(
    model: nn.Module, shape: tuple[int, ...], dtype: torch.dtype | None
) -> None:
    report = doctor(model, shape, input_dtype=dtype)
    assert report.findings == [], str(report)


@pytest.mark.parametrize(
    ("model", "code", "path", "message"),
    [
        (
            cases.GenerateOnly(),
            "unused-module",
            "decoder",
            r"not called by forward; generate\(\) uses it",
        ),
        (
            cases.FrozenBackbone(),
            "no-grad-param",
            "backbone.0",
            r"2 trainable parameter\(s\) are used only under torch\.no_grad\(\) or updated outside autograd",
        ),
        (cases.EmaTeacher(), "no-grad-param", "teacher", r"`teacher\.weight`, `teacher\.bias`"),
    ],
)
def test_intended_patterns_are_notes_not_errors(
    model: nn.Module, code: str, path: str, message: str
) -> None:
    report = doctor(model, (4,))
    finding = only(report, code)
    assert (finding.severity, finding.path) == ("note", path)
    assert __import__("re").search(message, finding.message), finding.message
    assert report.ok
    assert "0 error(s), 0 warning(s), 1 note(s)" in str(report)


def test_findings_are_silenced_by_argument_comment_and_class_attribute() -> None:
    loud = doctor(cases.Unused(), (4,))
    finding = only(loud, "unused-module")
    source = Path(cases.__file__).read_text().splitlines()
    assert finding.line is not None
    assert "self.extra = " in source[int(finding.line.rsplit(":", 1)[1]) - 1]
    assert "--ignore unused-module" in finding.silence
    assert f"# brickwork: ignore[unused-module]` at {finding.line}" in finding.silence
    assert "silence: --ignore unused-module" in str(loud)
    for quiet in (
        doctor(cases.Unused(), (4,), ignore=["unused-module"]),
        doctor(cases.Unused(), (4,), ignore="unused-module,state-leak"),  # type: ignore[arg-type]
        doctor(cases.Unused(), (4,), select=["state-leak"]),
    ):
        assert quiet.findings == []
        assert quiet.ok
        assert [f.code for f in quiet.silenced] == ["unused-module"]
        assert "(1 silenced)" in str(quiet)
    opted = doctor(cases.OptedOut(), (4,))
    assert opted.findings == [], str(opted)
    assert sorted(f.path for f in opted.silenced) == ["quiet", "spare"]


def test_every_finding_says_how_to_silence_it() -> None:
    for code, buggy, _, shape, _, _ in CASES:
        for finding in doctor(buggy(), shape).findings:
            assert f"--ignore {code}" in finding.silence
            assert finding.line is not None or finding.path, finding
    data = doctor(cases.Unused(), (4,)).to_dict()
    assert data["findings"][0]["silence"].startswith("--ignore unused-module")


@pytest.mark.parametrize("argument", ["ignore", "select"])
def test_unknown_codes_are_refused(argument: str) -> None:
    with pytest.raises(
        brickwork.errors.ConfigError,
        match=rf"^{argument}: unknown finding code 'unused-modules'; did you mean 'unused-module'\?",
    ):
        doctor(cases.Unused(), (4,), **{argument: ["unused-modules"]})


def test_a_detector_in_eval_mode_keeps_one_output_per_image() -> None:
    report = doctor(cases.Detector().eval(), (4,))
    assert report.run == "real"
    finding = only(report, "no-grad-param")  # a note: the training loss may reach them
    assert (finding.severity, finding.path) == ("note", "proposals")
    assert "in eval mode" in finding.message
    assert report.ok
    training = doctor(cases.Detector(), (4,))
    assert only(training, "no-grad-param").severity == "error"
