import gc
import weakref

import pytest
import torch
from torch import nn

from brickwork import LayerStack
from brickwork.errors import ConfigError


def test_layers_live_in_a_module_list() -> None:
    model = LayerStack([784, 256, 64, 10], activation="gelu")
    assert isinstance(model.layers, nn.ModuleList)
    assert len(model.layers) == 3
    assert isinstance(model.layers[0][1], nn.GELU)
    assert isinstance(model.layers[-1], nn.Linear)  # no activation after the last layer
    assert (
        sum(p.numel() for p in model.parameters()) == 784 * 256 + 256 + 256 * 64 + 64 + 64 * 10 + 10
    )


def test_return_trace_gives_each_layers_output() -> None:
    model = LayerStack([6, 5, 4, 3])
    x = torch.randn(2, 6)
    out, trace = model(x, return_trace=True)
    assert [t.shape for t in trace] == [(2, 5), (2, 4), (2, 3)]
    assert trace[-1] is out
    torch.testing.assert_close(trace[1], model.layers[1](model.layers[0](x)))
    torch.testing.assert_close(model(x), out)


def test_trace_belongs_to_one_call() -> None:
    model = LayerStack([6, 5, 3])
    _, first = model(torch.randn(2, 6), return_trace=True)
    _, second = model(torch.randn(2, 6), return_trace=True)
    assert first is not second
    assert len(first) == len(second) == 2
    state_before = set(vars(model))
    model(torch.randn(2, 6))
    assert set(vars(model)) == state_before


def test_no_graph_is_kept_alive_between_calls() -> None:
    model = LayerStack([6, 5, 3])
    out, trace = model(torch.randn(2, 6, requires_grad=True), return_trace=True)
    hidden = weakref.ref(trace[0])
    del out, trace
    gc.collect()
    assert hidden() is None  # nothing on the model holds the last call's activations


def test_needs_at_least_two_sizes() -> None:
    with pytest.raises(ConfigError, match=r"sizes needs at least 2 sizes, got \[4\]"):
        LayerStack([4])
