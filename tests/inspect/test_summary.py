import json
from typing import Any

import pytest
import torch
from torch import nn

import brickwork
from brickwork import CNNClassifier, summary
from brickwork.errors import ArgumentError, ConfigError


class MatmulInForward(nn.Module):
    """A functional matmul in the model's own forward: its MACs belong to the model's row."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w


class Attention(nn.Module):
    def forward(self, q: torch.Tensor) -> torch.Tensor:  # (B, L, D)
        scores = torch.bmm(q, q.transpose(1, 2))  # (B, L, L): B*L*L*D MACs
        return torch.bmm(scores.softmax(-1), q)  # (B, L, D): B*L*D*L MACs


# (model, per-sample input, batch, total params, MACs) — counted by hand
HAND_COUNTED: list[tuple[nn.Module, tuple[int, ...], int, int, int]] = [
    (nn.Linear(10, 5), (10,), 3, 55, 3 * 10 * 5),
    (nn.Linear(10, 5, bias=False), (7, 10), 2, 50, 2 * 7 * 10 * 5),
    (nn.Conv2d(3, 8, 3, padding=1), (3, 16, 16), 2, 3 * 8 * 9 + 8, 2 * 8 * 16 * 16 * 3 * 9),
    (nn.Conv2d(3, 8, 3, stride=2), (3, 9, 9), 1, 224, 8 * 4 * 4 * 3 * 9),
    (nn.Conv2d(4, 8, 3, groups=2), (4, 5, 5), 1, 8 * 2 * 9 + 8, 8 * 3 * 3 * 2 * 9),
    (nn.Conv1d(2, 4, 3), (2, 10), 1, 28, 4 * 8 * 2 * 3),
    (nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), (4,), 1, 58, 32 + 16),
    (
        nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU()),
        (1, 5, 5),
        4,
        20 + 4,
        4 * 2 * 9 * 9,
    ),
    (MatmulInForward(), (4,), 5, 24, 5 * 4 * 6),
    (Attention(), (3, 8), 2, 0, 2 * 3 * 3 * 8 * 2),
]


@pytest.mark.parametrize(("model", "input_shape", "batch", "params", "macs"), HAND_COUNTED)
def test_hand_counted_params_and_macs(
    model: nn.Module, input_shape: tuple[int, ...], batch: int, params: int, macs: int
) -> None:
    result = summary(model, input_shape, batch_size=batch)
    assert result.error is None
    assert result.total_params == params
    assert result.macs == macs
    assert result.rows[0].macs == macs


def test_functional_macs_are_credited_to_the_module_that_runs_them() -> None:
    class Outer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = MatmulInForward()
            self.head = nn.Linear(6, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.inner(x)) @ torch.ones(2, 3)  # 2*3 MACs per sample, in Outer

    result = summary(Outer(), (4,), batch_size=1)
    rows = {row.path: row for row in result.rows}
    assert rows["inner"].own_macs == 24
    assert rows["head"].own_macs == 12
    assert rows[""].own_macs == 6
    assert rows[""].macs == result.macs == 42


def test_the_guides_classifier() -> None:
    model = CNNClassifier(1, [32, 64], [1024, 512], 10, activation="lrelu")
    result = summary(model, (1, 28, 28))
    assert result.total_params == 51_930_186
    assert result.trainable_params == 51_930_186
    # conv1 + conv2 + the three Linears, counted by hand for one sample
    assert (
        result.macs
        == 28 * 28 * 32 * 9 + 28 * 28 * 64 * 32 * 9 + 50176 * 1024 + 1024 * 512 + 512 * 10
    )
    assert result.param_bytes == 51_930_186 * 4
    assert (
        result.buffer_bytes == (2 * 32 + 2 * 64) * 4 + 2 * 8
    )  # running stats + num_batches_tracked
    assert result.input_bytes == 28 * 28 * 4
    assert result.rows[0].output_shape == [1, 10]


def test_frozen_parameters_are_non_trainable() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    model[0].requires_grad_(False)
    result = summary(model, (4,))
    assert (result.trainable_params, result.non_trainable_params) == (10, 20)
    held = result.saved_activation_bytes + result.input_bytes  # the frozen layer saves no input
    assert result.train_memory_bytes == 30 * 4 + 10 * 4 * 3 + held


def test_an_input_a_layer_saves_is_counted_once() -> None:
    result = summary(nn.Sequential(nn.Linear(4, 4), nn.ReLU()), (4,), batch_size=8)
    assert result.train_memory_bytes == 20 * 4 * 4 + result.saved_activation_bytes  # input saved


def _real_training_step_bytes(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """What a real CPU training step with Adam keeps: weights, grads, Adam state, saved tensors."""
    weights = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = t.untyped_storage().data_ptr()
        if key not in weights:
            saved[key] = t.untyped_storage().nbytes()
        return t

    optimizer = torch.optim.Adam(model.parameters())
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    tensors = [*model.parameters(), *model.buffers()]
    tensors += [p.grad for p in model.parameters() if p.grad is not None]
    tensors += [s for state in optimizer.state.values() for k, s in state.items() if k != "step"]
    return sum(t.numel() * t.element_size() for t in tensors) + sum(saved.values())


@pytest.mark.parametrize("pool", [None, "max"])
def test_train_memory_is_within_10_percent_of_a_real_step(pool: str | None) -> None:
    model = CNNClassifier(3, [16, 32], [64], 10, input_shape=(16, 16), pool=pool, activation="gelu")
    x, y = torch.randn(32, 3, 16, 16), torch.randint(0, 10, (32,))
    predicted = summary(model, (3, 16, 16), batch_size=32).train_memory_bytes
    measured = _real_training_step_bytes(model, x, y)
    assert abs(predicted - measured) / measured < 0.10, (predicted, measured)


def test_specs_and_families_are_built_on_meta() -> None:
    spec = {
        "input": [1, 28, 28],
        "model": [{"conv_block": {"out": 8, "kernel_size": 3}}, "flatten", {"linear": {"out": 10}}],
    }
    assert summary(spec).total_params == 80 + 16 + 8 * 26 * 26 * 10 + 10
    assert summary("cnn_classifier", input_shape=(1, 28, 28)).total_params == 51_930_186
    tokens = {
        "input": [6],
        "input_dtype": "long",
        "model": [{"embedding": {"num_embeddings": 50, "out": 4}}],
    }
    assert summary(tokens).rows[0].output_shape == [1, 6, 4]


def test_a_model_larger_than_memory_is_summarised() -> None:
    widths = [16384] * 5  # four 16384x16384 layers: 1.07B parameters, 4 GiB in float32
    spec = {"input": [widths[0]], "model": [{"linear": {"out": w}} for w in widths[1:]]}
    result = summary(spec, batch_size=8)
    assert result.total_params == 4 * (16384 * 16384 + 16384)
    assert result.train_memory_bytes > 4 * result.param_bytes


def test_input_data_tuples_and_dicts() -> None:
    class Two(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(3, 2)

        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return self.proj(a + b)

    as_tuple = summary(Two(), input_data=(torch.randn(5, 3), torch.randn(5, 3)))
    as_dict = summary(Two(), input_data={"a": torch.randn(5, 3), "b": torch.randn(5, 3)})
    for result in (as_tuple, as_dict):
        assert result.batch_size == 5
        assert result.macs == 5 * 3 * 2
        assert result.input_bytes == 2 * 5 * 3 * 4


def test_to_dict_is_json_and_str_has_the_totals() -> None:
    result = summary(
        CNNClassifier(1, [8], [], 10, input_shape=(8, 8)),
        (1, 8, 8),
        columns=("input_shape", "output_shape", "params", "trainable", "macs"),
    )
    data = json.loads(json.dumps(result.to_dict()))
    assert data["total_params"] == result.total_params
    assert data["rows"][0]["path"] == ""
    text = str(result)
    assert "input shape" in text
    assert f"total params: {result.total_params:,}" in text
    assert "training memory with Adam" in text


def test_depth_limits_the_rows() -> None:
    model = CNNClassifier(1, [8, 16], [32], 10, input_shape=(8, 8))
    assert {row.depth for row in summary(model, (1, 8, 8), depth=1).rows} == {0, 1}
    assert max(row.depth for row in summary(model, (1, 8, 8), depth=5).rows) == 4


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"input_shape": (4,), "columns": ("shape",)},
            ConfigError,
            "unknown summary column 'shape'",
        ),
        (
            {"input_shape": (4,), "batch_size": 0},
            ConfigError,
            "batch_size must be a positive integer, got 0",
        ),
        (
            {"input_shape": (4, 0)},
            ConfigError,
            r"input_shape\[1\]: sizes must be positive integers, got 0",
        ),
        ({"input_shape": 4}, ConfigError, "input_shape: expected a list of positive sizes"),
        ({"input_shape": "4,x"}, ConfigError, "input_shape: expected comma-separated positive"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        summary(nn.Linear(4, 2), **kwargs)


@pytest.mark.parametrize("shape", ["3,4", "3x4", [3, 4], (3, 4)])
def test_input_shapes_are_read_as_everywhere(shape: Any) -> None:
    assert summary(nn.Linear(4, 2), input_shape=shape).rows[0].output_shape == [1, 3, 2]


def test_not_a_model() -> None:
    with pytest.raises(
        ArgumentError, match=r"summary takes an nn\.Module, a spec or a family name, got int"
    ):
        summary(3)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="needs input_shape"):
        summary("cnn_classifier")


def test_summary_is_exported() -> None:
    assert brickwork.summary is summary
