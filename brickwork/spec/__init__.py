"""Models from specs: a list of bricks, or a registered family, with every size inferred.

A spec is data (a dict, or YAML/JSON text or file)::

    input: [1, 28, 28]            # per-sample shape, no batch dimension
    model:
      - conv_block: {out: 32, kernel_size: 3, padding: 1, activation: lrelu}
      - flatten
      - dec_block: {out: 512}
      - linear: {out: 10}

or ``model: {cnn_classifier: {enc_sizes: [32, 64], dec_sizes: [1024, 512], n_classes: 10}}``.

- :mod:`~brickwork.spec.io`: reading and writing spec files (``load_spec``).
- :mod:`~brickwork.spec.builder`: ``build``, which walks the spec with the shape in hand.
- :mod:`~brickwork.spec.sizes`: how a brick's size rule meets the incoming shape.
- :mod:`~brickwork.spec.normal`: ``to_spec`` and ``save_spec``, the normalised spec.

Specs name only registered things: reading a spec never imports or runs code.
"""

from brickwork.spec.builder import CONTAINERS, SPEC_ATTR, SPEC_KEYS, build
from brickwork.spec.io import load_spec
from brickwork.spec.normal import save_spec, to_spec
from brickwork.spec.sizes import describe_ranks

__all__ = [
    "CONTAINERS",
    "SPEC_ATTR",
    "SPEC_KEYS",
    "build",
    "describe_ranks",
    "load_spec",
    "save_spec",
    "to_spec",
]
