from pathlib import Path
from typing import Any

import pytest

import brickwork
from brickwork.errors import ConfigError
from brickwork.train import Dataset, TrainConfig, distributed, fit
from brickwork.train.commands import train_config
from brickwork.train.distributed import World
from brickwork.train.model_choice import train_model


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


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory, digits: Dataset) -> Path:
    run = tmp_path_factory.mktemp("run")
    model = brickwork.CNNClassifier(1, [4], [8], 10, input_shape=(8, 8))
    fit(model, digits, TrainConfig(epochs=1, batch_size=256), out=run, log=lambda _: None)
    return run


@pytest.mark.parametrize(
    "given",
    [
        {"device": "cpu"},
        {"compile": True},
        {"channels_last": True},
        {"device": "cpu", "channels_last": True},
    ],
)
def test_resume_may_change_where_and_how_fast_a_run_goes(
    finished_run: Path, given: dict[str, Any]
) -> None:
    config = train_config(finished_run, True, given)
    assert {k: getattr(config, k) for k in given} == given
    assert config.epochs == 1  # the rest is the run's own
    assert config.batch_size == 256


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"precision": "bf16"}, "--precision bf16 contradicts the run's saved precision fp32"),
        ({"lr": 0.1}, "--lr 0.1 contradicts the run's saved lr 0.003"),
        ({"batch_size": 64}, "--batch-size 64 contradicts the run's saved batch-size 256"),
    ],
)
def test_resume_refuses_options_that_change_what_is_computed(
    finished_run: Path, given: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        train_config(finished_run, True, given)


def test_resume_with_more_epochs_extends_the_run(finished_run: Path) -> None:
    assert train_config(finished_run, True, {"epochs": 3}).epochs == 3


def test_resume_with_fewer_epochs_is_one_line(finished_run: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"--epochs 0 is fewer than the 1 of the run in .*: a run can be extended, not shortened",
    ):
        train_config(finished_run, True, {"epochs": 0})


def test_a_batch_smaller_than_the_number_of_processes_is_refused(
    monkeypatch: pytest.MonkeyPatch, digits: Dataset, tmp_path: Path
) -> None:
    monkeypatch.setattr(distributed, "start", lambda device: World(0, 4, 0))
    model = brickwork.CNNClassifier(1, [4], [8], 10, input_shape=(8, 8))
    with pytest.raises(
        ConfigError,
        match="--batch-size 3 is the whole step's batch, shared out among 4 processes: it must be at least 4",
    ):
        fit(model, digits, TrainConfig(batch_size=3), out=tmp_path / "run", log=lambda _: None)
    assert not (tmp_path / "run").exists()
    with pytest.raises(
        ConfigError,
        match="--batch-size 9 is the whole step's batch, shared out among 4 processes in 3 micro-batches each: it must be at least 12",
    ):
        fit(model, digits, TrainConfig(batch_size=9, accumulate=3), out=tmp_path / "run", log=lambda _: None)  # fmt: skip
    assert not (tmp_path / "run").exists()
