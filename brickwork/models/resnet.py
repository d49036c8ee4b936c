"""ResNet from scratch: one configurable class, thin registered variants.

The layout and parameter names are torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1``, ...,
``fc``), so published ImageNet weights load with ``load_state_dict(strict=True)``. The guides'
split is there too: ``model.encoder`` is the stem and the stages, ``model.decoder`` the head
(pool → flatten → fc); both are views over the same modules, so they add no state_dict keys.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from brickwork.errors import ConfigError, passes_kwargs_to, positive_int, size_list
from brickwork.layers import make_act, make_norm
from brickwork.models.factory import register_model
from brickwork.registry import BRICKS, SizeRule

STEMS = ("imagenet", "small")


def _act(spec: Any) -> nn.Module:
    """The activation, in place where it can be (as torchvision's ReLU is): it follows a norm or
    a sum whose input nothing else needs, and saves an allocation per block."""
    act = make_act(spec)
    if "inplace" in vars(act):  # ReLU, LeakyReLU, ELU, SiLU, ...: a plain attribute
        vars(act)["inplace"] = True
    return act


def _conv(in_c: int, out_c: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_c, out_c, kernel, stride=stride, padding=kernel // 2, bias=False)


def _shortcut(in_c: int, out_c: int, stride: int, norm: Any) -> nn.Module | None:
    if stride == 1 and in_c == out_c:
        return None
    return nn.Sequential(_conv(in_c, out_c, 1, stride), make_norm(norm, out_c))


@BRICKS.register("basic_block", sizes=SizeRule("in_c", 0, ranks=(3,)))
class BasicBlock(nn.Module):
    """Two 3×3 convolutions with a residual connection (ResNet-18/34).

    Args:
        in_c: input channels.
        width: channels of both convolutions (the block outputs ``width * expansion``).
        stride: stride of the first convolution (and of the projection shortcut). Default 1.
        activation: activation spec. Default ``"relu"``.
        norm: norm spec. Default ``"batchnorm"``.

    Shape:
        ``(B, in_c, H, W)`` → ``(B, width, H / stride, W / stride)``.
    """

    expansion = 1

    def __init__(
        self,
        in_c: int,
        width: int,
        stride: int = 1,
        activation: Any = "relu",
        norm: Any = "batchnorm",
    ) -> None:
        super().__init__()
        out_c = width * self.expansion
        self.conv1 = _conv(in_c, width, 3, stride)
        self.bn1 = make_norm(norm, width)
        self.relu = _act(activation)
        self.conv2 = _conv(width, out_c, 3)
        self.bn2 = make_norm(norm, out_c)
        self.downsample = _shortcut(in_c, out_c, stride, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)  # type: ignore[no-any-return]

    def last_norm(self) -> nn.Module:
        return self.bn2


@BRICKS.register("bottleneck", sizes=SizeRule("in_c", 0, ranks=(3,)))
class Bottleneck(nn.Module):
    """1×1 reduce → 3×3 (stride) → 1×1 expand ×4, with a residual connection (ResNet-50+).

    The stride sits on the 3×3 convolution, as in torchvision ("ResNet v1.5").

    Args:
        in_c: input channels.
        width: channels of the inner convolutions (the block outputs ``width * 4``).
        stride: stride of the 3×3 convolution. Default 1.
        activation: activation spec. Default ``"relu"``.
        norm: norm spec. Default ``"batchnorm"``.

    Shape:
        ``(B, in_c, H, W)`` → ``(B, 4 * width, H / stride, W / stride)``.
    """

    expansion = 4

    def __init__(
        self,
        in_c: int,
        width: int,
        stride: int = 1,
        activation: Any = "relu",
        norm: Any = "batchnorm",
    ) -> None:
        super().__init__()
        out_c = width * self.expansion
        self.conv1 = _conv(in_c, width, 1)
        self.bn1 = make_norm(norm, width)
        self.conv2 = _conv(width, width, 3, stride)
        self.bn2 = make_norm(norm, width)
        self.conv3 = _conv(width, out_c, 1)
        self.bn3 = make_norm(norm, out_c)
        self.relu = _act(activation)
        self.downsample = _shortcut(in_c, out_c, stride, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)  # type: ignore[no-any-return]

    def last_norm(self) -> nn.Module:
        return self.bn3


BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {
    "basic": BasicBlock,
    "bottleneck": Bottleneck,
}


class ResNet(nn.Module):
    """A residual network: stem, four stages of blocks, global pooling and a linear head.

    Args:
        block: ``BasicBlock``, ``Bottleneck``, or their names ``"basic"``, ``"bottleneck"``.
        depths: blocks per stage (``(2, 2, 2, 2)`` for ResNet-18).
        widths: block widths per stage. Default ``(64, 128, 256, 512)``.
        in_chans: input channels. Default 3.
        n_classes: outputs of ``fc``. Default 1000.
        activation: activation spec. Default ``"relu"``.
        norm: norm spec. Default ``"batchnorm"``.
        stem: ``"imagenet"`` (7×7 stride-2 convolution and 3×3 max-pool, for 224×224) or
            ``"small"`` (3×3 stride-1 convolution, no pool, for 28×28 or 32×32). Default
            ``"imagenet"``.
        zero_init_last: start each block's last norm at zero, so blocks begin as identities.
            Default ``False``.

    Shape:
        ``x: (B, in_chans, H, W)`` → ``(B, n_classes)``; ``forward_features(x)`` gives each
        stage's output, the last ``(B, widths[-1] * expansion, H / 32, W / 32)``.
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck] | str,
        depths: Sequence[int],
        widths: Sequence[int] = (64, 128, 256, 512),
        in_chans: int = 3,
        n_classes: int = 1000,
        activation: Any = "relu",
        norm: Any = "batchnorm",
        stem: str = "imagenet",
        zero_init_last: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(block, str):
            if block not in BLOCKS:
                raise ConfigError(f"unknown ResNet block {block!r}; valid: {', '.join(BLOCKS)}")
            block = BLOCKS[block]
        depths = size_list(depths, "depths", min_len=1)
        widths = size_list(widths, "widths", min_len=1)
        if len(depths) != len(widths) or len(depths) > 4:
            raise ConfigError(
                f"depths and widths need one entry per stage (1 to 4 stages), got "
                f"{len(depths)} depths and {len(widths)} widths"
            )
        if stem not in STEMS:
            raise ConfigError(f"unknown stem {stem!r}; valid: {', '.join(STEMS)}")
        self.in_chans = positive_int(in_chans, "in_chans")
        self.n_classes = positive_int(n_classes, "n_classes")
        self.stem_kind = stem
        if stem == "imagenet":
            self.conv1: nn.Module = nn.Conv2d(
                self.in_chans, widths[0], 7, stride=2, padding=3, bias=False
            )
            self.maxpool: nn.Module = nn.MaxPool2d(3, stride=2, padding=1)
        else:
            self.conv1 = _conv(self.in_chans, widths[0], 3)
            self.maxpool = nn.Identity()
        self.bn1 = make_norm(norm, widths[0])
        self.relu = _act(activation)
        in_c = widths[0]
        for i, (depth, width) in enumerate(zip(depths, widths, strict=True)):
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(depth):
                blocks.append(block(in_c, width, stride if j == 0 else 1, activation, norm))
                in_c = width * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.n_stages = len(depths)
        self.num_features = in_c
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_c, self.n_classes)
        self._init_weights(zero_init_last)

    def _init_weights(self, zero_init_last: bool) -> None:
        """torchvision's initialisation: He-normal convolutions (fan out), norms at 1 and 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm) and m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_last:
            for m in self.modules():
                if isinstance(m, BasicBlock | Bottleneck):
                    weight = getattr(m.last_norm(), "weight", None)
                    if weight is not None:
                        nn.init.zeros_(weight)

    @property
    def stages(self) -> list[nn.Sequential]:
        """``layer1``, ``layer2``, ... in order."""
        return [getattr(self, f"layer{i + 1}") for i in range(self.n_stages)]

    @property
    def encoder(self) -> nn.Sequential:
        """Stem and stages as one ``Sequential`` (a view: the same modules, no new keys)."""
        stem: list[tuple[str, nn.Module]] = [
            ("conv1", self.conv1),
            ("bn1", self.bn1),
            ("relu", self.relu),
            ("maxpool", self.maxpool),
        ]
        stem += [(f"layer{i + 1}", stage) for i, stage in enumerate(self.stages)]
        return nn.Sequential(OrderedDict(stem))

    @property
    def decoder(self) -> nn.Sequential:
        """The head: global average pool, flatten, ``fc`` (a view over the same modules)."""
        return nn.Sequential(OrderedDict(avgpool=self.avgpool, flatten=nn.Flatten(), fc=self.fc))

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each stage's output, for detection and segmentation heads."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, widths[0], H/4, W/4)
        for stage in self.stages:
            x = stage(x)
        x = self.avgpool(x).flatten(1)  # (B, num_features)
        return self.fc(x)  # type: ignore[no-any-return]


RESNET_SIZES = SizeRule("in_chans", 0, ranks=(3,))


def _variant(block: type[BasicBlock] | type[Bottleneck], depths: tuple[int, ...], stem: str) -> Any:
    default_classes = 1000 if stem == "imagenet" else 10

    @passes_kwargs_to(ResNet, skip=("block", "depths", "stem", "in_chans", "n_classes"))
    def build(in_chans: int = 3, n_classes: int = default_classes, **kwargs: Any) -> ResNet:
        return ResNet(block, depths, in_chans=in_chans, n_classes=n_classes, stem=stem, **kwargs)

    return build


_VARIANTS: dict[str, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, ...]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "resnet101": (Bottleneck, (3, 4, 23, 3)),
    "resnet152": (Bottleneck, (3, 8, 36, 3)),
}

for _name, (_block, _depths) in _VARIANTS.items():
    _doc = (
        f"{_name}: ResNet({_block.__name__}, depths={_depths}), torchvision's layout, for 224×224."
    )
    _imagenet = _variant(_block, _depths, "imagenet")
    _imagenet.__name__, _imagenet.__doc__ = _name, _doc
    register_model(_imagenet, name=_name, sizes=RESNET_SIZES)
    if _name in ("resnet18", "resnet34", "resnet50"):
        _small = _variant(_block, _depths, "small")
        _small.__name__ = f"{_name}_small"
        _small.__doc__ = f"{_name} with a 3×3 stem and no max-pool, for 28×28 and 32×32 images."
        register_model(_small, name=f"{_name}_small", sizes=RESNET_SIZES)
