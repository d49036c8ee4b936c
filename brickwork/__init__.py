"""brickwork: PyTorch models built from reusable bricks.

Sizes are inferred, mistakes are caught early, and every model brickwork returns is a plain
``nn.Module``.
"""

from brickwork.blocks import conv_block, dec_block, linear_block
from brickwork.errors import (
    ArgumentError,
    BrickworkError,
    ConfigError,
    DeviceError,
    ShapeError,
)
from brickwork.inspect import count_params, device_of, trace, tree
from brickwork.layers import ACTIVATIONS, NORMS, make_act, make_norm
from brickwork.models import CNNClassifier, Decoder, Encoder, LayerStack
from brickwork.registry import BRICKS, MODELS, Registry

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "BRICKS",
    "MODELS",
    "NORMS",
    "ArgumentError",
    "BrickworkError",
    "CNNClassifier",
    "ConfigError",
    "Decoder",
    "DeviceError",
    "Encoder",
    "LayerStack",
    "Registry",
    "ShapeError",
    "__version__",
    "conv_block",
    "count_params",
    "dec_block",
    "device_of",
    "linear_block",
    "make_act",
    "make_norm",
    "trace",
    "tree",
]
