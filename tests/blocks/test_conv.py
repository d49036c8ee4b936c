import pytest
import torch
from torch import nn

from brickwork import conv_block
from brickwork.errors import ArgumentError, ConfigError


def test_prints_the_guides_three_children() -> None:
    block = conv_block(1, 32, "lrelu", kernel_size=3, padding=1)
    lines = [line.strip() for line in repr(block).splitlines()]
    assert lines[0] == "Sequential("
    assert lines[1] == "(0): Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))"
    assert lines[2].startswith("(1): BatchNorm2d(32, eps=1e-05, momentum=0.1, affine=True")
    assert lines[3] == "(2): LeakyReLU(negative_slope=0.01)"
    assert len(block) == 3


def test_keeps_the_conv_bias_like_the_guide() -> None:
    block = conv_block(1, 32, kernel_size=3, padding=1)
    assert block[0].bias is not None
    assert sum(p.numel() for p in block.parameters()) == 1 * 32 * 9 + 32 + 2 * 32


def test_without_norm_is_conv_then_activation() -> None:
    block = conv_block(3, 8, "gelu", norm=None, kernel_size=1)
    assert [type(m) for m in block] == [nn.Conv2d, nn.GELU]
    assert block[0].bias is not None


def test_positional_conv_arguments_pass_through() -> None:
    block = conv_block(3, 8, "relu", 5, 2, 2)  # kernel_size, stride, padding
    assert block[0].kernel_size == (5, 5)
    assert block[0].stride == (2, 2)
    assert block[0].padding == (2, 2)


@pytest.mark.parametrize(
    ("kwargs", "in_hw", "out_hw"),
    [
        ({"kernel_size": 3, "padding": 1}, (28, 28), (28, 28)),
        ({"kernel_size": 3}, (28, 28), (26, 26)),
        ({"kernel_size": 3, "stride": 2, "padding": 1}, (28, 28), (14, 14)),
        ({"kernel_size": 5, "padding": 2}, (7, 9), (7, 9)),
        ({"kernel_size": 1}, (1, 1), (1, 1)),
    ],
)
def test_output_shapes(
    kwargs: dict[str, int], in_hw: tuple[int, int], out_hw: tuple[int, int]
) -> None:
    block = conv_block(3, 16, **kwargs)
    assert block(torch.randn(2, 3, *in_hw)).shape == (2, 16, *out_hw)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        ((3, 8), {}, ArgumentError, "conv_block needs a kernel size"),
        (
            (3, 8, 3),
            {},
            ArgumentError,
            r"the third positional argument is the activation, here 3\)",
        ),
        (
            (3, 8),
            {"kernel_size": 3, "in_channels": 2},
            ArgumentError,
            "unknown argument 'in_channels'",
        ),
        (
            (3, 8),
            {"kernal_size": 3},
            ArgumentError,
            "unknown argument 'kernal_size'; did you mean 'kernel_size'",
        ),
        (
            (0, 8),
            {"kernel_size": 3},
            ConfigError,
            "conv_block in_f must be a positive integer, got 0",
        ),
        (
            (3, 8.0),
            {"kernel_size": 3},
            ConfigError,
            "conv_block out_f must be a positive integer, got 8.0",
        ),
        ((3, 8, "rleu"), {"kernel_size": 3}, ConfigError, "did you mean 'relu'"),
        ((3, 8), {"kernel_size": 3, "norm": "batchnrom"}, ConfigError, "did you mean 'batchnorm'"),
    ],
)
def test_bad_input(
    args: tuple[object, ...], kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        conv_block(*args, **kwargs)  # type: ignore[arg-type]
