"""ResNet from scratch: one configurable class, thin registered variants.

The layout and parameter names are torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1``, ...,
``fc``), so published ImageNet weights load with ``load_state_dict(strict=True)``. The guides'
split is there too: ``model.encoder`` is the stem and the stages, ``model.decoder`` the head
(pool → flatten → fc); both are views over the same modules, so they add no state_dict keys.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from brickwork.errors import ConfigError, passes_kwargs_to, positive_int, size_list
from brickwork.layers import ActivationSpec, NormSpec, make_act, make_norm
from brickwork.models.factory import register_model
from brickwork.registry import BRICKS, Registry, SizeRule


def _act(spec: ActivationSpec) -> nn.Module:
    """The activation, in place where it can be (as torchvision's ReLU is): it follows a norm or
    a sum whose input nothing else needs, and saves an allocation per block."""
    act = make_act(spec)
    if "inplace" in vars(act):  # ReLU, LeakyReLU, ELU, SiLU, ...: a plain attribute
        vars(act)["inplace"] = True
    return act


def _conv(in_chans: int, out_chans: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_chans, out_chans, kernel, stride=stride, padding=kernel // 2, bias=False)


def _shortcut(in_chans: int, out_chans: int, stride: int, norm: NormSpec) -> nn.Module | None:
    if stride == 1 and in_chans == out_chans:
        return None
    return nn.Sequential(_conv(in_chans, out_chans, 1, stride), make_norm(norm, out_chans))


class ResidualBlock(nn.Module):
    """A ResNet block: convolutions, each followed by a norm, and a residual connection.

    A subclass says which convolutions it has: ``kernels`` (one size per convolution),
    ``stride_at`` (which one carries the stride) and ``expansion`` (its output has ``width *
    expansion`` channels). They are ``conv1``, ``bn1``, ``conv2``, ... as in torchvision, so its
    weights load by name. The activation follows every norm but the last, and the sum.

    Args:
        in_chans: input channels.
        width: channels of the inner convolutions (the block outputs ``width * expansion``).
        stride: stride of the block (on its ``stride_at`` convolution and on the projection
            shortcut). Default 1.
        activation: activation spec. Default ``"relu"``.
        norm: norm spec. Default ``"batchnorm"``.
    """

    expansion = 1
    kernels: tuple[int, ...] = (3, 3)
    stride_at = 0

    def __init__(
        self,
        in_chans: int,
        width: int,
        stride: int = 1,
        activation: ActivationSpec = "relu",
        norm: NormSpec = "batchnorm",
    ) -> None:
        super().__init__()
        self.out_chans = width * self.expansion
        chans = [in_chans, *[width] * (len(self.kernels) - 1), self.out_chans]
        for i, kernel in enumerate(self.kernels):
            conv_stride = stride if i == self.stride_at else 1
            self.add_module(f"conv{i + 1}", _conv(chans[i], chans[i + 1], kernel, conv_stride))
            self.add_module(f"bn{i + 1}", make_norm(norm, chans[i + 1]))
        self.relu = _act(activation)
        self.downsample = _shortcut(in_chans, self.out_chans, stride, norm)

    def conv_norms(self) -> list[tuple[nn.Module, nn.Module]]:
        """``(conv1, bn1), (conv2, bn2), ...`` in order."""
        n = len(self.kernels)
        modules = self._modules
        return [(modules[f"conv{i}"], modules[f"bn{i}"]) for i in range(1, n + 1)]  # type: ignore[misc]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        layers = self.conv_norms()
        out = x
        for i, (conv, norm) in enumerate(layers):
            out = norm(conv(out))
            if i < len(layers) - 1:  # the last norm's output is added to the shortcut first
                out = self.relu(out)
        return self.relu(out + identity)  # type: ignore[no-any-return]

    def last_norm(self) -> nn.Module:
        """The norm before the sum, which ``zero_init_last`` starts at zero."""
        return self.conv_norms()[-1][1]


@BRICKS.register("basic_block", sizes=SizeRule(in_arg="in_chans", ranks=(3,)))
class BasicBlock(ResidualBlock):
    """Two 3×3 convolutions with a residual connection (ResNet-18/34).

    Takes :class:`ResidualBlock`'s arguments; the stride sits on the first convolution.

    Shape:
        ``(B, in_chans, H, W)`` → ``(B, width, H / stride, W / stride)``.
    """


@BRICKS.register("bottleneck", sizes=SizeRule(in_arg="in_chans", ranks=(3,)))
class Bottleneck(ResidualBlock):
    """1×1 reduce → 3×3 (stride) → 1×1 expand ×4, with a residual connection (ResNet-50+).

    Takes :class:`ResidualBlock`'s arguments; the stride sits on the 3×3 convolution, as in
    torchvision ("ResNet v1.5").

    Shape:
        ``(B, in_chans, H, W)`` → ``(B, 4 * width, H / stride, W / stride)``.
    """

    expansion = 4
    kernels = (1, 3, 1)
    stride_at = 1


BLOCKS: Registry[type[ResidualBlock]] = Registry("ResNet block")
"""The blocks a :class:`ResNet` is made of, by name."""
BLOCKS.register("basic", BasicBlock)
BLOCKS.register("bottleneck", Bottleneck)

STEMS: Registry[Callable[[int, int], tuple[nn.Module, nn.Module]]] = Registry("stem")
"""ResNet stems by name: ``(in_chans, width)`` → ``(conv1, maxpool)``."""


@STEMS.register("imagenet")
def imagenet_stem(in_chans: int, width: int) -> tuple[nn.Module, nn.Module]:
    """A 7×7 stride-2 convolution and a 3×3 stride-2 max-pool, for 224×224 images."""
    return nn.Conv2d(in_chans, width, 7, stride=2, padding=3, bias=False), nn.MaxPool2d(3, 2, 1)


@STEMS.register("small")
def small_stem(in_chans: int, width: int) -> tuple[nn.Module, nn.Module]:
    """A 3×3 stride-1 convolution and no pool, for 28×28 or 32×32 images."""
    return _conv(in_chans, width, 3), nn.Identity()


class ResNet(nn.Module):
    """A residual network: stem, four stages of blocks, global pooling and a linear head.

    Args:
        block: ``BasicBlock``, ``Bottleneck``, or a name in :data:`BLOCKS` (``"basic"``,
            ``"bottleneck"``).
        depths: blocks per stage (``(2, 2, 2, 2)`` for ResNet-18).
        widths: block widths per stage. Default ``(64, 128, 256, 512)``.
        in_chans: input channels. Default 3.
        n_classes: outputs of ``fc``. Default 1000.
        activation: activation spec. Default ``"relu"``.
        norm: norm spec. Default ``"batchnorm"``.
        stem: a name in :data:`STEMS`: ``"imagenet"`` (7×7 stride-2 convolution and 3×3
            max-pool, for 224×224) or ``"small"`` (3×3 stride-1 convolution, no pool, for 28×28
            or 32×32). Default ``"imagenet"``.
        zero_init_last: start each block's last norm at zero, so blocks begin as identities.
            Default ``False``.

    Shape:
        ``x: (B, in_chans, H, W)`` → ``(B, n_classes)``; ``forward_features(x)`` gives each
        stage's output, the last ``(B, widths[-1] * expansion, H / 32, W / 32)``.
    """

    def __init__(
        self,
        block: type[ResidualBlock] | str,
        depths: Sequence[int],
        widths: Sequence[int] = (64, 128, 256, 512),
        in_chans: int = 3,
        n_classes: int = 1000,
        *,
        activation: ActivationSpec = "relu",
        norm: NormSpec = "batchnorm",
        stem: str = "imagenet",
        zero_init_last: bool = False,
    ) -> None:
        block = BLOCKS.get(block) if isinstance(block, str) else block
        super().__init__()
        depths = size_list(depths, "depths", min_len=1)
        widths = size_list(widths, "widths", min_len=1)
        if len(depths) != len(widths) or len(depths) > 4:
            raise ConfigError(
                f"depths and widths need one entry per stage (1 to 4 stages), got "
                f"{len(depths)} depths and {len(widths)} widths"
            )
        make_stem = STEMS.get(stem)
        self.in_chans = positive_int(in_chans, "in_chans")
        self.n_classes = positive_int(n_classes, "n_classes")
        self.stem_kind = STEMS.canonical(stem)
        self.conv1, self.maxpool = make_stem(self.in_chans, widths[0])
        self.bn1 = make_norm(norm, widths[0])
        self.relu = _act(activation)
        channels = widths[0]
        for i, (depth, width) in enumerate(zip(depths, widths, strict=True)):
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(depth):
                blocks.append(block(channels, width, stride if j == 0 else 1, activation, norm))
                channels = width * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.n_stages = len(depths)
        self.num_features = channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, self.n_classes)
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
                if isinstance(m, ResidualBlock):
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


RESNET_SIZES = SizeRule(in_arg="in_chans", ranks=(3,))


def _variant(block: type[ResidualBlock], depths: tuple[int, ...], stem: str) -> Any:
    default_classes = 1000 if stem == "imagenet" else 10

    @passes_kwargs_to(ResNet, skip=("block", "depths", "stem", "in_chans", "n_classes"))
    def build(in_chans: int = 3, n_classes: int = default_classes, **kwargs: Any) -> ResNet:
        return ResNet(block, depths, in_chans=in_chans, n_classes=n_classes, stem=stem, **kwargs)

    return build


_VARIANTS: dict[str, tuple[type[ResidualBlock], tuple[int, ...]]] = {
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
