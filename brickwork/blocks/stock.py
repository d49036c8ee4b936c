"""PyTorch's own modules as bricks, with the argument that takes the incoming size named.

In a spec, ``- linear: {out: 10}`` is ``nn.Linear(in_features=<inferred>, out_features=10)``,
and ``- batchnorm`` is ``BatchNorm1d``, ``2d`` or ``3d`` as the incoming rank asks. The norm
bricks ``batchnorm``, ``layernorm`` and ``groupnorm`` are the norms of ``norm=`` (one meaning per
name): ``layernorm`` normalises over the channels of an image, ``over: sample`` over all of it.
"""

from __future__ import annotations

from dataclasses import replace

from torch import nn

from brickwork.layers import batchnorm, groupnorm, layernorm
from brickwork.registry import BRICKS, SizeRule

FEATURES = SizeRule(in_arg="in_features", in_dim=-1, out_arg="out_features")
CHANNELS = SizeRule(in_arg="in_channels", out_arg="out_channels")
NORM = SizeRule(in_arg="channels", dims_arg="dims", ranks=(1, 2, 3, 4))

for _name, _module, _sizes in [
    ("identity", nn.Identity, SizeRule(any_dtype=True)),
    ("linear", nn.Linear, FEATURES),
    ("conv1d", nn.Conv1d, replace(CHANNELS, ranks=(2,))),
    ("conv2d", nn.Conv2d, replace(CHANNELS, ranks=(3,))),
    ("convtranspose2d", nn.ConvTranspose2d, replace(CHANNELS, ranks=(3,))),
    ("batchnorm", batchnorm, NORM),
    ("batchnorm1d", nn.BatchNorm1d, SizeRule(in_arg="num_features", ranks=(1, 2))),
    ("batchnorm2d", nn.BatchNorm2d, SizeRule(in_arg="num_features", ranks=(3,))),
    ("layernorm", layernorm, replace(NORM, shape_arg="spatial")),
    ("groupnorm", groupnorm, NORM),
    ("dropout", nn.Dropout, SizeRule()),
    ("dropout2d", nn.Dropout2d, SizeRule(ranks=(3,))),
    ("embedding", nn.Embedding, SizeRule(out_arg="embedding_dim", int_input=True)),
    ("flatten", nn.Flatten, SizeRule(any_dtype=True)),
    ("maxpool2d", nn.MaxPool2d, SizeRule(ranks=(3,))),
    ("avgpool2d", nn.AvgPool2d, SizeRule(ranks=(3,))),
    ("adaptiveavgpool2d", nn.AdaptiveAvgPool2d, SizeRule(ranks=(3,))),
    ("zeropad2d", nn.ZeroPad2d, SizeRule(ranks=(3,))),
    ("upsample", nn.Upsample, SizeRule(ranks=(2, 3, 4))),
]:
    BRICKS.register(_name, _module, sizes=_sizes)
