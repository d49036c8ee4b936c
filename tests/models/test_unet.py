import itertools

import pytest
import torch
from torch import nn

from brickwork import UNet, count_params
from brickwork.errors import ConfigError, ShapeError


def hand_count(in_chans: int, n_classes: int, widths: tuple[int, ...]) -> int:
    """U-Net's parameters counted layer by layer (3×3 convs without bias, batch norm)."""

    def double(i: int, o: int) -> int:
        return 9 * i * o + 2 * o + 9 * o * o + 2 * o

    total = sum(double(i, o) for i, o in itertools.pairwise([in_chans, *widths]))
    for low, high in itertools.pairwise(widths):
        total += high * low * 4 + low  # 2×2 transposed convolution
        total += double(2 * low, low)
    return total + widths[0] * n_classes + n_classes


def test_the_papers_widths() -> None:
    model = UNet(1, 2)
    assert count_params(model) == hand_count(1, 2, (64, 128, 256, 512, 1024)) == 31_036_546


@pytest.mark.parametrize(
    ("kwargs", "hw"),
    [
        ({"widths": (8, 16, 32)}, (32, 32)),
        ({"widths": (8, 16, 32), "upsample": "bilinear"}, (16, 24)),
        ({"widths": (4, 8), "norm": None}, (6, 10)),
        ({"widths": (8, 16, 32), "pad": True}, (30, 33)),
        ({"widths": (8, 16, 32, 64), "pad": True, "upsample": "bilinear"}, (17, 9)),
    ],
)
def test_output_keeps_the_input_size(kwargs: dict[str, object], hw: tuple[int, int]) -> None:
    model = UNet(3, 5, **kwargs)  # type: ignore[arg-type]
    out = model(torch.randn(2, 3, *hw))
    assert out.shape == (2, 5, *hw)
    assert torch.isfinite(out).all()


def test_paths_are_module_lists_and_skips_are_concatenated() -> None:
    model = UNet(1, 2, widths=(8, 16, 32))
    assert isinstance(model.encoder, nn.ModuleList)
    assert isinstance(model.decoder, nn.ModuleList)
    assert model.decoder[0][0].in_channels == 2 * 16  # skip (16) + upsampled (16)
    assert model.decoder[1][0].in_channels == 2 * 8


@pytest.mark.parametrize(
    ("hw", "message"),
    [
        ((30, 32), r"multiples of 4; got 30×32 \(nearest: H 28 or 32, W 32 or 36\)"),
        ((3, 3), r"multiples of 4; got 3×3 \(nearest: H 4 or 4, W 4 or 4\)"),
    ],
)
def test_sizes_that_do_not_halve_cleanly(hw: tuple[int, int], message: str) -> None:
    model = UNet(1, 2, widths=(8, 16, 32))
    with pytest.raises(ShapeError, match=message) as info:
        model(torch.randn(1, 1, *hw))
    assert info.value.hint is not None
    assert "pad=True" in info.value.hint
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"upsample": "nearest"}, "unknown upsample 'nearest'"),
        ({"widths": (8,)}, "widths needs at least 2 sizes"),
        ({"n_classes": 0}, "n_classes"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        UNet(1, **kwargs)  # type: ignore[arg-type]
