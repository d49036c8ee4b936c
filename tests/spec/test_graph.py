"""Graph specs: items that read named values, merges, several inputs and outputs, reused modules."""

import itertools
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from graph_specs import resnet_graph
from outputs import leaves
from torch import nn

import brickwork
from brickwork import build, count_params, create_model, to_spec
from brickwork.spec import Graph, describe_io, example_inputs

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from torchvision_resnet import Bottleneck, ResNet  # noqa: E402  (plain PyTorch, no brickwork)

SKIP = {  # a small U-Net: each level's output is concatenated back on the way up
    "input": [3, 16, 16],
    "model": [
        {"conv_block": {"out": 8, "kernel_size": 3, "padding": 1}, "name": "enc1"},
        {"maxpool2d": {"kernel_size": 2}},
        {"conv_block": {"out": 16, "kernel_size": 3, "padding": 1}, "name": "enc2"},
        {"convtranspose2d": {"out": 8, "kernel_size": 2, "stride": 2}, "name": "up1"},
        {"concat": {"dim": 1}, "from": ["enc1", "up1"], "name": "cat1"},
        {"conv2d": {"out": 2, "kernel_size": 1}, "name": "head"},
    ],
}
SIAMESE = {  # one tower, run on both inputs: the same weights
    "inputs": {"left": [12], "right": [12]},
    "model": [
        {"sequential": [{"linear": {"out": 8}}, "relu"], "name": "tower", "from": "left"},
        {"use": "tower", "from": "right", "name": "right_tower"},
        {"add": None, "from": ["tower", "right_tower"]},
        {"linear": {"out": 1}, "name": "score"},
    ],
}
TIED = {  # two sequences of token ids embedded by one table
    "inputs": {"query": {"shape": [5], "dtype": "long"}, "doc": {"shape": [7], "dtype": "long"}},
    "model": [
        {"embedding": {"num_embeddings": 20, "out": 6}, "name": "embed", "from": "query"},
        {"flatten": None, "name": "q"},
        {"use": "embed", "from": "doc"},
        {"flatten": None, "name": "d"},
        {"concat": None, "from": ["q", "d"]},
        {"linear": {"out": 2}},
    ],
}
SPLIT = {  # a VAE-style head: one linear layer split into a mean and a log-variance
    "input": [10],
    "model": [
        {"linear": {"out": 8}, "name": "stats"},
        {"split": {"sizes": [4, 4]}, "name": "parts"},
        {"mul": None, "from": ["parts.1", "parts.1"], "name": "square"},
        {"add": None, "from": ["parts.0", "square"]},
    ],
}
TUPLE_OUT = {
    "input": [6],
    "model": [
        {"linear": {"out": 4}, "name": "trunk"},
        {"chunk": {"chunks": 2}, "name": "halves"},
        {"identity": None, "name": "first", "from": "halves.0"},
        {"tanh": None, "name": "second", "from": "halves.1"},
    ],
    "outputs": ["first", "second", "trunk"],
}
BLOCK = {  # a residual block whose shortcut is written out, inside a chain
    "input": [4, 8, 8],
    "model": [
        {"conv2d": {"out": 8, "kernel_size": 3, "padding": 1}, "name": "stem"},
        {
            "name": "block",
            "sequential": [
                {"conv2d": {"out": 8, "kernel_size": 3, "padding": 1}, "name": "conv"},
                {"batchnorm2d": None, "name": "bn"},
                {"add": None, "from": ["bn", "input"]},
                {"relu": {"inplace": True}},
            ],
        },
        {
            "repeat": {
                "times": 2,
                "body": [{"residual": [{"conv2d": {"out": 8, "kernel_size": 1}}]}],
            }
        },
    ],
}
GRAPHS = {
    "skip": SKIP,
    "siamese": SIAMESE,
    "tied": TIED,
    "split": SPLIT,
    "tuple": TUPLE_OUT,
    "block": BLOCK,
    "two_inputs": EXAMPLES / "two_inputs.yaml",
    "two_heads": EXAMPLES / "two_heads.yaml",
}


def _batch(spec: dict[str, Any], size: int = 3) -> tuple[torch.Tensor, ...]:
    """Real random batches of a spec's inputs: ids below 20 where the input takes ids."""
    return tuple(
        torch.randint(0, 20, t.shape) if not t.dtype.is_floating_point else torch.randn(t.shape)
        for t in example_inputs(spec, size, device="cpu")
    )


def test_a_list_that_reads_only_the_item_before_stays_an_nn_sequential() -> None:
    model = build({"input": [4], "model": [{"linear": {"out": 3}, "name": "fc"}, "relu"]})
    assert type(model) is nn.Sequential
    assert list(model.state_dict()) == ["fc.weight", "fc.bias"]


def test_a_skip_connection_concatenates_an_earlier_output() -> None:
    model = build(SKIP)
    assert isinstance(model, Graph)
    assert model.head.in_channels == 16  # type: ignore[union-attr]  # enc1 (8) + up1 (8)
    x = torch.randn(2, 3, 16, 16)
    enc1 = model.enc1(x)  # type: ignore[operator]
    expected = model.head(  # type: ignore[operator]
        torch.cat([enc1, model.up1(model.enc2(model.get_submodule("1")(enc1)))], dim=1)  # type: ignore[operator]
    )
    torch.testing.assert_close(model(x), expected)


def test_two_inputs_by_position_or_by_name() -> None:
    model = build(EXAMPLES / "two_inputs.yaml").eval()
    image, features = torch.randn(2, 3, 32, 32), torch.randn(2, 8)
    out = model(image, features)
    assert out.shape == (2, 10)
    torch.testing.assert_close(model(features=features, image=image), out)
    torch.testing.assert_close(model(image, features=features), out)
    assert model.joined(torch.randn(2, 32), features).shape == (2, 40)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((torch.randn(2, 3, 32, 32),), {}, r"missing input\(s\) features"),
        ((), {"image": torch.randn(2, 3, 32, 32), "extra": torch.randn(2)}, "takes 2 input"),
        ((torch.randn(2, 3, 32, 32), torch.randn(2, 8), torch.randn(2)), {}, "takes 2 input"),
        ((torch.randn(2, 3, 32, 32),), {"image": torch.randn(2, 3, 32, 32)}, "twice"),
    ],
)
def test_a_graph_refuses_inputs_it_does_not_take(
    args: tuple[torch.Tensor, ...], kwargs: dict[str, torch.Tensor], message: str
) -> None:
    model = build(EXAMPLES / "two_inputs.yaml")
    with pytest.raises(brickwork.ArgumentError, match=message):
        model(*args, **kwargs)


def test_two_heads_return_the_dict_that_outputs_names() -> None:
    model = build(EXAMPLES / "two_heads.yaml")
    out = model(torch.randn(2, 3, 32, 32))
    assert {k: tuple(v.shape) for k, v in out.items()} == {"logits": (2, 10), "box": (2, 4)}
    assert to_spec(model)["output"] == {"logits": [10], "box": [4]}
    assert ((out["box"] > 0) & (out["box"] < 1)).all()


def test_outputs_as_a_list_give_a_tuple_and_parts_are_picked_by_position() -> None:
    model = build(TUPLE_OUT)
    x = torch.randn(2, 6)
    first, second, trunk = model(x)
    torch.testing.assert_close(trunk, model.trunk(x))  # type: ignore[operator]
    torch.testing.assert_close(first, trunk[:, :2])
    torch.testing.assert_close(second, trunk[:, 2:].tanh())
    assert to_spec(model)["output"] == [[2], [2], [4]]
    split = build(SPLIT)
    stats = split.stats(x := torch.randn(2, 10))  # type: ignore[operator]
    torch.testing.assert_close(split(x), stats[:, :4] + stats[:, 4:] ** 2)


def test_use_runs_the_same_module_so_weights_are_shared_and_counted_once() -> None:
    model = build(SIAMESE)
    assert count_params(model) == (12 * 8 + 8) + (8 + 1)
    assert [k for k in model.state_dict() if k.startswith("tower")] == [
        "tower.0.weight",
        "tower.0.bias",
    ]
    left, right = torch.randn(4, 12), torch.randn(4, 12)
    out = model(left, right)
    torch.testing.assert_close(out, model.score(model.tower(left) + model.tower(right)))  # type: ignore[operator]
    out.sum().backward()
    weight = model.tower[0].weight  # type: ignore[index]
    alone = torch.autograd.grad(model.score(model.tower(left)).sum(), weight)[0]  # type: ignore[operator]
    assert not torch.allclose(weight.grad, alone)  # both towers' gradients reach the one weight


def test_tied_embedding_takes_two_id_inputs() -> None:
    model = build(TIED)
    assert sum(isinstance(m, nn.Embedding) for m in model.modules()) == 1
    query, doc = torch.randint(0, 20, (2, 5)), torch.randint(0, 20, (2, 7))
    assert model(query, doc).shape == (2, 2)
    assert to_spec(model)["inputs"] == {  # dtypes by their canonical names
        "query": {"shape": [5], "dtype": "int64"},
        "doc": {"shape": [7], "dtype": "int64"},
    }


@pytest.mark.parametrize(
    ("spec", "described"),
    [
        (EXAMPLES / "two_heads.yaml", "input (3, 32, 32) -> outputs logits (10,), box (4,)"),
        (TUPLE_OUT, "input (6,) -> outputs (2,), (2,), (4,)"),
        (SIAMESE, "inputs left (12,), right (12,) -> output (1,)"),
        (TIED, "inputs query (5,), doc (7,) -> output (2,)"),
    ],
)
def test_inputs_and_outputs_are_described_in_one_line(spec: Any, described: str) -> None:
    assert describe_io(to_spec(build(spec, device="meta"))) == described


def test_print_reads_as_the_spec() -> None:
    text = str(build(EXAMPLES / "two_heads.yaml"))
    assert "(features): Flatten" in text
    assert "(box) <- features: Sequential(" in text  # reads another item than the one before
    assert "outputs: {logits: classes, box: box}" in text
    siamese = str(build(SIAMESE))
    assert "(right_tower) <- right: use tower" in siamese
    assert "inputs: left, right" in siamese


def test_unet_example_is_the_unet_family() -> None:
    graph = build(EXAMPLES / "unet.yaml", device="meta")
    with torch.device("meta"):
        family = create_model("unet", in_chans=3, n_classes=2)
    assert count_params(graph) == count_params(family) == 31_037_698
    x = torch.empty(1, 3, 64, 64, device="meta")
    assert graph(x).shape == family(x).shape == (1, 2, 64, 64)


def test_resnet50_example_is_the_bottleneck_resnet_that_graph_specs_writes() -> None:
    written = to_spec(build(EXAMPLES / "resnet50.yaml", device="meta"))
    assert written == to_spec(build(resnet_graph((3, 4, 6, 3)), device="meta"))


def test_resnet50_example_has_torchvision_names_and_shapes() -> None:
    graph = build(EXAMPLES / "resnet50.yaml", device="meta")
    with torch.device("meta"):
        reference = ResNet(Bottleneck, [3, 4, 6, 3])
    shapes = {k: tuple(v.shape) for k, v in graph.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert {"conv1.weight", "layer1.0.downsample.0.weight", "fc.weight"} <= set(shapes)


@pytest.mark.slow  # three ResNet-50s built and two run on the CPU: seconds on two cores
def test_resnet50_example_loads_torchvision_weights_and_computes_create_models_outputs() -> None:
    graph = build(EXAMPLES / "resnet50.yaml").eval()
    assert str(graph.load_state_dict(ResNet(Bottleneck, [3, 4, 6, 3]).state_dict())) == (
        "<All keys matched successfully>"  # strict=True
    )
    reference = create_model("resnet50").eval()
    graph.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(graph(x), reference(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_to_spec_round_trips_a_graph(name: str) -> None:
    model = build(GRAPHS[name]).eval()
    spec = to_spec(model)
    rebuilt = build(spec).eval()
    assert type(rebuilt) is type(model)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()
    }
    rebuilt.load_state_dict(model.state_dict())
    xs = _batch(spec)
    with torch.no_grad():
        for got, want in zip(leaves(rebuilt(*xs)), leaves(model(*xs)), strict=True):
            torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert to_spec(rebuilt) == spec
    assert str(rebuilt) == str(model)


def test_a_graph_saves_and_loads_without_code(tmp_path: Path) -> None:
    model = build(EXAMPLES / "two_inputs.yaml").eval()
    path = brickwork.save(model, tmp_path / "two.safetensors")
    loaded = brickwork.load(path).eval()
    assert list(loaded.state_dict()) == list(model.state_dict())
    xs = _batch(to_spec(model))
    torch.testing.assert_close(loaded(*xs), model(*xs), rtol=0, atol=0)


@pytest.mark.parametrize("example", ["two_inputs.yaml", "two_heads.yaml"])
def test_examples_train_a_step(example: str) -> None:
    model = build(EXAMPLES / example)
    spec = to_spec(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    out = model(*_batch(spec, 8))
    labels = torch.randint(0, 10, (8,))
    if isinstance(out, dict):
        loss = nn.functional.cross_entropy(out["logits"], labels)
        loss = loss + nn.functional.mse_loss(out["box"], torch.rand(8, 4))
    else:
        loss = nn.functional.cross_entropy(out, labels)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    optimizer.step()
    still = _biases_before_a_batch_norm(model)
    for (name, p), b in zip(model.named_parameters(), before, strict=True):
        if name in still:
            assert p.grad is not None, name
            assert p.grad.abs().max() < 1e-6, name
        else:
            assert not torch.equal(b, p), name


def _biases_before_a_batch_norm(model: nn.Module) -> set[str]:
    """A convolution's bias right before a batch norm, which subtracts it again: its gradient is 0
    up to rounding, so whether a step moves it depends on the rounding (on one thread, it does
    not)."""
    names = set()
    for name, module in model.named_modules():
        children = list(module.named_children())
        for (child, first), (_, second) in itertools.pairwise(children):
            if (
                isinstance(first, nn.Conv2d)
                and first.bias is not None
                and isinstance(second, nn.BatchNorm2d)
            ):
                names.add(f"{name}.{child}.bias" if name else f"{child}.bias")
    return names


def test_summary_and_doctor_take_a_graph_spec_of_two_inputs() -> None:
    s = brickwork.summary(EXAMPLES / "two_inputs.yaml", batch_size=4)
    assert s.error is None
    assert s.input_shapes == [[4, 3, 32, 32], [4, 8]]
    assert s.total_params == count_params(build(EXAMPLES / "two_inputs.yaml", device="meta"))
    assert brickwork.doctor(EXAMPLES / "two_heads.yaml").ok


def test_a_graph_is_exported_by_torch_export_with_a_dynamic_batch() -> None:
    model = build(EXAMPLES / "two_inputs.yaml").eval()
    xs = _batch(to_spec(model), 2)
    batch = torch.export.Dim("batch")
    program = torch.export.export(model, xs, dynamic_shapes={"args": ({0: batch}, {0: batch})})
    ys = _batch(to_spec(model), 5)
    torch.testing.assert_close(program.module()(*ys), model(*ys))


@pytest.mark.slow
def test_a_graph_of_two_heads_compiles_to_the_same_outputs() -> None:
    model = build(EXAMPLES / "two_heads.yaml").eval()
    xs = _batch(to_spec(model), 3)
    compiled = torch.compile(model)
    with torch.no_grad():
        eager, fast = model(*xs), compiled(*xs)
    assert isinstance(fast, dict)
    assert fast.keys() == eager.keys()
    for key in eager:
        torch.testing.assert_close(fast[key], eager[key], atol=1e-5, rtol=1e-5)
