"""brickwork: PyTorch models built from reusable bricks.

Sizes are inferred, mistakes are caught early, and every model brickwork returns is a plain
``nn.Module``.

Importing the package loads nothing heavy: its names (``brickwork.build``, ``brickwork.summary``,
...) load PyTorch and every registered brick and family on first use, so that the ``brickwork``
command starts, and answers Ctrl-C, before PyTorch is imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from brickwork._version import __version__

if TYPE_CHECKING:
    from brickwork.blocks import Residual, SelfAttention2d, conv_block, dec_block, linear_block
    from brickwork.errors import (
        ArgumentError,
        BrickworkError,
        ConfigError,
        DeviceError,
        ExportError,
        ShapeError,
        SpecError,
    )
    from brickwork.exporting import export
    from brickwork.inspect import Finding, Report, Summary, count_params, device_of, tree
    from brickwork.inspect.doctor import doctor
    from brickwork.inspect.summary import summary
    from brickwork.inspect.trace import trace
    from brickwork.layers import ACTIVATIONS, NORMS, make_act, make_norm
    from brickwork.models import (
        MLP,
        CNNClassifier,
        Decoder,
        Encoder,
        LayerStack,
        ResNet,
        SimpleConvNet,
        UNet,
        create_model,
        list_models,
        register_model,
    )
    from brickwork.registry import BRICKS, MODELS, Registry, SizeRule
    from brickwork.spec import build, load_spec, save_spec, to_spec
    from brickwork.train import fit, load, load_dataset, save

PUBLIC: dict[str, str] = {
    "ACTIVATIONS": "brickwork.layers",
    "ArgumentError": "brickwork.errors",
    "BRICKS": "brickwork.registry",
    "BrickworkError": "brickwork.errors",
    "CNNClassifier": "brickwork.models",
    "ConfigError": "brickwork.errors",
    "Decoder": "brickwork.models",
    "DeviceError": "brickwork.errors",
    "Encoder": "brickwork.models",
    "ExportError": "brickwork.errors",
    "Finding": "brickwork.inspect",
    "LayerStack": "brickwork.models",
    "MLP": "brickwork.models",
    "MODELS": "brickwork.registry",
    "NORMS": "brickwork.layers",
    "Registry": "brickwork.registry",
    "Report": "brickwork.inspect",
    "ResNet": "brickwork.models",
    "Residual": "brickwork.blocks",
    "SelfAttention2d": "brickwork.blocks",
    "ShapeError": "brickwork.errors",
    "SimpleConvNet": "brickwork.models",
    "SizeRule": "brickwork.registry",
    "SpecError": "brickwork.errors",
    "Summary": "brickwork.inspect",
    "UNet": "brickwork.models",
    "build": "brickwork.spec",
    "conv_block": "brickwork.blocks",
    "count_params": "brickwork.inspect",
    "create_model": "brickwork.models",
    "dec_block": "brickwork.blocks",
    "device_of": "brickwork.inspect",
    "doctor": "brickwork.inspect",
    "export": "brickwork.exporting",
    "fit": "brickwork.train",
    "linear_block": "brickwork.blocks",
    "list_models": "brickwork.models",
    "load": "brickwork.train",
    "load_dataset": "brickwork.train",
    "load_spec": "brickwork.spec",
    "make_act": "brickwork.layers",
    "make_norm": "brickwork.layers",
    "register_model": "brickwork.models",
    "save": "brickwork.train",
    "save_spec": "brickwork.spec",
    "summary": "brickwork.inspect",
    "to_spec": "brickwork.spec",
    "trace": "brickwork.inspect",
    "tree": "brickwork.inspect",
}
"""Each public name and the module it lives in."""
REGISTERING = ("brickwork.layers", "brickwork.blocks", "brickwork.models")
"""The modules whose import fills the registries (activations, norms, bricks, families)."""


def __getattr__(name: str) -> Any:
    """Load a public name on first use (with every registry filled) and keep it."""
    module = PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'brickwork' has no attribute {name!r}")
    for registering in REGISTERING:
        importlib.import_module(registering)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *PUBLIC})


__all__ = [
    "ACTIVATIONS",
    "BRICKS",
    "MLP",
    "MODELS",
    "NORMS",
    "ArgumentError",
    "BrickworkError",
    "CNNClassifier",
    "ConfigError",
    "Decoder",
    "DeviceError",
    "Encoder",
    "ExportError",
    "Finding",
    "LayerStack",
    "Registry",
    "Report",
    "ResNet",
    "Residual",
    "SelfAttention2d",
    "ShapeError",
    "SimpleConvNet",
    "SizeRule",
    "SpecError",
    "Summary",
    "UNet",
    "__version__",
    "build",
    "conv_block",
    "count_params",
    "create_model",
    "dec_block",
    "device_of",
    "doctor",
    "export",
    "fit",
    "linear_block",
    "list_models",
    "load",
    "load_dataset",
    "load_spec",
    "make_act",
    "make_norm",
    "register_model",
    "save",
    "save_spec",
    "summary",
    "to_spec",
    "trace",
    "tree",
]
