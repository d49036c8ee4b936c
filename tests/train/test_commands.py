from typing import Any

import pytest

from brickwork.errors import ConfigError
from brickwork.train import Dataset, load_dataset
from brickwork.train.commands import train_model


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


def test_families_take_the_datasets_class_count(digits: Dataset) -> None:
    model = train_model({"model": {"resnet18_small": {}}}, digits, None, resume=False)
    assert model.fc.out_features == 10
    assert model.conv1.in_channels == 1


def test_the_default_is_the_guides_classifier(digits: Dataset) -> None:
    model = train_model(None, digits, None, resume=False)
    assert type(model).__name__ == "CNNClassifier"
    assert model.decoder.in_features == 64 * 8 * 8


@pytest.mark.parametrize(
    "spec",
    [
        {"model": {"conv_block": {"out": 10, "kernel_size": 8}}},
        {"model": [{"flatten": None}, {"linear": {"out": 3}}]},
    ],
)
def test_a_spec_whose_outputs_do_not_fit_the_classes(digits: Dataset, spec: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="but digits has 10 classes"):
        train_model(spec, digits, None, resume=False)
