import gc
from typing import Any

import torch
from torch import nn

from brickwork import summary
from brickwork.inspect.inputs import make_inputs
from brickwork.inspect.meta_copy import meta_copy
from brickwork.inspect.meta_run import MetaRun, shapes_of, storage_key, tensors_in


class Containers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 4)
        self.scales = nn.ParameterList([nn.Parameter(torch.ones(3)), nn.Parameter(torch.ones(2))])
        self.extra = nn.ParameterDict({"bias": nn.Parameter(torch.zeros(2))})
        self.blocks = nn.ModuleDict(
            {"a": nn.ModuleList([nn.Linear(4, 4), nn.ModuleList([nn.Linear(4, 2)])])}
        )

    def forward(self, x: torch.Tensor) -> dict[str, Any]:
        y = self.layer(self.layer(x))  # called twice
        z = self.blocks["a"][1][0](self.blocks["a"][0](y)) + self.extra["bias"]
        return {"y": y, "pair": (z, z * self.scales[0].sum()), "count": 3, "none": None}


def test_containers_calls_twice_and_non_tensor_outputs() -> None:
    result = summary(Containers(), (4,), batch_size=2)
    assert result.error is None
    assert result.total_params == 20 + 5 + 2 + 20 + 10
    labels = [(row.label, row.call, row.params) for row in result.rows[1:]]
    assert labels == [
        ("layer", 1, 20),
        ("layer", 2, 0),
        ("blocks.a.0", 1, 20),
        ("blocks.a.1.0", 1, 10),
    ]
    assert result.rows[0].output_shape == {
        "y": [2, 4],
        "pair": [[2, 2], [2, 2]],
        "count": "int",
        "none": None,
    }
    assert result.macs == 2 * (16 + 16 + 16 + 8)
    text = str(result)
    assert "layer (Linear) #2" in text
    assert "(shared)" in text
    assert "{y: [2, 4], pair: [[2, 2], [2, 2]], count: int, none: --}" in text


def test_a_failing_forward_shows_rows_up_to_the_failing_module() -> None:
    class Bad(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc = nn.Linear(10, 20)
            self.dec = nn.Linear(30, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.dec(self.enc(x))

    result = summary(Bad(), (10,))
    assert [row.path for row in result.rows] == ["", "enc", "dec"]
    assert result.rows[1].output_shape == [1, 20]
    assert result.error is not None
    assert result.error.startswith("dec (Linear) failed on input of shape [1, 20]: RuntimeError: ")
    assert result.total_params == 282
    assert str(result).rstrip().endswith(result.error)


def test_forward_records_rows_and_returns_none() -> None:
    model = meta_copy(nn.Sequential(nn.Linear(10, 20), nn.ReLU()))
    args, kwargs = make_inputs((10,), None, 3, torch.float32).meta()
    run = MetaRun(model)
    assert run.forward(args, kwargs) is None
    assert [(row.path, row.output_shape) for row in run.rows] == [
        ("", [3, 20]),
        ("0", [3, 20]),
        ("1", [3, 20]),
    ]
    assert run.root_macs == 3 * 10 * 20
    assert run.exception is None
    assert run.failed is None
    assert list(run.output.shape) == [3, 20]


def test_a_failing_forward_returns_a_line_and_the_failing_row() -> None:
    model = meta_copy(nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(30, 2)))
    args, kwargs = make_inputs((10,), None, 1, torch.float32).meta()
    run = MetaRun(model)
    line = run.forward(args, kwargs)
    assert line is not None
    assert line.startswith("2 (Linear) failed on input of shape [1, 20]")
    assert isinstance(run.exception, RuntimeError)
    assert run.failed is run.rows[-1]
    assert run.failed.path == "2"


def test_tracked_tensors_taint_what_is_computed_from_them() -> None:
    model = meta_copy(nn.Linear(4, 2))
    args, kwargs = make_inputs((4,), None, 2, torch.float32).meta()
    run = MetaRun(model, track=list(tensors_in((args, kwargs))))
    run.forward(args, kwargs)
    assert storage_key(run.output) in run.tainted
    assert storage_key(model.weight) in run.read
    untracked = MetaRun(model)  # the summary's: it follows no storages
    untracked.forward(args, kwargs)
    assert untracked.read == set()
    assert untracked.tainted == set()
    assert untracked.root_macs == run.root_macs


def test_the_garbage_collector_is_left_as_it_was() -> None:
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(5, 2))  # fails in the second layer
    assert gc.isenabled()
    assert summary(model, (4,)).error is not None
    assert gc.isenabled()
    gc.disable()
    try:
        summary(model[:1], (4,))
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_inputs_and_shapes() -> None:
    data = {"a": torch.randn(5, 3), "n": 2}
    args, kwargs = make_inputs(None, data, 1, torch.float32).meta()
    assert args == ()
    assert kwargs["n"] == 2
    assert kwargs["a"].device.type == "meta"
    assert shapes_of((torch.ones(2, 3), [None, 1], {"k": torch.ones(4)})) == [
        [2, 3],
        [None, "int"],
        {"k": [4]},
    ]
    assert len(list(tensors_in(({"a": [torch.ones(1)]}, (torch.ones(2),))))) == 2
