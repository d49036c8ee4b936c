"""PyTorch's own modules as bricks, with the argument that takes the incoming size named.

In a spec, ``- linear: {out: 10}`` is ``nn.Linear(in_features=<inferred>, out_features=10)``,
and ``- batchnorm`` is ``BatchNorm1d``, ``2d`` or ``3d`` as the incoming rank asks.
"""

from __future__ import annotations

from torch import nn

from brickwork.layers import batchnorm
from brickwork.registry import BRICKS, SizeRule

FEATURES = SizeRule(in_arg="in_features", in_dim=-1, out_arg="out_features")

for _name, _module, _sizes in [
    ("identity", nn.Identity, SizeRule(any_dtype=True)),
    ("linear", nn.Linear, FEATURES),
    ("conv1d", nn.Conv1d, SizeRule("in_channels", 0, "out_channels", ranks=(2,))),
    ("conv2d", nn.Conv2d, SizeRule("in_channels", 0, "out_channels", ranks=(3,))),
    ("batchnorm", batchnorm, SizeRule("channels", 0, ranks=(1, 2, 3, 4), dims_arg="dims")),
    ("batchnorm1d", nn.BatchNorm1d, SizeRule("num_features", 0, ranks=(1, 2))),
    ("batchnorm2d", nn.BatchNorm2d, SizeRule("num_features", 0, ranks=(3,))),
    ("layernorm", nn.LayerNorm, SizeRule("normalized_shape", -1)),
    ("groupnorm", nn.GroupNorm, SizeRule("num_channels", 0, ranks=(1, 2, 3))),
    ("dropout", nn.Dropout, SizeRule()),
    ("dropout2d", nn.Dropout2d, SizeRule(ranks=(3,))),
    ("embedding", nn.Embedding, SizeRule(out_arg="embedding_dim", int_input=True)),
    ("flatten", nn.Flatten, SizeRule(any_dtype=True)),
    ("maxpool2d", nn.MaxPool2d, SizeRule(ranks=(3,))),
    ("avgpool2d", nn.AvgPool2d, SizeRule(ranks=(3,))),
    ("adaptiveavgpool2d", nn.AdaptiveAvgPool2d, SizeRule(ranks=(3,))),
]:
    BRICKS.register(_name, _module, sizes=_sizes)
