"""Models from specs: a list of bricks, or a registered family, with every size inferred.

A spec is data (a dict, or YAML/JSON text or file)::

    input: [1, 28, 28]            # per-sample shape, no batch dimension
    model:
      - conv_block: {out: 32, kernel_size: 3, padding: 1, activation: lrelu}
      - flatten
      - dec_block: {out: 512}
      - linear: {out: 10}

or ``model: {cnn_classifier: {enc_sizes: [32, 64], dec_sizes: [1024, 512], n_classes: 10}}``.

Items may be named, read named values instead of the item before (``from: [up3, enc2]``), run an
earlier item's module again (``use: encoder``); ``inputs:`` and ``outputs:`` name several. Such a
list builds a :class:`Graph`.

- :mod:`~brickwork.spec.io`: reading and writing spec files (``load_spec``).
- :mod:`~brickwork.spec.limits`: how big a spec may be, checked before anything is built.
- :mod:`~brickwork.spec.items`: an item as written: its brick, name, ``from:`` and ``use:``.
- :mod:`~brickwork.spec.wiring`: which values each item reads, checked by name.
- :mod:`~brickwork.spec.inputs`: ``input``/``inputs`` and the tensors that feed a spec's model.
- :mod:`~brickwork.spec.builder`: ``build``, which walks the spec with the shape in hand.
- :mod:`~brickwork.spec.merging`: merges of branches whose shapes do not fit, and the fix.
- :mod:`~brickwork.spec.graph`: ``Graph``, the module a graph spec builds.
- :mod:`~brickwork.spec.sizes`: how a brick's size rule meets the incoming shape.
- :mod:`~brickwork.spec.normal`: ``to_spec`` and ``save_spec``, the normalised spec.

Specs name only registered things: reading a spec never imports or runs code.
"""

from brickwork.spec.builder import SPEC_ATTR, SPEC_KEYS, build
from brickwork.spec.graph import Graph, output_names
from brickwork.spec.inputs import (
    SpecInput,
    describe_io,
    example_inputs,
    spec_inputs,
    with_input_shape,
)
from brickwork.spec.io import load_spec, parse_mapping
from brickwork.spec.items import CONTAINERS
from brickwork.spec.normal import save_spec, to_spec
from brickwork.spec.sizes import describe_ranks

__all__ = [
    "CONTAINERS",
    "SPEC_ATTR",
    "SPEC_KEYS",
    "Graph",
    "SpecInput",
    "build",
    "describe_io",
    "describe_ranks",
    "example_inputs",
    "load_spec",
    "output_names",
    "parse_mapping",
    "save_spec",
    "spec_inputs",
    "to_spec",
    "with_input_shape",
]
