"""The summary's direct shape rules give exactly the shapes PyTorch computes."""

from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import flop_registry

from brickwork import summary
from brickwork.inspect.fast_meta import FAST_META
from brickwork.inspect.macs import op_macs

aten = torch.ops.aten


def meta(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(shape, device="meta", dtype=dtype)


CONV_CASES: list[tuple[tuple[int, ...], tuple[int, ...], dict[str, Any]]] = [
    # input, weight, (stride, padding, dilation, transposed, output_padding, groups)
    ((2, 3, 9, 9), (8, 3, 3, 3), {}),
    ((1, 3, 3, 3), (4, 3, 3, 3), {}),  # a 1x1 output: strides of sizes of 1
    ((2, 3, 9, 9), (8, 3, 3, 3), {"stride": [2, 2], "padding": [1, 1]}),
    ((1, 4, 10, 7), (6, 2, 3, 2), {"groups": 2, "dilation": [2, 1]}),
    ((1, 4, 8, 8), (4, 1, 3, 3), {"groups": 4, "padding": [1, 1]}),
    ((2, 3, 11), (5, 3, 4), {"stride": [3], "padding": [0], "dilation": [1]}),
    ((1, 2, 5, 6, 7), (3, 2, 3, 3, 3), {"padding": [1, 0, 2]}),
    (
        (2, 8, 5, 5),
        (8, 4, 3, 3),
        {"transposed": True, "stride": [2, 2], "padding": [1, 1], "output_padding": [1, 1]},
    ),
    ((2, 8, 5, 5), (8, 2, 4, 4), {"transposed": True, "stride": [2, 2], "groups": 2}),
]


@pytest.mark.parametrize(("x_shape", "w_shape", "options"), CONV_CASES)
def test_convolution_shapes(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], options: dict[str, Any]
) -> None:
    n = len(x_shape) - 2
    args = (
        meta(*x_shape),
        meta(*w_shape),
        None,
        options.get("stride", [1] * n),
        options.get("padding", [0] * n),
        options.get("dilation", [1] * n),
        options.get("transposed", False),
        options.get("output_padding", [0] * n),
        options.get("groups", 1),
    )
    ours = FAST_META[aten.convolution.default](*args)
    theirs = aten.convolution.default(*args)
    assert ours.shape == theirs.shape
    assert ours.dtype == theirs.dtype
    assert ours.stride() == theirs.stride()
    pytorch_count = flop_registry[aten.convolution](*args, out_val=theirs) // 2
    assert op_macs(aten.convolution.default, args, {}, ours) == pytorch_count


def test_convolution_that_does_not_fit_is_left_to_pytorch() -> None:
    args = (meta(1, 3, 2, 2), meta(4, 3, 5, 5), None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1)
    assert FAST_META[aten.convolution.default](*args) is None
    wrong_channels = (
        meta(1, 2, 8, 8),
        meta(4, 3, 3, 3),
        None,
        [1, 1],
        [0, 0],
        [1, 1],
        False,
        [0, 0],
        1,
    )
    assert FAST_META[aten.convolution.default](*wrong_channels) is None


@pytest.mark.parametrize(
    ("x_shape", "kernel", "stride", "padding", "dilation", "ceil"),
    [
        ((2, 3, 9, 9), [2, 2], [], [0, 0], [1, 1], False),
        ((2, 3, 9, 9), [3, 3], [2, 2], [1, 1], [1, 1], False),
        ((2, 3, 9, 9), [3, 3], [2, 2], [1, 1], [1, 1], True),
        ((1, 2, 10, 7), [2, 3], [2, 2], [0, 1], [1, 1], True),
        ((3, 11, 11), [3, 3], [3, 3], [0, 0], [2, 2], False),
        ((1, 1, 5, 5), [2, 2], [2, 2], [0, 0], [1, 1], True),
    ],
)
def test_max_pool_shapes(
    x_shape: tuple[int, ...],
    kernel: list[int],
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    ceil: bool,
) -> None:
    args = (meta(*x_shape), kernel, stride, padding, dilation, ceil)
    ours = FAST_META[aten.max_pool2d_with_indices.default](*args)
    theirs = aten.max_pool2d_with_indices.default(*args)
    assert [t.shape for t in ours] == [t.shape for t in theirs]
    assert [t.dtype for t in ours] == [t.dtype for t in theirs]
    assert [t.stride() for t in ours] == [t.stride() for t in theirs]


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_keeps_what_the_cpu_kernel_keeps(training: bool) -> None:
    x = torch.randn(4, 3, 5, 5)
    stats = (torch.ones(3), torch.zeros(3), torch.zeros(3), torch.ones(3))
    real = aten.native_batch_norm.default(x, *stats, training, 0.1, 1e-5)
    ours = FAST_META[aten.native_batch_norm.default](
        x.to("meta"), *(s.to("meta") for s in stats), training, 0.1, 1e-5
    )
    assert [t.shape for t in ours] == [t.shape for t in real]


@pytest.mark.parametrize(
    ("shape", "dim", "keepdim"),
    [
        ((2, 3, 4, 5), [-1, -2], True),
        ((2, 3, 4, 5), [2, 3], False),
        ((2, 3), [0], False),
        ((4, 6), None, False),
    ],
)
def test_mean_shapes(shape: tuple[int, ...], dim: list[int] | None, keepdim: bool) -> None:
    ours = FAST_META[aten.mean.dim](meta(*shape), dim, keepdim)
    theirs = aten.mean.dim(meta(*shape), dim, keepdim)
    assert (ours.shape, ours.stride()) == (theirs.shape, theirs.stride())


@pytest.mark.parametrize(
    ("bias", "a", "b", "fits"),
    [
        ((5,), (3, 4), (4, 5), True),
        ((3, 5), (3, 4), (4, 5), True),
        ((1, 5), (3, 4), (4, 5), True),
        ((5,), (3, 4), (6, 5), False),
        ((7,), (3, 4), (4, 5), False),
    ],
)
def test_matmul_shapes(
    bias: tuple[int, ...], a: tuple[int, ...], b: tuple[int, ...], fits: bool
) -> None:
    ours = FAST_META[aten.addmm.default](meta(*bias), meta(*a), meta(*b))
    if fits:
        assert ours.shape == aten.addmm.default(meta(*bias), meta(*a), meta(*b)).shape
        assert FAST_META[aten.mm.default](meta(*a), meta(*b)).shape == ours.shape
    else:
        assert ours is None


ZOO: list[tuple[nn.Module, tuple[int, ...]]] = [
    (
        nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1, ceil_mode=True),
        ),
        (3, 17, 17),
    ),
    (
        nn.Sequential(
            nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1), nn.Sigmoid()
        ),
        (4, 5, 5),
    ),
    (nn.Sequential(nn.Conv1d(2, 4, 5, dilation=2), nn.BatchNorm1d(4), nn.Tanh()), (2, 20)),
    (
        nn.Sequential(
            nn.Conv3d(1, 2, 3, padding=1), nn.BatchNorm3d(2), nn.AdaptiveAvgPool3d(1), nn.Flatten()
        ),
        (1, 4, 5, 6),
    ),
    (nn.Sequential(nn.Linear(6, 6), nn.LayerNorm(6), nn.GELU(), nn.Dropout(0.1)), (3, 6)),
]


@pytest.mark.parametrize(("model", "input_shape"), ZOO)
def test_summary_shapes_match_a_real_forward(
    model: nn.Module, input_shape: tuple[int, ...]
) -> None:
    model.eval()
    result = summary(model, input_shape, batch_size=2, depth=9)
    real: dict[str, list[int]] = {}

    def record(name: str) -> Any:
        def hook(module: nn.Module, args: Any, out: torch.Tensor) -> None:
            real[name] = list(out.shape)

        return hook

    handles = [m.register_forward_hook(record(name)) for name, m in model.named_modules()]
    with torch.no_grad():
        model(torch.randn(2, *input_shape))
    for handle in handles:
        handle.remove()
    assert {row.path: row.output_shape for row in result.rows} == real


@pytest.mark.parametrize(
    ("x", "w", "b", "groups", "message"),
    [
        ((1, 3, 8, 8), (8, 3, 3, 3), (5,), 1, "expected bias to be 1-dimensional with 8 elements"),
        (
            (1, 8, 8, 8),
            (6, 2, 3, 3),
            None,
            4,
            "expected weight to be divisible by 4 at dimension 0",
        ),
    ],
)
def test_convolutions_the_real_kernel_refuses_are_refused(
    x: tuple[int, ...], w: tuple[int, ...], b: tuple[int, ...] | None, groups: int, message: str
) -> None:
    real_args = (torch.randn(x), torch.randn(w), None if b is None else torch.randn(b))
    with pytest.raises(RuntimeError, match=message):
        nn.functional.conv2d(*real_args, groups=groups)
    meta_args = tuple(None if t is None else t.to("meta") for t in real_args)
    with pytest.raises(RuntimeError, match=message):
        FAST_META[aten.convolution.default](
            *meta_args, [1, 1], [0, 0], [1, 1], False, [0, 0], groups
        )


def test_an_in_place_add_that_does_not_broadcast_is_refused() -> None:
    class BadAdd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 8)
            self.extra = nn.Parameter(torch.randn(5))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x).add_(self.extra)

    assert summary(BadAdd(), (4,)).error is not None
