"""Every MAC op family is counted, as PyTorch's FlopCounterMode counts it, on meta and on real
tensors; an op without a formula is listed, never silently dropped."""

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from brickwork import summary
from brickwork.inspect.macs import op_macs

F = nn.functional


class Fn(nn.Module):
    """A module whose forward is one function of its inputs and its own weight."""

    def __init__(self, fn: Callable[..., torch.Tensor], *weights: torch.Tensor) -> None:
        super().__init__()
        self.fn = fn
        self.w = nn.ParameterList([nn.Parameter(w) for w in weights])

    def forward(self, *x: torch.Tensor) -> torch.Tensor:
        return self.fn(*x, *self.w)


def r(*shape: int) -> torch.Tensor:
    return torch.randn(*shape)


# (name, model, inputs, MACs counted by hand)
FAMILIES: list[tuple[str, Callable[[], nn.Module], Callable[[], tuple[Any, ...]], int]] = [
    ("mm", lambda: Fn(torch.mm, r(4, 5)), lambda: (r(3, 4),), 3 * 4 * 5),
    ("addmm", lambda: nn.Linear(4, 5), lambda: (r(3, 4),), 3 * 4 * 5),
    ("matmul-3d", lambda: Fn(torch.matmul, r(4, 5)), lambda: (r(2, 3, 4),), 2 * 3 * 4 * 5),
    ("bmm", lambda: Fn(torch.bmm, r(2, 4, 5)), lambda: (r(2, 3, 4),), 2 * 3 * 4 * 5),
    (
        "baddbmm",
        lambda: Fn(lambda x, a, b: torch.baddbmm(x, a, b), r(2, 3, 4), r(2, 4, 5)),
        lambda: (r(2, 3, 5),),
        2 * 3 * 4 * 5,
    ),
    (
        "addbmm",
        lambda: Fn(lambda x, a, b: torch.addbmm(x, a, b), r(2, 3, 4), r(2, 4, 5)),
        lambda: (r(3, 5),),
        2 * 3 * 4 * 5,
    ),
    ("mv", lambda: Fn(lambda v, a: torch.mv(a, v), r(3, 4)), lambda: (r(4),), 12),
    ("addmv", lambda: Fn(lambda v, a: torch.addmv(r(3), a, v), r(3, 4)), lambda: (r(4),), 12),
    ("dot", lambda: Fn(torch.dot, r(7)), lambda: (r(7),), 7),
    ("addr", lambda: Fn(lambda v, a: torch.addr(r(3, 4), a, v), r(3)), lambda: (r(4),), 12),
    (
        "einsum",
        lambda: Fn(lambda x, w: torch.einsum("bij,jk->bik", x, w), r(4, 5)),
        lambda: (r(2, 3, 4),),
        2 * 3 * 4 * 5,
    ),
    ("conv2d", lambda: nn.Conv2d(3, 8, 3, padding=1), lambda: (r(2, 3, 6, 6),), 2 * 8 * 36 * 27),
    (
        "conv-transposed",
        lambda: nn.ConvTranspose2d(3, 4, 3),
        lambda: (r(1, 3, 5, 5),),
        3 * 4 * 9 * 25,
    ),
    (
        "sdpa",
        lambda: Fn(F.scaled_dot_product_attention),
        lambda: (r(2, 3, 5, 8), r(2, 3, 7, 8), r(2, 3, 7, 6)),
        2 * 3 * 5 * 7 * (8 + 6),
    ),
    (
        "sdpa-masked",
        lambda: Fn(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)),
        lambda: (r(1, 2, 4, 8), r(1, 2, 4, 8), r(1, 2, 4, 8)),
        1 * 2 * 4 * 4 * 16,
    ),
    ("rnn", lambda: nn.RNN(4, 6), lambda: (r(5, 3, 4),), 5 * 3 * 6 * (4 + 6)),
    ("lstm", lambda: nn.LSTM(4, 6, num_layers=2), lambda: (r(5, 3, 4),), 5 * 3 * 24 * (10 + 12)),
    (
        "gru-bidirectional",
        lambda: nn.GRU(4, 6, bidirectional=True),
        lambda: (r(5, 3, 4),),
        2 * 5 * 3 * 18 * 10,
    ),
    ("lstm-proj", lambda: nn.LSTM(4, 6, proj_size=2), lambda: (r(5, 3, 4),), 5 * 3 * (24 * 6 + 12)),
    (
        "embedding-bag",
        lambda: nn.EmbeddingBag(10, 4, mode="sum"),
        lambda: (torch.randint(0, 10, (3, 5)),),
        3 * 5 * 4,
    ),
    (
        "mha-fast-path",
        lambda: nn.MultiheadAttention(8, 2, batch_first=True).eval().requires_grad_(False),
        lambda: (r(2, 5, 8), r(2, 5, 8), r(2, 5, 8)),
        4 * 2 * 5 * 64 + 2 * 2 * 5 * 5 * 8,
    ),
    (
        "encoder-layer-fast-path",
        lambda: nn.TransformerEncoderLayer(8, 2, 16, batch_first=True).eval().requires_grad_(False),
        lambda: (r(2, 5, 8),),
        4 * 2 * 5 * 64 + 2 * 2 * 5 * 5 * 8 + 2 * 2 * 5 * 8 * 16,
    ),
]


NOT_COUNTED_BY_PYTORCH = {
    "addbmm",
    "mv",
    "addmv",
    "dot",
    "addr",
    "lstm",
    "embedding-bag",
    "mha-fast-path",
    "encoder-layer-fast-path",
}
"""Families that torch.utils.flop_counter has no formula for (it counts 0 for them)."""


@pytest.mark.parametrize(("name", "make", "inputs", "macs"), FAMILIES, ids=[f[0] for f in FAMILIES])
@pytest.mark.parametrize("run", ["meta", "real"])
def test_each_family_is_counted_on_meta_and_real(
    name: str,
    make: Callable[[], nn.Module],
    inputs: Callable[[], tuple[Any, ...]],
    macs: int,
    run: str,
) -> None:
    model = make()
    data = inputs()
    result = summary(model, input_data=data, run=run)  # type: ignore[arg-type]
    assert (result.error, result.run) == (None, run)
    assert result.macs == macs
    assert result.uncounted_ops == {}
    if name in NOT_COUNTED_BY_PYTORCH:
        return
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(*data)
    assert counter.get_total_flops() // 2 == macs


@torch.library.custom_op("brickwork_tests::mystery", mutates_args=())
def mystery(x: torch.Tensor) -> torch.Tensor:
    return x.clone()


@mystery.register_fake
def _(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


def test_an_op_without_a_formula_is_listed_with_its_calls() -> None:
    model = Fn(lambda x, w: mystery(mystery(x) @ w), r(4, 4))
    result = summary(model, (4,), batch_size=2)
    assert result.error is None
    assert result.macs == 2 * 16
    assert result.uncounted_ops == {"brickwork_tests.mystery": 2}
    assert "MACs not counted (no formula) for: brickwork_tests.mystery ×2" in str(result)
    assert result.to_dict()["uncounted_ops"] == {"brickwork_tests.mystery": 2}


def test_the_fused_rnn_kernels_count_each_weight_once_per_token() -> None:
    aten = torch.ops.aten
    x = torch.empty(5, 3, 4, device="meta")  # (T, B, F)
    w_ih, w_hh, b = (torch.empty(s, device="meta") for s in ((24, 4), (24, 6), (24,)))
    assert op_macs(aten._cudnn_rnn.default, (x, [w_ih, w_hh, b, b]), {}, None) == 15 * 24 * 10
    layer = aten.mkldnn_rnn_layer.default
    assert op_macs(layer, (x, w_ih, w_hh, b, b), {}, None) == 15 * 24 * 10


def test_ops_with_no_macs_by_convention_are_not_listed() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Dropout(),
        nn.Flatten(),
        nn.LayerNorm(36),
        nn.Softmax(-1),
    )
    for run in ("meta", "real"):
        assert summary(model, (3, 8, 8), batch_size=2, run=run).uncounted_ops == {}  # type: ignore[arg-type]


def test_in_place_activations_count_no_macs() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Hardswish(inplace=True), nn.SiLU(inplace=True))
    for run in ("meta", "real"):
        result = summary(model, (4,), batch_size=2, run=run)  # type: ignore[arg-type]
        assert (result.macs, result.uncounted_ops) == (32, {})
