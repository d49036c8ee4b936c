import pytest
import torch
from torch import nn

from brickwork import MLP, SimpleConvNet, build, create_model, to_spec
from brickwork.errors import ConfigError


def test_mlp_layers() -> None:
    model = MLP([784, 256, 10], activation="gelu", dropout=0.1, norm="layernorm")
    types = [type(m) for m in model.layers]
    assert types == [nn.Linear, type(model.layers[1]), nn.GELU, nn.Dropout, nn.Linear]
    assert model(torch.randn(4, 1, 28, 28)).shape == (4, 10)  # flattens its input


def test_mlp_family_over_28x28() -> None:
    model = create_model("mlp")
    assert [m.out_features for m in model.modules() if isinstance(m, nn.Linear)] == [256, 128, 10]
    spec = to_spec(build({"input": [3, 8, 8], "model": {"mlp": {"hidden": [32], "n_classes": 5}}}))
    assert spec["model"]["mlp"]["in_features"] == 3 * 8 * 8


@pytest.mark.parametrize("hw", [(1, 1), (7, 9), (28, 28), (64, 32)])
def test_simple_convnet_any_size(hw: tuple[int, int]) -> None:
    model = SimpleConvNet(in_chans=2, widths=(4, 8, 16), n_classes=3)
    assert model(torch.randn(2, 2, *hw)).shape == (2, 3)
    assert all(block[0].stride == (2, 2) for block in model.features)


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: MLP([10]), "sizes needs at least 2 sizes"),
        (lambda: MLP([10, 0, 2]), r"sizes\[1\] must be a positive integer"),
        (lambda: SimpleConvNet(widths=()), "widths needs at least 1 size"),
        (lambda: create_model("mlp", hidden=[4, -1]), r"hidden\[1\] must be a positive integer"),
    ],
)
def test_bad_arguments(factory: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        factory()  # type: ignore[operator]
