"""Bricks: small functions and classes that each build one reusable ``nn.Module``."""

from brickwork.blocks.conv import conv_block
from brickwork.blocks.linear import dec_block, linear_block

__all__ = ["conv_block", "dec_block", "linear_block"]
