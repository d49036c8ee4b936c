import pytest
import torch
from torch import nn

from brickwork import BRICKS, dec_block, linear_block
from brickwork.errors import ArgumentError, ConfigError


def test_linear_then_sigmoid_by_default() -> None:
    block = dec_block(1024, 512)
    assert [type(m) for m in block] == [nn.Linear, nn.Sigmoid]
    assert repr(block[0]) == "Linear(in_features=1024, out_features=512, bias=True)"


def test_activation_and_linear_arguments() -> None:
    block = dec_block(4, 3, "tanh", bias=False)
    assert isinstance(block[1], nn.Tanh)
    assert block[0].bias is None
    assert block(torch.randn(5, 2, 4)).shape == (5, 2, 3)


def test_linear_block_is_the_same_brick() -> None:
    assert linear_block is dec_block
    assert BRICKS.get("linear_block") is dec_block


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        ((0, 4), {}, ConfigError, "dec_block in_f must be a positive integer, got 0"),
        ((4, -1), {}, ConfigError, "dec_block out_f must be a positive integer, got -1"),
        ((4, 4), {"bais": False}, ArgumentError, "did you mean 'bias'"),
        ((4, 4), {"out_features": 2}, ArgumentError, "unknown argument 'out_features'"),
        ((4, 4, "sigmod"), {}, ConfigError, "did you mean 'sigmoid'"),
    ],
)
def test_bad_input(
    args: tuple[object, ...], kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        dec_block(*args, **kwargs)  # type: ignore[arg-type]
