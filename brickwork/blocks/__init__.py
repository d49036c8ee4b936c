"""Bricks: small functions and classes that each build one reusable ``nn.Module``."""

from brickwork.blocks import stock  # registers PyTorch's own modules as bricks
from brickwork.blocks.attention import SelfAttention2d
from brickwork.blocks.conv import conv_block
from brickwork.blocks.linear import dec_block, linear_block
from brickwork.blocks.merge import Add, Chunk, Concat, Merge, Mul, Split
from brickwork.blocks.residual import Residual

__all__ = [
    "Add",
    "Chunk",
    "Concat",
    "Merge",
    "Mul",
    "Residual",
    "SelfAttention2d",
    "Split",
    "conv_block",
    "dec_block",
    "linear_block",
    "stock",
]
