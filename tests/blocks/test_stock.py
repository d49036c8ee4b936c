"""Stock bricks mean what the same names mean in ``norm=``: ``layernorm`` and ``groupnorm``."""

from typing import Any

import pytest
import torch
from torch import nn

from brickwork import build, count_params, make_norm, to_spec


def _over(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    mean = x.mean(dims, keepdim=True)
    var = x.var(dims, unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + 1e-5)


@pytest.mark.parametrize("shape", [(6,), (6, 7), (6, 5, 7), (6, 2, 3, 4)])
def test_layernorm_brick_normalises_over_channels_like_the_norm(shape: tuple[int, ...]) -> None:
    model = build({"input": list(shape), "model": ["layernorm"]})
    x = torch.randn(3, *shape)
    torch.testing.assert_close(model(x), _over(x, (1,)))
    norm = make_norm("layernorm", shape[0], dims=max(1, len(shape) - 1))
    norm.load_state_dict(model[0].state_dict())
    torch.testing.assert_close(model(x), norm(x))
    assert count_params(model) == 2 * shape[0]  # a scale and a shift per channel


def test_layernorm_over_the_whole_sample_is_an_argument() -> None:
    model = build({"input": [4, 3, 5], "model": [{"layernorm": {"over": "sample"}}]})
    x = torch.randn(2, 4, 3, 5)
    torch.testing.assert_close(model(x), _over(x, (1, 2, 3)))
    assert count_params(model) == 2 * 4 * 3 * 5  # nn.LayerNorm([C, H, W]), as the guides write it
    rebuilt = build(to_spec(model))
    assert rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(rebuilt(x), model(x))


@pytest.mark.parametrize(("norm", "groups"), [("groupnorm", 8), ({"groupnorm": {"groups": 4}}, 4)])
def test_groupnorm_brick_is_the_norm(norm: Any, groups: int) -> None:
    brick = build({"input": [8, 5, 5], "model": [norm]})[0]
    in_block = build(
        {"input": [3, 5, 5], "model": [{"conv_block": {"out": 8, "kernel_size": 1, "norm": norm}}]}
    )[0][1]
    for module in (brick, in_block):
        assert isinstance(module, nn.GroupNorm)
        assert (module.num_groups, module.num_channels) == (groups, 8)
