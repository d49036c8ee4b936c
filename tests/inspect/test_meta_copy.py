from typing import Any

import torch
from torch import nn

from brickwork import CNNClassifier, summary
from brickwork.inspect.meta_copy import (
    meta_copy,
    named_modules,
    unique_buffers,
    unique_weights,
    user_attributes,
)


def test_the_model_is_left_exactly_as_it_was() -> None:
    model = CNNClassifier(1, [4], [8], 3, input_shape=(6, 6)).eval()
    calls: list[int] = []
    handle = model.encoder.register_forward_hook(lambda *args: calls.append(1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params_before = list(model.parameters())
    summary(model, (1, 6, 6), batch_size=4)
    assert not model.training
    assert list(model.parameters()) == params_before  # the same Parameter objects
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
        assert value.device.type == "cpu"
    assert len(model.encoder._forward_hooks) == 1
    assert sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()) == 1
    handle.remove()


def test_lazy_modules_are_summarised_and_stay_lazy() -> None:
    model = nn.Sequential(nn.LazyLinear(16), nn.ReLU(), nn.LazyLinear(4))
    result = summary(model, (10,))
    assert result.total_params == 10 * 16 + 16 + 16 * 4 + 4
    assert result.macs == 10 * 16 + 16 * 4
    assert model[0].has_uninitialized_params()  # type: ignore[operator]
    assert type(model[0]) is nn.LazyLinear


def test_tied_weights_are_counted_once() -> None:
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(100, 8)
            self.head = nn.Linear(8, 100, bias=False)
            self.head.weight = self.embed.weight

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.embed(x))

    result = summary(Tied(), (5,), input_dtype=torch.long)
    assert result.total_params == 800
    assert result.param_bytes == 800 * 4
    assert result.macs == 5 * 8 * 100


def test_the_copy_is_on_meta_and_keeps_ties_dtypes_and_requires_grad() -> None:
    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(10, 4).to(torch.float16)
            self.head = nn.Linear(4, 10, bias=False)
            self.head.weight = self.embed.weight
            self.norm = nn.BatchNorm1d(4)
            self.norm.requires_grad_(False)
            self.cache = [torch.ones(3)]  # a plain list of tensors on the module

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.embed(x))  # type: ignore[no-any-return]

    model = Model()
    copy = meta_copy(model)
    assert copy is not model
    assert type(copy) is Model
    assert all(t.device.type == "meta" for t in (*copy.parameters(), *copy.buffers()))
    assert copy.head.weight is copy.embed.weight
    assert copy.embed.weight.dtype == torch.float16
    assert not copy.norm.weight.requires_grad
    assert copy.head.weight.requires_grad
    assert copy.cache is not model.cache
    assert copy.cache[0].device.type == "meta"
    assert model.cache[0].device.type == "cpu"


def test_the_copy_drops_the_users_hooks() -> None:
    model = nn.Sequential(nn.Linear(2, 2))
    seen: list[Any] = []
    model[0].register_forward_hook(lambda *args: seen.append(args))
    copy = meta_copy(model)
    copy(torch.empty(1, 2, device="meta"))
    assert seen == []
    assert len(model[0]._forward_hooks) == 1


def test_a_buffer_registered_twice_is_listed_once() -> None:
    model = nn.Sequential(nn.BatchNorm1d(3), nn.BatchNorm1d(3))
    model[1].running_mean = model[0].running_mean
    assert len(list(unique_buffers(model))) == len(list(model[0].buffers())) + 2


def test_the_module_walk_matches_pytorchs() -> None:
    shared = nn.Linear(2, 2)
    inner = nn.Sequential(shared, nn.ReLU(), nn.Sequential(nn.BatchNorm1d(2), shared))
    model = nn.ModuleDict({"b": inner, "a": nn.ModuleList([shared, None, inner]), "c": shared})
    model.a[0].tied = shared.weight  # type: ignore[assignment]
    model.c.register_buffer("twice", model.b[2][0].running_mean)
    assert named_modules(model) == list(model.named_modules())
    params, buffers = unique_weights(m for _, m in named_modules(model))
    assert [id(p) for p in params] == [id(p) for p in model.parameters()]
    assert [id(b) for b in buffers] == [id(b) for b in model.buffers()]


def test_user_attributes_leave_out_pytorchs_tables() -> None:
    layer = nn.Linear(2, 2)
    layer.note = "kept"
    layer.trace = [1, 2]
    assert dict(user_attributes(layer)) == {
        "in_features": 2,
        "out_features": 2,
        "note": "kept",
        "trace": [1, 2],
    }
