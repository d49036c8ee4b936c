from collections.abc import Callable

import pytest
import torch
from torch import nn

import brickwork
from brickwork import Encoder
from brickwork.errors import ConfigError, ShapeError
from brickwork.shapes import (
    dtype_name,
    parse_dtype,
    parse_shape,
    probe_output_shape,
    probe_outputs,
)


@pytest.mark.parametrize(
    ("module", "input_shape", "expected"),
    [
        (nn.Conv2d(3, 8, 3), (3, 10, 12), (8, 8, 10)),
        (
            nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(2), nn.Flatten()),
            (1, 8, 8),
            (64,),
        ),
        (nn.Linear(5, 7), (3, 5), (3, 7)),
        (Encoder([1, 4, 8], pool="avg"), (1, 9, 9), (8, 2, 2)),
    ],
)
def test_probe_output_shape(
    module: nn.Module, input_shape: tuple[int, ...], expected: tuple[int, ...]
) -> None:
    assert probe_output_shape(module, input_shape, "m") == expected


def test_probe_leaves_the_module_untouched() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    probe_output_shape(model, (1, 6, 6), "m")
    after = model.state_dict()
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert torch.equal(value, after[key]), key
        assert after[key].device.type == "cpu"
    assert model.training


def test_probe_wraps_pytorch_errors_with_where_and_the_input_shape() -> None:
    with pytest.raises(ShapeError, match=r"^my encoder cannot take input of shape \(1, 2, 2\): "):
        probe_output_shape(Encoder([1, 4], padding=0), (1, 2, 2), "my encoder")


def test_probe_refuses_non_tensor_outputs() -> None:
    class Pair(nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return x, x

    with pytest.raises(ShapeError, match="pair returned a tuple of 2 outputs, expected one tensor"):
        probe_output_shape(Pair(), (3,), "pair")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3,32,32", (3, 32, 32)), ("3x32x32", (3, 32, 32)), ([3, 32], (3, 32)), ((7,), (7,))],
)
def test_one_parser_of_shapes(value: object, expected: tuple[int, ...]) -> None:
    assert parse_shape(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("3,,4", r"^input_shape: expected comma-separated positive integers such as 1,28,28"),
        ("3,-4", r"^input_shape: expected comma-separated positive integers"),
        ([], r"^input_shape: expected a list of positive sizes"),
        (5, r"^input_shape: expected a list of positive sizes"),
        ([3, 0], r"^input_shape\[1\]: sizes must be positive integers, got 0"),
        ([3, 2.0], r"^input_shape\[1\]: sizes must be positive integers, got 2\.0"),
        ([True], r"^input_shape\[0\]: sizes must be positive integers, got True"),
    ],
)
def test_bad_shapes(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_shape(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("float32", torch.float32),
        ("float", torch.float32),
        ("long", torch.int64),
        ("int", torch.int32),
        ("half", torch.float16),
        ("bfloat16", torch.bfloat16),
        ("torch.bool", torch.bool),
        (torch.uint8, torch.uint8),
    ],
)
def test_one_parser_of_dtypes(value: object, expected: torch.dtype) -> None:
    assert parse_dtype(value) == expected
    assert dtype_name(value) == str(expected).removeprefix("torch.")


def test_an_unknown_dtype_gets_the_closest_name() -> None:
    with pytest.raises(ConfigError, match=r"unknown input_dtype 'flaot16'; did you mean 'float16'"):
        parse_dtype("flaot16")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: parse_shape([10**18, 10]),
            r"^input_shape: 1000000000000000000 × 10 = 1e\+19 values",
        ),
        (lambda: parse_shape("99999999999,99999999999"), r"more than a tensor can hold"),
        (
            lambda: brickwork.build({"input": [10**18, 4], "model": ["flatten"]}),
            r"^model\[0\]\.flatten: a probe batch: 2 × 1000000000000000000 × 4",
        ),
        (
            lambda: brickwork.summary(nn.Linear(4, 2), input_shape=(4,), batch_size=10**19),
            r"^batch_size × input_shape: 10000000000000000000 × 4 = 4e\+19 values",
        ),
        (
            lambda: brickwork.doctor(nn.Linear(4, 2), input_shape=(2**40,), batch_size=2**30),
            r"^batch_size × input_shape: .* more than a tensor can hold",
        ),
    ],
)
def test_sizes_too_big_to_index_are_refused_before_anything_is_made(
    call: Callable[[], object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize(
    ("module", "input_shape", "message"),
    [  # modules whose shapes the probe knows without a run are still refused what they cannot take
        (nn.BatchNorm2d(4), (3, 5, 5), r"^m cannot take input of shape \(3, 5, 5\): "),
        (nn.BatchNorm1d(4), (4, 2, 2), r"^m cannot take input of shape \(4, 2, 2\): "),
        (nn.GroupNorm(2, 4), (6, 5), r"^m cannot take input of shape \(6, 5\): "),
        (nn.Linear(5, 2), (3, 4), r"^m cannot take input of shape \(3, 4\): "),
        (
            nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(4, 2)),
            (4,),
            r"^m cannot take input of shape \(4,\): ",  # the whole module's shape, not a child's
        ),
    ],
)
def test_the_probe_refuses_what_a_module_cannot_take(
    module: nn.Module, input_shape: tuple[int, ...], message: str
) -> None:
    with pytest.raises(ShapeError, match=message):
        probe_output_shape(module, input_shape, "m")


@pytest.mark.parametrize(
    ("module", "input_shape", "expected"),
    [
        (nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.GELU()), (4,), (3,)),
        (nn.Sequential(nn.Conv2d(3, 8, 3), nn.GroupNorm(4, 8), nn.Flatten()), (3, 5, 5), (72,)),
        (nn.Linear(4, 3), (7, 4), (7, 3)),
        (nn.Sequential(), (2, 3), (2, 3)),
    ],
)
def test_the_probe_knows_simple_modules_shapes(
    module: nn.Module, input_shape: tuple[int, ...], expected: tuple[int, ...]
) -> None:
    assert probe_output_shape(module, input_shape, "m") == expected


def test_probe_outputs_takes_several_inputs_and_gives_several_outputs() -> None:
    class Both(nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return a @ b, b.sum(-1)

    shapes = probe_outputs(Both(), [((3, 4), torch.float32), ((4, 5), torch.float32)], "both")
    assert shapes == [((3, 5), torch.float32), ((4,), torch.float32)]
    with pytest.raises(ShapeError, match=r"^both cannot take input of shape \(3, 4\) and \(3, 5\)"):
        probe_outputs(Both(), [((3, 4), torch.float32), ((3, 5), torch.float32)], "both")
