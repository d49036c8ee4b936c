"""Property: a spec either builds a model whose real output has the inferred shape, or raises SpecError.

``make test`` runs 300 random chains and 150 random graphs (``random_specs.random_spec``: names,
``from:``, merges, splits, ``use:``, several inputs and outputs); a graph that builds also
round-trips through ``to_spec``. ``BRICKWORK_SPEC_EXAMPLES=5000`` and
``BRICKWORK_GRAPH_EXAMPLES=5000`` run more.
"""

import os
import random
import warnings
from typing import Any

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from outputs import leaves, shapes_of
from random_specs import random_spec

from brickwork import SpecError, build, to_spec
from brickwork.errors import SpecWarning
from brickwork.spec import example_inputs

EXAMPLES = int(os.environ.get("BRICKWORK_SPEC_EXAMPLES", "300"))
VOCAB = 12

# mostly valid sizes, sometimes the invalid 0 and -1
size = st.one_of(st.integers(1, 9), st.integers(1, 9), st.integers(1, 9), st.sampled_from([0, -1]))
small = st.integers(min_value=1, max_value=4)
activation = st.sampled_from(["relu", "lrelu", "gelu", "tanh", "sigmoid", "identity", "rleu"])

leaf = st.one_of(
    st.builds(
        lambda o, k, p, s: {"conv2d": {"out": o, "kernel_size": k, "padding": p, "stride": s}},
        size,
        small,
        st.integers(0, 2),
        st.integers(1, 3),
    ),
    st.builds(
        lambda o, k, p, a: {
            "conv_block": {"out": o, "kernel_size": k, "padding": p, "activation": a}
        },
        size,
        small,
        st.integers(0, 2),
        activation,
    ),
    st.builds(lambda o, k: {"conv1d": {"out": o, "kernel_size": k}}, size, small),
    st.builds(lambda o: {"linear": {"out": o}}, size),
    st.builds(lambda o, a: {"dec_block": {"out": o, "activation": a}}, size, activation),
    st.builds(lambda o: {"embedding": {"num_embeddings": VOCAB, "out": o}}, size),
    st.builds(lambda k: {"maxpool2d": {"kernel_size": k}}, small),
    st.builds(lambda k: {"avgpool2d": {"kernel_size": k}}, small),
    st.builds(lambda o: {"adaptiveavgpool2d": {"output_size": o}}, small),
    st.builds(lambda g: {"groupnorm": {"num_groups": g}}, small),
    st.sampled_from(
        ["flatten", "batchnorm1d", "batchnorm2d", "layernorm", "dropout", "dropout2d", "identity"]
    ),
    activation,
)


def items(depth: int) -> st.SearchStrategy[list[Any]]:
    node: st.SearchStrategy[Any] = leaf
    if depth > 0:
        inner = items(depth - 1)
        node = st.one_of(
            leaf,
            leaf,
            leaf,
            st.builds(lambda body: {"residual": body}, inner),
            st.builds(
                lambda n, body: {"repeat": {"times": n, "body": body}}, st.integers(0, 3), inner
            ),
            st.builds(lambda body: {"sequential": body}, inner),
        )
    return st.lists(node, min_size=1, max_size=5)


inputs = st.one_of(
    st.tuples(st.integers(1, 4), st.integers(1, 12), st.integers(1, 12)).map(
        lambda s: (list(s), "float32")
    ),
    st.tuples(st.integers(1, 4), st.integers(1, 12)).map(lambda s: (list(s), "float32")),
    st.tuples(st.integers(1, 16)).map(lambda s: (list(s), "float32")),
    st.tuples(st.integers(1, 6)).map(lambda s: (list(s), "long")),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inputs, items(2))
def test_a_spec_builds_to_its_inferred_shape_or_raises_spec_error(
    given_input: tuple[list[int], str], model_items: list[Any]
) -> None:
    shape, dtype = given_input
    spec = {"input": shape, "input_dtype": dtype, "model": model_items}
    try:
        model = build(spec)
    except SpecError:
        return
    predicted = to_spec(model)["output"]
    x = torch.randint(0, VOCAB, (3, *shape)) if dtype == "long" else torch.randn(3, *shape)
    with torch.no_grad():
        out = model(x)
    assert list(out.shape) == [3, *predicted]


GRAPH_EXAMPLES = int(os.environ.get("BRICKWORK_GRAPH_EXAMPLES", "150"))


@settings(max_examples=GRAPH_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False))
def test_a_graph_spec_builds_to_its_inferred_shapes_and_round_trips_or_raises_spec_error(
    rng: random.Random,
) -> None:
    spec = random_spec(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpecWarning)  # a random graph may leave a branch unread
        try:
            model = build(spec)
        except SpecError:
            return
        normal = to_spec(model)
        rebuilt = build(normal)
    xs = [
        torch.randn(t.shape) if t.dtype.is_floating_point else torch.randint(0, VOCAB, t.shape)
        for t in example_inputs(normal, 3, device="cpu")
    ]
    model.eval(), rebuilt.eval()
    with torch.no_grad():
        out = model(*xs)
        assert shapes_of(out) == normal["output"]
        assert rebuilt.state_dict().keys() == model.state_dict().keys()
        rebuilt.load_state_dict(model.state_dict())
        for got, want in zip(leaves(rebuilt(*xs)), leaves(out), strict=True):
            torch.testing.assert_close(got, want, rtol=0, atol=0, equal_nan=True)
    assert to_spec(rebuilt) == normal
