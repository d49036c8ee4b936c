"""Bricks: small functions and classes that each build one reusable ``nn.Module``."""

from brickwork.blocks import stock  # registers PyTorch's own modules as bricks
from brickwork.blocks.attention import SelfAttention2d
from brickwork.blocks.conv import conv_block
from brickwork.blocks.linear import dec_block, linear_block
from brickwork.blocks.residual import Residual

__all__ = ["Residual", "SelfAttention2d", "conv_block", "dec_block", "linear_block", "stock"]
