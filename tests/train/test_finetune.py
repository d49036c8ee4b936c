"""Fine-tuning: --init from a brickwork file or a torchvision/timm-layout ResNet state dict,
a head of another class count replaced, --freeze keeping parameters and batch-norm statistics."""

import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file
from small_models import small_model

import brickwork
from brickwork import create_model
from brickwork.errors import CheckpointError, ConfigError
from brickwork.train import Dataset, RunInterruptedError, TrainConfig, fit
from brickwork.train.freeze import freeze
from brickwork.train.pretrained import init_from
from brickwork.train.run import Hooks, Opening
from brickwork.train.setup import prepared

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import torchvision_resnet

QUIET: dict[str, Any] = {"log": lambda _: None}


def first_weights(model: torch.nn.Module, data: Dataset, config: TrainConfig) -> dict[str, Any]:
    """The model's state as a run has it before its first step."""
    opening = Opening(None, False, False, True)
    with prepared(model, data, config, opening, Hooks(log=lambda _: None)) as run:
        return {k: v.clone() for k, v in run.model.state_dict().items()}


def test_init_from_a_brickwork_model_file_gives_its_weights_before_step_1(
    tmp_path: Path, digits: Dataset
) -> None:
    trained = small_model()
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(1.0)
    path = brickwork.save(trained, tmp_path / "trained.safetensors")
    state = first_weights(small_model(), digits, TrainConfig(init=str(path)))
    for name, tensor in trained.state_dict().items():
        torch.testing.assert_close(state[name], tensor, rtol=0, atol=0)


@pytest.mark.parametrize(
    "prefix", ["", "module.", "_orig_mod."], ids=["torchvision", "ddp", "compiled"]
)
def test_a_torchvision_layout_resnet18_maps_with_only_its_head_left_out(
    tmp_path: Path, prefix: str
) -> None:
    torch.manual_seed(0)
    reference = torchvision_resnet.resnet18()  # 1000 classes
    path = tmp_path / "tv.safetensors"
    save_file({prefix + k: v.contiguous() for k, v in reference.state_dict().items()}, str(path))
    model = create_model("resnet18", n_classes=10)
    head = model.fc.weight.clone()
    logged: list[str] = []
    matched = init_from(model, path, strict=True, log=logged.append)
    assert matched.missing == []
    assert matched.unexpected == []
    assert matched.replaced == ("fc", 1000, 10)
    assert "init: fc 1000 → 10 classes, replaced" in logged
    torch.testing.assert_close(model.conv1.weight, reference.conv1.weight, rtol=0, atol=0)
    torch.testing.assert_close(model.layer4[1].bn2.running_var, reference.layer4[1].bn2.running_var)
    torch.testing.assert_close(model.fc.weight, head, rtol=0, atol=0)  # as built, fresh


def test_not_strict_logs_the_keys_it_leaves_out(tmp_path: Path) -> None:
    state = create_model("resnet18_small", n_classes=3).state_dict()
    renamed = {k.replace("fc.", "head.fc."): v for k, v in state.items()}  # timm's newer heads
    path = tmp_path / "timm.safetensors"
    save_file(renamed, str(path))
    logged: list[str] = []
    init_from(create_model("resnet18_small", n_classes=3), path, strict=False, log=logged.append)
    assert "init: missing 2 keys: fc.weight, fc.bias; unexpected 2 keys: head.fc.bias, head.fc.weight" in logged  # fmt: skip


def _bad_file(tmp_path: Path, case: str) -> Path:
    path = tmp_path / f"{case}.safetensors"
    state = create_model("resnet18_small", n_classes=3).state_dict()
    if case == "damaged":
        save_file(dict(state), str(path))
        path.write_bytes(path.read_bytes()[:4000])
    elif case == "keys":
        save_file({f"backbone.{k}": v for k, v in state.items()}, str(path))
    elif case == "partial":
        save_file({k: v for k, v in state.items() if not k.startswith("layer4")}, str(path))
    elif case == "shape":
        save_file({**state, "conv1.weight": torch.zeros(64, 3, 7, 7)}, str(path))
    return path


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "missing.safetensors: no such file"),
        ("damaged", "not a readable safetensors file"),
        ("keys", "no key matches the model (missing 122 keys: conv1.weight, bn1.weight"),
        ("partial", "its keys do not match the model's (missing 30 keys: layer4.0.conv1.weight"),
        ("shape", "conv1.weight is [64, 3, 7, 7] in the file, [64, 3, 3, 3] in the model"),
    ],
)
def test_a_bad_init_file_is_one_line_naming_it(tmp_path: Path, case: str, message: str) -> None:
    path = _bad_file(tmp_path, case)
    model = create_model("resnet18_small", n_classes=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError) as err:
        init_from(model, path, strict=True, log=lambda _: None)
    text = str(err.value)
    assert text.startswith(f"--init {path}")
    assert message in text
    assert "\n" not in text
    for name, tensor in model.state_dict().items():  # nothing half-loaded
        torch.testing.assert_close(tensor, before[name], rtol=0, atol=0)


@pytest.mark.parametrize(
    ("patterns", "message"),
    [
        (
            ["layer9*"],
            "--freeze 'layer9*' matches no module of ResNet (its modules: conv1, maxpool, bn1",
        ),
        (["conv1", "fc.*"], "--freeze 'fc.*' matches no module of ResNet"),
    ],
)
def test_a_freeze_pattern_that_matches_nothing_is_one_line(
    patterns: list[str], message: str
) -> None:
    with pytest.raises(ConfigError, match=None) as err:
        freeze(create_model("resnet18_small", n_classes=3), patterns)
    assert str(err.value).startswith(message)


def test_frozen_parameters_and_their_batch_norm_statistics_do_not_move(digits: Dataset) -> None:
    model = small_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    config = TrainConfig(epochs=1, batch_size=128, lr=1e-2, freeze=["encoder.conv_blocks.0*"])
    fit(model, digits, config, **QUIET)
    frozen = [k for k in before if k.startswith("encoder.conv_blocks.0.")]
    assert any("running_mean" in k for k in frozen)
    state = model.state_dict()
    for name in frozen:  # weights, biases, running mean and variance, batches counted
        torch.testing.assert_close(state[name], before[name], rtol=0, atol=0)
    assert not torch.equal(
        model.encoder.conv_blocks[1][0].weight, before["encoder.conv_blocks.1.0.weight"]
    )
    assert all(not p.requires_grad for p in model.encoder.conv_blocks[0].parameters())


def test_frozen_parameters_are_left_out_of_the_optimizer(digits: Dataset) -> None:
    config = TrainConfig(freeze=["encoder.*"])
    opening = Opening(None, False, False, True)
    model = small_model()
    with prepared(model, digits, config, opening, Hooks(log=lambda _: None)) as run:
        optimized = {id(p) for group in run.optimizer.param_groups for p in group["params"]}
        assert optimized == {id(p) for p in model.decoder.parameters()}
        run.model.train()
        assert len(run.frozen_norms) == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"init": ""}, "--init must name a .safetensors file"),
        ({"init_strict": "no"}, "--init-strict must be true or false"),
        ({"freeze": [""]}, "--freeze takes module path patterns"),
    ],
)
def test_bad_fine_tuning_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**options).check()


@pytest.mark.slow
def test_resume_does_not_read_the_init_file_again(tmp_path: Path, digits: Dataset) -> None:
    init = brickwork.save(small_model(), tmp_path / "init.safetensors")
    config = TrainConfig(epochs=1, batch_size=256, init=str(init), freeze=["decoder.*"])

    def interrupt(model: torch.nn.Module, epoch: int, step: int) -> None:
        if step == 1:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(RunInterruptedError):
        fit(small_model(), digits, config, out=tmp_path / "run", on_step=interrupt, **QUIET)
    init.unlink()  # the checkpoint has the weights: --resume needs no init file
    logged: list[str] = []
    fit(small_model(), digits, config, out=tmp_path / "run", resume=True, log=logged.append)
    assert not any(line.startswith("init:") for line in logged)
