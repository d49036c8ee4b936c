import pytest
from torch import nn

import brickwork
from brickwork import MODELS, create_model, list_models, register_model
from brickwork.errors import ArgumentError, ConfigError


def test_list_models_with_a_glob() -> None:
    assert list_models("resnet*_small") == ["resnet18_small", "resnet34_small", "resnet50_small"]
    assert "unet" in list_models()
    assert list_models("nothing*") == []


def test_create_model_any_spelling() -> None:
    assert isinstance(create_model("ResNet-18"), brickwork.ResNet)


def test_unknown_names_and_arguments_suggest() -> None:
    with pytest.raises(ConfigError, match="unknown model 'resnet19'; did you mean 'resnet18'"):
        create_model("resnet19")
    with pytest.raises(ArgumentError, match="did you mean 'widths'"):
        create_model("unet", width=(8, 16))


def test_register_model_as_a_decorator_and_refusing_duplicates() -> None:
    @register_model(name="tiny_test_net")
    def tiny(n_classes: int = 2) -> nn.Module:
        return nn.Linear(3, n_classes)

    try:
        assert create_model("tiny_test_net", n_classes=4).out_features == 4
        with pytest.raises(ConfigError, match="already registered"):
            register_model(tiny, name="tiny_test_net")
    finally:  # keep the global registry as the other tests expect it
        MODELS.unregister("tiny_test_net")
    assert "tiny_test_net" not in MODELS
