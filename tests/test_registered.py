"""One test over every registered brick and model: shapes, finite outputs, gradients, n_classes,
torch.export and torch.compile, and a clean bill from the doctor."""

import itertools
import os
from typing import Any

import pytest
import torch
from torch import nn

from brickwork import BRICKS, MODELS, create_model, doctor, list_models

# brick name → (arguments, input shape, expected output shape). Every registered brick needs a row.
BRICK_CASES: dict[str, tuple[dict[str, Any], tuple[int, ...], tuple[int, ...]]] = {
    "conv_block": (
        {"in_f": 3, "out_f": 8, "kernel_size": 3, "padding": 1},
        (2, 3, 6, 6),
        (2, 8, 6, 6),
    ),
    "dec_block": ({"in_f": 12, "out_f": 5}, (2, 12), (2, 5)),
    "identity": ({}, (2, 3), (2, 3)),
    "linear": ({"in_features": 6, "out_features": 4}, (2, 6), (2, 4)),
    "conv1d": ({"in_channels": 3, "out_channels": 4, "kernel_size": 3}, (2, 3, 9), (2, 4, 7)),
    "conv2d": ({"in_channels": 3, "out_channels": 4, "kernel_size": 3}, (2, 3, 9, 9), (2, 4, 7, 7)),
    "batchnorm": ({"channels": 3, "dims": 1}, (2, 3), (2, 3)),
    "batchnorm1d": ({"num_features": 3}, (2, 3), (2, 3)),
    "batchnorm2d": ({"num_features": 3}, (2, 3, 4, 4), (2, 3, 4, 4)),
    "layernorm": ({"channels": 4, "dims": 2}, (2, 4, 3, 3), (2, 4, 3, 3)),
    "groupnorm": ({"channels": 4, "groups": 2}, (2, 4, 3, 3), (2, 4, 3, 3)),
    "dropout": ({}, (2, 5), (2, 5)),
    "dropout2d": ({}, (2, 3, 4, 4), (2, 3, 4, 4)),
    "embedding": ({"num_embeddings": 10, "embedding_dim": 4}, (2, 5), (2, 5, 4)),
    "flatten": ({}, (2, 3, 4), (2, 12)),
    "maxpool2d": ({"kernel_size": 2}, (2, 3, 8, 8), (2, 3, 4, 4)),
    "avgpool2d": ({"kernel_size": 2}, (2, 3, 8, 8), (2, 3, 4, 4)),
    "adaptiveavgpool2d": ({"output_size": 1}, (2, 3, 8, 8), (2, 3, 1, 1)),
    "basic_block": ({"in_chans": 4, "width": 8, "stride": 2}, (2, 4, 8, 8), (2, 8, 4, 4)),
    "bottleneck": ({"in_chans": 8, "width": 4, "stride": 1}, (2, 8, 6, 6), (2, 16, 6, 6)),
    "self_attention2d": ({"channels": 16}, (2, 16, 5, 7), (2, 16, 5, 7)),
    "convtranspose2d": (
        {"in_channels": 3, "out_channels": 4, "kernel_size": 2, "stride": 2},
        (2, 3, 4, 5),
        (2, 4, 8, 10),
    ),
    "zeropad2d": ({"padding": [1, 2, 0, 1]}, (2, 3, 4, 4), (2, 3, 5, 7)),
    "upsample": ({"scale_factor": 2, "mode": "nearest"}, (2, 3, 4, 4), (2, 3, 8, 8)),
}
# Bricks of several inputs (merges) or outputs (splits): name → (arguments, input shapes, output
# shapes). Every registered brick has a row here or in BRICK_CASES.
JOINT_CASES: dict[str, tuple[dict[str, Any], list[tuple[int, ...]], list[tuple[int, ...]]]] = {
    "concat": ({"dim": 1}, [(2, 3, 4), (2, 5, 4)], [(2, 8, 4)]),
    "add": ({}, [(2, 3, 4), (2, 3, 1)], [(2, 3, 4)]),
    "mul": ({}, [(2, 3, 4, 4), (2, 3, 1, 1), (2, 3, 4, 4)], [(2, 3, 4, 4)]),
    "split": ({"sizes": [2, 3]}, [(2, 5, 4)], [(2, 2, 4), (2, 3, 4)]),
    "chunk": ({"chunks": 2, "dim": -1}, [(2, 3, 4)], [(2, 3, 2), (2, 3, 2)]),
}

# model name → (small arguments, per-sample input, per-sample output for n_classes=n).
# Every registered model needs a row.
MODEL_CASES: dict[str, tuple[dict[str, Any], tuple[int, ...], Any]] = {
    "cnn_classifier": (
        {"in_c": 3, "enc_sizes": [8, 16], "dec_sizes": [32], "input_shape": (8, 8)},
        (3, 8, 8),
        lambda n: (n,),
    ),
    "mlp": ({"in_features": 48, "hidden": [16]}, (3, 4, 4), lambda n: (n,)),
    "simple_convnet": ({"in_chans": 3, "widths": [8, 16]}, (3, 9, 9), lambda n: (n,)),
    "unet": ({"in_chans": 3, "widths": [8, 16, 32]}, (3, 16, 16), lambda n: (n, 16, 16)),
    **{
        name: ({}, (3, 32, 32), lambda n: (n,))
        for name in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
    },
    **{
        name: ({}, (3, 28, 28), lambda n: (n,))
        for name in ("resnet18_small", "resnet34_small", "resnet50_small")
    },
}
# torch.compile takes tens of seconds a model on two cores: one model of each class runs in
# `make test`; BRICKWORK_COMPILE_ALL=1 compiles every registered model.
COMPILE = (
    sorted(MODEL_CASES)
    if os.environ.get("BRICKWORK_COMPILE_ALL")
    else ["cnn_classifier", "mlp", "resnet18_small", "simple_convnet", "unet"]
)


def test_every_registered_brick_and_model_has_a_case() -> None:
    assert sorted([*BRICK_CASES, *JOINT_CASES]) == BRICKS.names()
    assert sorted(MODEL_CASES) == MODELS.names() == list_models()


def _assert_trains(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    (out,) = _assert_trains_all(model, [x])
    return out


def _assert_trains_all(model: nn.Module, xs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Every output finite; every parameter and floating-point input gets a finite gradient."""
    for x in xs:
        if x.is_floating_point():
            x.requires_grad_()  # so that bricks without parameters can run backward too
    out = model(*xs)
    outs = list(out) if isinstance(out, tuple) else [out]
    assert all(torch.isfinite(o).all() for o in outs)
    sum(o.float().pow(2).mean() for o in outs).backward()  # type: ignore[union-attr]
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), name
    assert all(x.grad is not None for x in xs if x.is_floating_point())
    return outs


@pytest.mark.parametrize("name", sorted(BRICK_CASES))
def test_brick(name: str) -> None:
    kwargs, in_shape, out_shape = BRICK_CASES[name]
    brick = BRICKS.build((name, kwargs))
    int_ids = BRICKS.size_rule(name).int_input
    out = _assert_trains(
        brick, torch.randint(0, 10, in_shape) if int_ids else torch.randn(in_shape)
    )
    assert out.shape == out_shape


@pytest.mark.parametrize("name", sorted(BRICK_CASES))
def test_brick_is_clean_for_the_doctor(name: str) -> None:
    kwargs, in_shape, _ = BRICK_CASES[name]
    dtype = torch.long if BRICKS.size_rule(name).int_input else None
    report = doctor(BRICKS.build((name, kwargs)), in_shape[1:], input_dtype=dtype)
    assert report.findings == [], str(report)


@pytest.mark.parametrize("name", sorted(JOINT_CASES))
def test_brick_of_several_inputs_or_outputs(name: str) -> None:
    kwargs, in_shapes, out_shapes = JOINT_CASES[name]
    brick = BRICKS.build((name, kwargs))
    outs = _assert_trains_all(brick, [torch.randn(shape) for shape in in_shapes])
    assert [tuple(o.shape) for o in outs] == out_shapes


@pytest.mark.parametrize("name", sorted(JOINT_CASES))
def test_brick_of_several_inputs_or_outputs_is_clean_for_the_doctor(name: str) -> None:
    kwargs, in_shapes, _ = JOINT_CASES[name]
    data = tuple(torch.randn(shape) for shape in in_shapes)
    report = doctor(BRICKS.build((name, kwargs)), input_data=data)
    assert report.findings == [], str(report)


def _model(name: str, **extra: Any) -> tuple[nn.Module, torch.Tensor, tuple[int, ...]]:
    kwargs, in_shape, out_shape = MODEL_CASES[name]
    n = extra.get(
        "n_classes",
        10
        if name in ("mlp", "simple_convnet", "cnn_classifier") or name.endswith("_small")
        else 1000,
    )
    if name == "unet":
        n = extra.get("n_classes", 2)
    torch.manual_seed(0)
    return create_model(name, **kwargs, **extra), torch.randn(2, *in_shape), out_shape(n)


@pytest.mark.parametrize("name", sorted(MODEL_CASES))
def test_model(name: str) -> None:
    model, x, out_shape = _model(name)
    out = _assert_trains(model, x)
    assert out.shape == (2, *out_shape)


@pytest.mark.parametrize("name", sorted(MODEL_CASES))
def test_model_n_classes_override(name: str) -> None:
    model, x, out_shape = _model(name, n_classes=7)
    assert model(x).shape == (2, *out_shape)
    assert out_shape[0] == 7


@pytest.mark.parametrize("name", sorted(MODEL_CASES))
def test_model_with_defaults_builds_on_meta(name: str) -> None:
    with torch.device("meta"):
        model = create_model(name)
    assert sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.parametrize("name", sorted(MODEL_CASES))
def test_model_is_clean_for_the_doctor(name: str) -> None:
    model, x, _ = _model(name)
    report = doctor(model, tuple(x.shape[1:]))
    assert report.findings == [], str(report)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MODEL_CASES))
def test_model_exports(name: str) -> None:
    model, x, _ = _model(name)
    model.eval()
    exported = torch.export.export(model, (x,))
    torch.testing.assert_close(exported.module()(x), model(x))


@pytest.mark.slow
@pytest.mark.parametrize("name", COMPILE)
def test_model_compiles(name: str) -> None:
    model, x, _ = _model(name)
    model.eval()
    with torch.no_grad():
        expected = model(x)
        compiled = torch.compile(model)(x)
    torch.testing.assert_close(compiled, expected, rtol=1e-4, atol=1e-4)


def _biases_before_norms(model: nn.Module) -> set[str]:
    """Convolutions with a bias followed, in a Sequential, by a batch norm: the waste the
    doctor's bias-before-norm names (the guide's conv_block keeps that bias on purpose)."""
    found = set()
    for path, module in model.named_modules():
        if isinstance(module, nn.Sequential):
            for (name, first), (_, second) in itertools.pairwise(module.named_children()):
                if (
                    isinstance(first, nn.Conv2d | nn.Linear)
                    and first.bias is not None
                    and isinstance(second, nn.modules.batchnorm._BatchNorm)
                ):
                    found.add(f"{path}.{name}" if path else name)
    return found


def _trains_clean(report: Any, model: nn.Module) -> None:
    assert report.ok, str(report)
    assert {f.code for f in report.findings} <= {"bias-before-norm"}, str(report)
    assert {f.path for f in report.findings} == _biases_before_norms(model), str(report)
    assert len(report.losses) > 1
    assert report.losses[-1] < report.losses[0]


# the deep ResNets take seconds a step on two cores
TRAIN_SLOW = ("resnet34", "resnet34_small", "resnet50", "resnet50_small", "resnet101", "resnet152")


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.slow) if n in TRAIN_SLOW else n
        for n in sorted(MODEL_CASES)
    ],
)
def test_model_trains_clean_for_the_doctor(name: str) -> None:
    model, x, _ = _model(name)
    report = doctor(model, tuple(x.shape[1:]), loss="cross_entropy", steps=1)
    _trains_clean(report, model)


# five steps of the default AdamW at 1e-3: a representative family of each kind (the ResNets share
# one layout); one step each for all of them above
TRAIN_FIVE = ("cnn_classifier", "mlp", "resnet18_small", "simple_convnet", "unet")


@pytest.mark.parametrize("name", TRAIN_FIVE)
def test_model_trains_clean_for_the_doctor_over_five_steps(name: str) -> None:
    model, x, _ = _model(name)
    report = doctor(model, tuple(x.shape[1:]), loss="cross_entropy", steps=5)
    _trains_clean(report, model)


@pytest.mark.parametrize("steps", [1, 5])
@pytest.mark.parametrize("name", sorted(BRICK_CASES))
def test_brick_trains_clean_for_the_doctor(name: str, steps: int) -> None:
    kwargs, in_shape, _ = BRICK_CASES[name]
    dtype = torch.long if BRICKS.size_rule(name).int_input else None
    brick = BRICKS.build((name, kwargs))
    report = doctor(brick, in_shape[1:], input_dtype=dtype, loss="mse", steps=steps)
    assert report.training is not None
    if any(p.requires_grad for p in brick.parameters()):
        _trains_clean(report, brick)
    else:
        assert report.findings == []


@pytest.mark.parametrize("name", sorted(JOINT_CASES))
def test_brick_of_several_inputs_or_outputs_trains_clean_for_the_doctor(name: str) -> None:
    kwargs, in_shapes, _ = JOINT_CASES[name]
    data = tuple(torch.randn(shape) for shape in in_shapes)
    report = doctor(BRICKS.build((name, kwargs)), input_data=data, loss="mse", steps=1)
    assert report.findings == [], str(report)
    assert report.training == "nothing to train: the model has no trainable parameter"
