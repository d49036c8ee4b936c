"""The whole-module rules give exactly the summary that PyTorch's per-op path gives."""

import json
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

import brickwork
from brickwork.inspect import fast_modules


class Block(nn.Module):
    """conv → bn → relu, then an in-place add, with the variants the rules must notice."""

    def __init__(
        self,
        *,
        frozen: bool = False,
        affine: bool = True,
        inplace: bool = True,
        view: bool = False,
        no_grad: bool = False,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4, affine=affine)
        self.relu = nn.ReLU(inplace=inplace)
        self.view, self.no_grad = view, no_grad
        if frozen:
            self.conv.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn(self.conv(x))
        if self.view:
            out = out[:, :2]
        with torch.set_grad_enabled(not self.no_grad):
            out = self.relu(out)
        out += 1
        return out


class ReluOnParameter(nn.Module):
    """An in-place ReLU on a leaf that requires grad: autograd raises."""

    def __init__(self) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=True)
        self.p = nn.Parameter(torch.zeros(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.p) + x


class Checkpointed(nn.Module):
    """Activation checkpointing puts its own saved-tensor hooks on top of the run's."""

    def __init__(self) -> None:
        super().__init__()
        self.block = Block()

    def forward(self, x: torch.Tensor) -> Any:
        return checkpoint(self.block, x, use_reentrant=False)


class ChannelsLast(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = Block(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x.contiguous(memory_format=torch.channels_last))  # type: ignore[no-any-return]


def _seq(*modules: nn.Module) -> nn.Sequential:
    return nn.Sequential(*modules)


def _old_weight_norm(module: nn.Module) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # deprecated, still in use
        return nn.utils.weight_norm(module)


CASES: dict[str, tuple[Callable[[], Any], dict[str, Any]]] = {
    "resnet18 family": (lambda: "resnet18_small", {"input_shape": (3, 32, 32)}),
    "unet family": (lambda: "unet", {"input_shape": (3, 32, 32), "batch_size": 2}),
    "cnn_classifier family": (lambda: "cnn_classifier", {"input_shape": (3, 32, 32)}),
    "block": (Block, {"input_shape": (4, 8, 8)}),
    "block, eval mode": (lambda: Block().eval(), {"input_shape": (4, 8, 8)}),
    "block, frozen conv": (lambda: Block(frozen=True), {"input_shape": (4, 8, 8)}),
    "block, frozen, no affine": (
        lambda: Block(frozen=True, affine=False),
        {"input_shape": (4, 8, 8)},
    ),
    "block, relu not in place": (lambda: Block(inplace=False), {"input_shape": (4, 8, 8)}),
    "block, relu on a view": (lambda: Block(view=True), {"input_shape": (4, 8, 8)}),
    "block, relu under no_grad": (lambda: Block(no_grad=True), {"input_shape": (4, 8, 8)}),
    "block, wrong channels": (Block, {"input_shape": (3, 8, 8)}),
    "block, one value per channel": (Block, {"input_shape": (4, 1, 1)}),
    "block, half": (lambda: Block().half(), {"input_shape": (4, 8, 8), "input_dtype": "float16"}),
    "relu on a parameter": (ReluOnParameter, {"input_shape": (2, 3)}),
    "checkpointed": (Checkpointed, {"input_shape": (4, 8, 8)}),
    "channels last": (ChannelsLast, {"input_shape": (4, 8, 8)}),
    "unbatched conv": (
        lambda: _seq(nn.Conv2d(3, 4, 3), nn.ReLU()),
        {"input_data": torch.empty(3, 8, 8, device="meta")},
    ),
    "same padding, reflect": (
        lambda: _seq(
            nn.Conv2d(3, 4, 3, padding="same"), nn.Conv2d(4, 4, 3, padding_mode="reflect")
        ),
        {"input_shape": (3, 8, 8)},
    ),
    "groups, momentum None": (
        lambda: _seq(nn.Conv2d(4, 8, 3, groups=2, bias=False), nn.BatchNorm2d(8, momentum=None)),
        {"input_shape": (4, 8, 8)},
    ),
    "groups that do not fit": (
        lambda: _seq(nn.Conv2d(4, 8, 3, groups=4)),
        {"input_shape": (6, 8, 8)},
    ),
    "1-d, batch 1 needs 2": (
        lambda: _seq(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(True)),
        {"input_shape": (3,)},
    ),
    "conv1d": (
        lambda: _seq(nn.Conv1d(2, 4, 3), nn.BatchNorm1d(4), nn.ReLU(True)),
        {"input_shape": (2, 10)},
    ),
    "conv3d, untracked stats": (
        lambda: _seq(nn.Conv3d(2, 4, 3), nn.BatchNorm3d(4, track_running_stats=False), nn.ReLU()),
        {"input_shape": (2, 5, 5, 5)},
    ),
    "input too small": (lambda: _seq(nn.Conv2d(2, 4, 5)), {"input_shape": (2, 3, 3)}),
    "lazy modules": (
        lambda: _seq(nn.LazyConv2d(4, 3), nn.LazyBatchNorm2d(), nn.ReLU()),
        {"input_shape": (2, 5, 5)},
    ),
    "weight norm": (
        lambda: _seq(nn.utils.parametrizations.weight_norm(nn.Conv2d(2, 4, 3)), nn.ReLU()),
        {"input_shape": (2, 5, 5)},
    ),
    "old-style weight norm (weight set by a hook)": (
        lambda: _seq(_old_weight_norm(nn.Conv2d(2, 4, 3)), nn.ReLU()),
        {"input_shape": (2, 5, 5)},
    ),
    "real run": (Block, {"input_shape": (4, 8, 8), "run": "real"}),
}


def _summary_text(make: Callable[[], Any], kwargs: dict[str, Any]) -> str:
    try:
        result = brickwork.summary(make(), **kwargs)
    except Exception as err:  # the same error either way
        return f"{type(err).__name__}: {err}"
    return json.dumps(result.to_dict(), sort_keys=True) + str(result)


@pytest.mark.parametrize("name", list(CASES))
def test_rules_give_the_same_summary_as_pytorchs_path(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    make, kwargs = CASES[name]
    torch.manual_seed(0)
    with_rules = _summary_text(make, kwargs)
    monkeypatch.setattr(fast_modules, "RULES", {})
    torch.manual_seed(0)
    without = _summary_text(make, kwargs)
    assert with_rules == without


def test_rules_apply_to_a_plain_block(monkeypatch: pytest.MonkeyPatch) -> None:
    applied: list[str] = []

    def counted(rule: fast_modules.Rule) -> fast_modules.Rule:
        def apply(module: Any, x: torch.Tensor, run: fast_modules.Run) -> torch.Tensor | None:
            out = rule(module, x, run)
            if out is not None:
                applied.append(type(module).__name__)
            return out

        return apply

    rules = {kind: counted(rule) for kind, rule in fast_modules.RULES.items()}
    monkeypatch.setattr(fast_modules, "RULES", rules)
    brickwork.summary(Block(), (4, 8, 8))
    assert applied == ["Conv2d", "BatchNorm2d", "ReLU"]


def test_a_pytorch_without_the_rules_internals_takes_the_per_op_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    torch.manual_seed(0)
    with_rules = _summary_text(Block, {"input_shape": (4, 8, 8)})
    monkeypatch.setattr(fast_modules, "AVAILABLE", False)
    block = Block()
    assert fast_modules.install(block.modules(), None) is not None  # type: ignore[arg-type]
    assert all("forward" not in m.__dict__ for m in block.modules())
    torch.manual_seed(0)
    assert _summary_text(Block, {"input_shape": (4, 8, 8)}) == with_rules
