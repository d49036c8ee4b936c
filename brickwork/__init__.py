"""brickwork: PyTorch models built from reusable bricks.

Sizes are inferred, mistakes are caught early, and every model brickwork returns is a plain
``nn.Module``.
"""

from brickwork._version import __version__
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
from brickwork.export import export
from brickwork.inspect import (
    Finding,
    Report,
    Summary,
    count_params,
    device_of,
    doctor,
    summary,
    trace,
    tree,
)
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
