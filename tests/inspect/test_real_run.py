"""Meta first, real when needed: each pattern that meta tensors cannot run gets a real run, with
the same rows, MACs and memory accounting, and the model comes back untouched."""

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from brickwork import summary
from brickwork.errors import ConfigError
from brickwork.inspect.inputs import named_input

sys.path.insert(0, str(Path(__file__).parent))
import real_cases as cases


def _ids() -> dict[str, torch.Tensor]:
    return dict([named_input("input_ids:2,5:long"), named_input("attention_mask:2,5:long")])


class Traced(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.jit.trace(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), torch.randn(2, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # type: ignore[no-any-return]


# (name, model, input_data or per-sample shape, params, MACs, the op the meta run stops at)
CASES: list[tuple[str, Callable[[], nn.Module], Any, int, int, str | None]] = [
    ("mask-as-bool", cases.MaskAsBool, _ids, 50 * 8 + 72, 2 * 5 * 64, "_local_scalar_dense"),
    ("nonzero", cases.NonZero, (4,), 20, 16, "nonzero"),
    (
        "pack-padded-cpu-lengths",
        cases.Packed,
        lambda: (torch.randn(3, 5, 4), torch.tensor([5, 3, 2])),
        3 * 6 * (4 + 6) + 2 * 3 * 6 + 14,
        (5 + 3 + 2) * 3 * 6 * (4 + 6) + 3 * 12,
        "_pack_padded_sequence",
    ),
    ("tolist", cases.ToList, (4,), 15, 12, "_to_copy"),
    ("cpu", cases.ToCpu, (4,), 15, 12, "_to_copy"),
    ("to-cpu", lambda: cases.ToCpu("to"), (4,), 15, 12, "_to_copy"),
    ("script", lambda: torch.jit.script(nn.Sequential(nn.Linear(4, 3))), (4,), 15, 12, None),
    ("traced-submodule", Traced, (4,), 15, 12, None),
]


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:`torch.jit.trace(_method)?` is deprecated:DeprecationWarning")
@pytest.mark.parametrize(
    ("name", "make", "inputs", "params", "macs", "op"), CASES, ids=[c[0] for c in CASES]
)
def test_auto_runs_for_real_where_meta_cannot(
    name: str, make: Callable[[], nn.Module], inputs: Any, params: int, macs: int, op: str | None
) -> None:
    model = make()
    data = inputs() if callable(inputs) else None
    result = summary(model, None if data is not None else inputs, input_data=data)
    assert result.error is None, result.error
    assert result.run == "real"
    assert result.total_params == params
    assert result.macs == macs
    assert result.rows[0].output_shape is not None
    assert "ran on real tensors" in str(result)
    if op is not None:
        assert f"aten.{op}" in (result.run_reason or "")
    else:
        assert "TorchScript" in (result.run_reason or "")
    if op is None:
        with pytest.raises(ConfigError, match="is a TorchScript module, which cannot run on meta"):
            summary(make(), inputs, run="meta")
        return
    meta_only = summary(make(), None if data is not None else inputs, input_data=data, run="meta")
    assert meta_only.run == "meta"
    assert meta_only.error is not None
    assert f"aten.{op}" in (meta_only.run_reason or ""), meta_only.run_reason


def test_a_distribution_output_runs_on_meta() -> None:
    result = summary(cases.Distribution(), (4,), batch_size=3)
    assert result.error is None
    assert result.rows[0].output_shape == "Normal"
    assert (result.total_params, result.macs) == (12, 3 * 8)


def test_a_compiled_model_is_summarised_as_the_module_it_wraps() -> None:
    inner = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    for model in (torch.compile(inner), inner.compile() or inner):
        result = summary(model, (4,), batch_size=2)
        assert (result.model, result.run, result.error) == ("Sequential", "meta", None)
        assert [row.path for row in result.rows] == ["", "0", "1"]
        assert result.macs == 2 * 12


def _state(model: nn.Module) -> Any:
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        [p.requires_grad for p in model.parameters()],
        [m.training for m in model.modules()],
        {k: v for k, v in vars(model).items() if not k.startswith("_")},
        torch.get_rng_state(),
    )


def _assert_same(before: Any, model: nn.Module) -> None:
    weights, flags, training, attributes, rng = before
    for key, value in model.state_dict().items():
        assert torch.equal(value, weights[key]), key
    assert [p.requires_grad for p in model.parameters()] == flags
    assert [m.training for m in model.modules()] == training
    assert model.calls == attributes["calls"] == 0
    assert model.seen == []
    assert torch.equal(torch.get_rng_state(), rng)
    assert sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()) == 1


@pytest.mark.parametrize("run", ["auto", "real"])
def test_the_model_and_its_inputs_come_back_untouched(run: str) -> None:
    from brickwork import doctor

    model = cases.Writes()
    model.fc.register_forward_hook(lambda *args: None)
    x = torch.randn(3, 4)
    x_before = x.clone()
    before = _state(model)
    result = summary(model, input_data=x, run=run)  # type: ignore[arg-type]
    assert (result.run, result.error) == ("real", None)
    _assert_same(before, model)
    assert torch.equal(x, x_before)
    report = doctor(model, input_data=x, run=run)  # type: ignore[arg-type]
    assert report.run == "real"
    _assert_same(before, model)
    assert torch.equal(x, x_before)


def test_meta_and_real_runs_account_alike() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(512, 10),
    )
    meta = summary(model, (3, 8, 8), batch_size=4, run="meta")
    real = summary(model, (3, 8, 8), batch_size=4, run="real")
    assert (meta.run, real.run) == ("meta", "real")
    assert real.run_reason == "run='real' was asked for"
    for field in ("macs", "total_params", "saved_activation_bytes", "forward_activation_bytes"):
        assert getattr(meta, field) == getattr(real, field), field
    assert [r.output_shape for r in meta.rows] == [r.output_shape for r in real.rows]
    assert meta.forward_activation_bytes == 4 * (3 * 4 * 8 * 8 * 8 + 4 * 10)  # conv, bn, relu, fc


class FreedOnTheWay(nn.Module):
    """Six outputs, each freed once the next exists: a freed storage's address comes back."""

    def __init__(self) -> None:
        super().__init__()
        self.steps = nn.ModuleList(nn.ReLU() for _ in range(6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            for step in self.steps:
                x = step(x) + 0
        return x


@pytest.mark.parametrize("run", ["meta", "real"])
def test_every_output_counts_though_its_storage_was_freed_and_reused(run: str) -> None:
    result = summary(FreedOnTheWay(), (4, 8, 8), batch_size=2, run=run)
    assert result.forward_activation_bytes == 7 * 2 * 4 * 8 * 8 * 4  # six steps and the model's


def test_a_model_built_on_meta_stops_at_the_op_and_says_what_to_do() -> None:
    with torch.device("meta"):
        model = cases.NonZero()
    result = summary(model, (4,), batch_size=2)
    assert result.run == "meta"
    assert [row.path for row in result.rows] == ["", "fc"]
    assert result.macs == 2 * 16  # the rows and MACs up to the op
    assert result.error is not None
    reason = result.run_reason or ""
    assert "aten.nonzero" in reason
    assert "run='real' with a small batch" in reason
    assert f"stopped on meta: {reason}" in str(result)
    with pytest.raises(ConfigError, match="run='real' needs the model's weights"):
        summary(model, (4,), run="real")


def test_a_batch_of_one_in_training_mode_becomes_two_and_says_why() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    result = summary(model, (4,))
    assert (result.error, result.batch_size) == (None, 2)
    assert "batch 2: batch 1 fails in training mode" in result.notes[0]
    assert "note: batch 2" in str(result)
    asked = summary(model, (4,), batch_size=1)
    assert asked.error is not None
    assert "Expected more than 1 value per channel" in asked.error
    assert summary(model.eval(), (4,)).batch_size == 1


def test_keyword_inputs_are_shown_by_name_in_rows_and_errors() -> None:
    class Keywords(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
            return self.inner(input=x * scale)  # type: ignore[no-any-return]

    data = {"x": torch.randn(3, 4), "scale": torch.randn(3, 1)}
    result = summary(Keywords(), input_data=data, columns=("input_shape", "output_shape"))
    assert result.rows[0].input_kwargs == {"x": [3, 4], "scale": [3, 1]}
    assert result.rows[1].input_kwargs == {"input": [3, 4]}
    assert "x=[3, 4], scale=[3, 1]" in str(result)
    failing = summary(Keywords(), input_data={"x": torch.randn(3, 5), "scale": torch.randn(3, 1)})
    assert failing.error is not None
    assert failing.error.startswith("inner (Linear) failed on inputs input=[3, 5]: ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("input_ids", "expected NAME:SHAPE"),
        ("1,2:long", "expected NAME:SHAPE"),
        ("ids:1,x", "expected comma-separated positive integers"),
        ("ids:1,2:flaot32", "unknown input_dtype 'flaot32'; did you mean 'float32'"),
    ],
)
def test_named_inputs_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        named_input(text)


def test_an_unknown_run_mode_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown run 'rael'; did you mean 'real'"):
        summary(nn.Linear(4, 2), (4,), run="rael")  # type: ignore[arg-type]
