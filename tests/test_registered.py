"""One test over every registered brick and model: shapes, finite outputs, gradients, export."""

from typing import Any

import pytest
import torch
from torch import nn

from brickwork import BRICKS, MODELS

# brick name → (arguments, input shape, expected output shape). Every registered brick needs a row.
BRICK_CASES: dict[str, tuple[dict[str, Any], tuple[int, ...], tuple[int, ...]]] = {
    "conv_block": (
        {"in_f": 3, "out_f": 8, "kernel_size": 3, "padding": 1},
        (2, 3, 6, 6),
        (2, 8, 6, 6),
    ),
    "dec_block": ({"in_f": 12, "out_f": 5}, (2, 12), (2, 5)),
    "identity": ({}, (2, 3), (2, 3)),
    "linear": ({"in_features": 6, "out_features": 4}, (2, 6), (2, 4)),
    "conv1d": ({"in_channels": 3, "out_channels": 4, "kernel_size": 3}, (2, 3, 9), (2, 4, 7)),
    "conv2d": ({"in_channels": 3, "out_channels": 4, "kernel_size": 3}, (2, 3, 9, 9), (2, 4, 7, 7)),
    "batchnorm": ({"channels": 3, "dims": 1}, (2, 3), (2, 3)),
    "batchnorm1d": ({"num_features": 3}, (2, 3), (2, 3)),
    "batchnorm2d": ({"num_features": 3}, (2, 3, 4, 4), (2, 3, 4, 4)),
    "layernorm": ({"normalized_shape": 5}, (2, 5), (2, 5)),
    "groupnorm": ({"num_groups": 2, "num_channels": 4}, (2, 4, 3, 3), (2, 4, 3, 3)),
    "dropout": ({}, (2, 5), (2, 5)),
    "dropout2d": ({}, (2, 3, 4, 4), (2, 3, 4, 4)),
    "embedding": ({"num_embeddings": 10, "embedding_dim": 4}, (2, 5), (2, 5, 4)),
    "flatten": ({}, (2, 3, 4), (2, 12)),
    "maxpool2d": ({"kernel_size": 2}, (2, 3, 8, 8), (2, 3, 4, 4)),
    "avgpool2d": ({"kernel_size": 2}, (2, 3, 8, 8), (2, 3, 4, 4)),
    "adaptiveavgpool2d": ({"output_size": 1}, (2, 3, 8, 8), (2, 3, 1, 1)),
}

# model name → (small arguments, input shape). Every registered model needs a row.
MODEL_CASES: dict[str, tuple[dict[str, Any], tuple[int, ...]]] = {
    "cnn_classifier": (
        {"in_c": 3, "enc_sizes": [8, 16], "dec_sizes": [32], "input_shape": (8, 8)},
        (2, 3, 8, 8),
    ),
}


def test_every_registered_brick_and_model_has_a_case() -> None:
    assert sorted(BRICK_CASES) == BRICKS.names()
    assert sorted(MODEL_CASES) == MODELS.names()


def _assert_trains(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if x.is_floating_point():
        x.requires_grad_()  # so that bricks without parameters can run backward too
    out = model(x)
    assert torch.isfinite(out).all()
    out.float().pow(2).mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), name
    return out


@pytest.mark.parametrize("name", sorted(BRICK_CASES))
def test_brick(name: str) -> None:
    kwargs, in_shape, out_shape = BRICK_CASES[name]
    brick = BRICKS.build((name, kwargs))
    int_ids = BRICKS.size_rule(name).int_input
    out = _assert_trains(
        brick, torch.randint(0, 10, in_shape) if int_ids else torch.randn(in_shape)
    )
    assert out.shape == out_shape


@pytest.mark.parametrize("name", sorted(MODEL_CASES))
def test_model(name: str) -> None:
    kwargs, in_shape = MODEL_CASES[name]
    model = MODELS.build((name, kwargs))
    out = _assert_trains(model, torch.randn(in_shape))
    assert out.shape == (in_shape[0], model.n_classes)


@pytest.mark.parametrize("name", sorted(MODEL_CASES))
def test_model_n_classes_override(name: str) -> None:
    kwargs, in_shape = MODEL_CASES[name]
    model = MODELS.build((name, {**kwargs, "n_classes": 7}))
    assert model(torch.randn(in_shape)).shape == (in_shape[0], 7)


@pytest.mark.parametrize("name", sorted(MODEL_CASES))
def test_model_with_defaults(name: str) -> None:
    model = MODELS.build(name)
    assert isinstance(model, nn.Module)
    assert sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.parametrize("name", sorted(MODEL_CASES))
def test_model_exports(name: str) -> None:
    kwargs, in_shape = MODEL_CASES[name]
    model = MODELS.build((name, kwargs)).eval()
    x = torch.randn(in_shape)
    exported = torch.export.export(model, (x,))
    torch.testing.assert_close(exported.module()(x), model(x))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MODEL_CASES))
def test_model_compiles(name: str) -> None:
    kwargs, in_shape = MODEL_CASES[name]
    model = MODELS.build((name, kwargs)).eval()
    x = torch.randn(in_shape)
    compiled = torch.compile(model)
    torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)
