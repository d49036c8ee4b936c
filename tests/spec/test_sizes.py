"""brickwork.spec.sizes: sizes inferred from the incoming shape, or written by hand."""

from typing import Any

import pytest
from torch import nn

from brickwork import build, to_spec
from brickwork.spec import describe_ranks


@pytest.mark.parametrize(
    ("item", "written"),
    [
        ({"linear": {"in_features": 12, "out": 3}}, "in_features"),
        ({"conv2d": {"in_channels": 3, "out_channels": 4, "kernel_size": 1}}, "in_channels"),
        ({"batchnorm2d": {"num_features": 3}}, "num_features"),
        ({"layernorm": {"channels": 12}}, "channels"),
    ],
)
def test_sizes_written_by_hand_that_agree_are_accepted(item: dict[str, Any], written: str) -> None:
    shape = [12] if "linear" in item or "layernorm" in item else [3, 4, 4]
    ((brick, arguments),) = item.items()
    by_hand = to_spec(build({"input": shape, "model": [item]}))["model"][0][brick]
    left_out = {brick: {k: v for k, v in arguments.items() if k != written}}
    inferred = to_spec(build({"input": shape, "model": [left_out]}))["model"][0][brick]
    assert by_hand[written] == arguments[written]
    assert by_hand[written] == inferred[written]
    assert by_hand == inferred


@pytest.mark.parametrize(
    ("input_shape", "cls"),
    [
        ([6], nn.BatchNorm1d),
        ([6, 9], nn.BatchNorm1d),
        ([6, 4, 4], nn.BatchNorm2d),
        ([6, 2, 3, 4], nn.BatchNorm3d),
    ],
)
def test_batchnorm_picks_its_form_from_the_incoming_rank(
    input_shape: list[int], cls: type[nn.Module]
) -> None:
    model = build({"input": input_shape, "model": ["batchnorm"]})
    assert type(model[0]) is cls
    assert to_spec(model)["model"][0] == {
        "batchnorm": {"channels": 6, "dims": len(input_shape) - 1 or 1}
    }


@pytest.mark.parametrize(
    ("ranks", "text"),
    [((1,), "(F,)"), ((1, 2), "(F,) or (C, L)"), ((3,), "(C, H, W)"), ((5,), "rank 5")],
)
def test_describe_ranks(ranks: tuple[int, ...], text: str) -> None:
    assert describe_ranks(ranks) == text
