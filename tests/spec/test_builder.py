"""brickwork.spec.builder: build, sizes flowing through bricks, families and containers."""

from pathlib import Path
from typing import Any

import pytest
import torch
from guide_specs import GUIDE_FAMILY, GUIDE_YAML
from outputs import shapes_of
from torch import nn

import brickwork
from brickwork import CNNClassifier, SpecError, build, count_params, to_spec
from brickwork.spec import example_inputs


def test_the_guides_classifier_as_a_brick_list() -> None:
    model = build(GUIDE_YAML)
    assert isinstance(model, nn.Sequential)
    assert count_params(model) == 51_930_186
    assert model[3][0].in_features == 50176  # type: ignore[index]
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_the_guides_classifier_as_a_family() -> None:
    model = build(GUIDE_FAMILY)
    assert isinstance(model, CNNClassifier)
    assert model.in_c == 1
    assert model.input_shape == (28, 28)
    assert count_params(model) == 51_930_186


def test_a_family_by_name_alone_takes_its_defaults() -> None:
    model = build({"input": [1, 28, 28], "model": "cnn_classifier"})
    assert isinstance(model, CNNClassifier)
    assert count_params(model) == 51_930_186


def test_a_family_takes_its_input_from_the_spec() -> None:
    model = build({**GUIDE_FAMILY, "input": [3, 32, 32]})
    assert isinstance(model, CNNClassifier)
    assert model.decoder.in_features == 64 * 32 * 32
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


# (items, per-sample input, expected per-sample output)
STOCK_CASES: list[tuple[list[Any], list[int], tuple[int, ...]]] = [
    (["identity"], [3, 5, 5], (3, 5, 5)),
    ([{"linear": {"out": 7}}], [12], (7,)),
    ([{"linear": {"out": 7}}], [4, 12], (4, 7)),
    ([{"conv1d": {"out": 8, "kernel_size": 3}}], [2, 10], (8, 8)),
    (
        [{"conv2d": {"out": 8, "kernel_size": 3, "stride": 2, "padding": 1}}],
        [3, 28, 28],
        (8, 14, 14),
    ),
    (["batchnorm"], [6], (6,)),
    (["batchnorm"], [6, 9], (6, 9)),
    (["batchnorm"], [6, 4, 4], (6, 4, 4)),
    (["batchnorm1d"], [6], (6,)),
    (["batchnorm1d"], [6, 9], (6, 9)),
    (["batchnorm2d"], [6, 4, 4], (6, 4, 4)),
    (["layernorm"], [4, 10], (4, 10)),
    ([{"groupnorm": {"groups": 2}}], [6, 4, 4], (6, 4, 4)),
    ([{"dropout": {"p": 0.3}}], [5], (5,)),
    (["dropout2d"], [3, 4, 4], (3, 4, 4)),
    (["flatten"], [3, 4, 5], (60,)),
    ([{"maxpool2d": {"kernel_size": 2}}], [3, 9, 9], (3, 4, 4)),
    ([{"avgpool2d": {"kernel_size": 3, "stride": 1}}], [3, 9, 9], (3, 7, 7)),
    ([{"adaptiveavgpool2d": {"output_size": 1}}, "flatten"], [16, 7, 7], (16,)),
    ([{"lrelu": {"negative_slope": 0.2}}, "gelu", "Sigmoid"], [5], (5,)),
    ([{"conv_block": {"out": 4, "kernel_size": 3, "norm": "groupnorm"}}], [2, 6, 6], (4, 4, 4)),
    ([{"dec_block": {"out": 3, "activation": "tanh"}}], [8], (3,)),
]


@pytest.mark.parametrize(("items", "input_shape", "expected"), STOCK_CASES)
def test_stock_modules_with_inferred_sizes(
    items: list[Any], input_shape: list[int], expected: tuple[int, ...]
) -> None:
    model = build({"input": input_shape, "model": items})
    assert to_spec(model)["output"] == list(expected)
    assert model(torch.randn(3, *input_shape)).shape == (3, *expected)


def test_embedding_takes_integer_ids() -> None:
    model = build(
        {
            "input": [6],
            "input_dtype": "long",
            "model": [
                {"embedding": {"num_embeddings": 50, "out": 8}},
                "flatten",
                {"linear": {"out": 2}},
            ],
        }
    )
    assert model(torch.randint(0, 50, (4, 6))).shape == (4, 2)
    assert to_spec(model)["input_dtype"] == "int64"


def test_residual_with_identity_shortcut() -> None:
    model = build(
        {
            "input": [4, 8, 8],
            "model": [{"residual": [{"conv2d": {"out": 4, "kernel_size": 3, "padding": 1}}]}],
        }
    )
    block = model[0]
    assert isinstance(block, brickwork.Residual)
    assert isinstance(block.shortcut, nn.Identity)
    x = torch.randn(2, 4, 8, 8)
    torch.testing.assert_close(model(x), block.body(x) + x)


@pytest.mark.parametrize(
    ("branch", "input_shape", "shortcut", "stride"),
    [
        ([{"conv2d": {"out": 8, "kernel_size": 3, "padding": 1}}], [4, 8, 8], nn.Conv2d, (1, 1)),
        (
            [{"conv2d": {"out": 8, "kernel_size": 3, "padding": 1, "stride": 2}}],
            [4, 8, 8],
            nn.Conv2d,
            (2, 2),
        ),
        (
            [{"conv2d": {"out": 8, "kernel_size": 3, "padding": 1, "stride": 2}}],
            [4, 7, 9],
            nn.Conv2d,
            (2, 2),
        ),
        ([{"conv1d": {"out": 5, "kernel_size": 1}}], [3, 10], nn.Conv1d, (1,)),
        ([{"linear": {"out": 6}}, "relu"], [10], nn.Linear, None),
    ],
)
def test_residual_projects_when_channels_or_stride_differ(
    branch: list[Any],
    input_shape: list[int],
    shortcut: type[nn.Module],
    stride: tuple[int, ...] | None,
) -> None:
    model = build({"input": input_shape, "model": [{"residual": branch}]})
    block = model[0]
    assert type(block.shortcut) is shortcut
    if stride is not None:
        assert block.shortcut.kernel_size == (1,) * len(stride)
        assert block.shortcut.stride == stride
    x = torch.randn(2, *input_shape)
    torch.testing.assert_close(model(x), block.body(x) + block.shortcut(x))


def test_repeat_builds_copies_whose_sizes_flow() -> None:
    model = build(
        {
            "input": [3, 8, 8],
            "model": [
                {
                    "repeat": {
                        "times": 3,
                        "body": [{"conv_block": {"out": 16, "kernel_size": 3, "padding": 1}}],
                    }
                }
            ],
        }
    )
    copies = model[0]
    assert len(copies) == 3
    assert copies[0][0][0].in_channels == 3
    assert copies[1][0][0].in_channels == 16
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 16, 8, 8)


def test_names_make_readable_module_paths() -> None:
    spec = {
        "input": [1, 8, 8],
        "model": [
            {
                "sequential": [
                    {"conv_block": {"out": 4, "kernel_size": 3}, "name": "conv1"},
                    {"conv_block": {"out": 8, "kernel_size": 3}, "name": "conv2"},
                ],
                "name": "encoder",
            },
            {"flatten": None, "name": "flat"},
            {"linear": {"out": 10}, "name": "head"},
        ],
    }
    model = build(spec)
    names = {name for name, _ in model.named_modules()}
    assert {"encoder", "encoder.conv1", "encoder.conv2.0", "flat", "head"} <= names
    assert next(iter(model.state_dict())) == "encoder.conv1.0.weight"


def test_build_on_meta_takes_no_memory_and_cpu_is_ready_for_an_optimizer() -> None:
    meta = build(GUIDE_FAMILY, device="meta")
    assert all(p.is_meta for p in meta.parameters())
    cpu = build(GUIDE_YAML)
    assert all(p.device.type == "cpu" and p.requires_grad for p in cpu.parameters())
    optimizer = torch.optim.SGD(cpu.parameters(), lr=0.1)
    assert sum(p.numel() for g in optimizer.param_groups for p in g["params"]) == 51_930_186
    weight = cpu[3][0].weight  # type: ignore[index]
    bound = 1 / 50176**0.5  # PyTorch's default Linear init: U(-1/sqrt(in), 1/sqrt(in))
    assert 0 < weight.abs().max() <= bound
    assert weight.std() > bound / 3


def test_input_shape_argument_overrides_the_spec() -> None:
    model = build(GUIDE_YAML, input_shape=(1, 8, 8))
    assert to_spec(model)["input"] == [1, 8, 8]
    assert model[3][0].in_features == 64 * 8 * 8  # type: ignore[index]


@pytest.mark.parametrize("shape", ["1,8,8", "1x8x8", [1, 8, 8], (1, 8, 8)])
def test_input_shapes_are_read_as_everywhere(shape: Any) -> None:
    assert to_spec(build({"input": shape, "model": ["flatten"]}))["output"] == [64]
    assert to_spec(build(GUIDE_YAML, input_shape=shape))["input"] == [1, 8, 8]


def test_examples_build_and_run_to_their_inferred_shapes() -> None:
    examples = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
    assert len(examples) >= 8
    for path in examples:
        model = build(path, device="meta")  # the big ones (U-Net, ResNet-50) cost no memory
        spec = to_spec(model)
        assert shapes_of(model(*example_inputs(spec, 2))) == spec["output"], path.name


# (spec, message) — every error names the spec path and what would fit
ERROR_CASES: list[tuple[Any, str]] = [
    (
        {"input": [1, 28, 28], "model": [{"conv_blok": {"out": 3}}]},
        r"^model\[0\]: unknown brick 'conv_blok'; did you mean 'conv_block'\? valid: adaptiveavgpool2d, ",
    ),
    (
        {"input": [1, 28, 28], "model": [{"conv_block": {"out": 3, "kernal_size": 3}}]},
        r"^model\[0\]\.conv_block: unknown argument 'kernal_size'; did you mean 'kernel_size'\? valid: out, activation, norm, kernel_size",
    ),
    (
        {"input": [1, 28, 28], "model": [{"linear": {"out": 3, "bais": False}}]},
        r"^model\[0\]\.linear: unknown argument 'bais'; did you mean 'bias'\? valid: out, bias, device, dtype$",
    ),
    (
        {"input": [1, 28, 28], "model": ["flatten", {"conv2d": {"out": 3, "kernel_size": 3}}]},
        r"^model\[1\]\.conv2d: needs input of shape \(C, H, W\) but receives \(784,\) \(it comes after a flatten",
    ),
    (
        {"input": [1, 28, 28], "model": ["flatten", "batchnorm2d"]},
        r"^model\[1\]\.batchnorm2d: needs input of shape \(C, H, W\) but receives \(784,\)",
    ),
    (
        {"input": [16], "model": [{"embedding": {"num_embeddings": 10, "out": 4}}]},
        r"^model\[0\]\.embedding: takes integer token ids but receives float32 values of shape \(16,\)",
    ),
    (
        {"input": [5], "input_dtype": "long", "model": ["flatten", {"linear": {"out": 3}}]},
        r"^model\[1\]\.linear: takes floating-point values but receives int64 ids of shape \(5,\)",
    ),
    (
        {"input": [5], "input_dtype": "long", "model": [{"residual": ["identity"]}]},
        r"^model\[0\]\.residual: adds its input to its output, so it takes floating-point values",
    ),
    (
        {"input": [1, 28, 28], "model": [{"conv_block": {"out": 0, "kernel_size": 3}}, "flatten"]},
        r"^model\[0\]\.conv_block\.out: must be a positive integer, got 0 \(incoming shape \(1, 28, 28\)\)",
    ),
    (
        {"input": [1, 28, 28], "model": ["flatten", "relu", {"linear": {"out": -4}}]},
        r"^model\[2\]\.linear\.out: must be a positive integer, got -4",
    ),
    (
        {
            "input": [1, 28, 28],
            "model": [
                {"conv_block": {"out": 32, "kernel_size": 3}},
                {"conv_block": {"out": 2.5, "kernel_size": 3}},
            ],
        },
        r"^model\[1\]\.conv_block\.out: must be a positive integer, got 2\.5 \(incoming shape \(32, 26, 26\)\)",
    ),
    (
        {"input": [1, 28, 28], "model": [{"residual": [{"conv2d": {"out": 3, "kernel_size": 5}}]}]},
        r"^model\[0\]\.residual: the branch maps \(1, 28, 28\) to \(3, 24, 24\), which no 1×1 projection",
    ),
    (
        {"input": [1, 28, 28], "model": [{"residual": ["flatten"]}]},
        r"^model\[0\]\.residual: the branch maps \(1, 28, 28\) to \(784,\)",
    ),
    ({"model": [{"linear": {"out": 3}}]}, r"^input: the spec has no input shape"),
    (
        {"input": [1, 0, 28], "model": ["flatten"]},
        r"^input\[1\]: sizes must be positive integers, got 0",
    ),
    ({"input": 28, "model": ["flatten"]}, r"^input: expected a list of positive sizes"),
    ({"input": "1,28,x", "model": ["flatten"]}, r"^input: expected comma-separated positive"),
    (
        {"input": [4], "model": [{"linear": {"out": 3, "in_features": 5}}]},
        r"^model\[0\]\.linear\.in_features: 5 disagrees with the incoming shape \(4,\), which gives 4",
    ),
    (
        {
            "input": [3, 8, 8],
            "model": {
                "cnn_classifier": {"in_c": 1, "enc_sizes": [4], "dec_sizes": [], "n_classes": 2}
            },
        },
        r"^model\.cnn_classifier\.in_c: 1 disagrees with the incoming shape \(3, 8, 8\), which gives 3",
    ),
    (
        {"input": [3, 8, 8], "model": {"cnn_classifier": {"n_classes": 0}}},
        r"^model\.cnn_classifier: n_classes must be a positive integer, got 0 \(incoming shape \(3, 8, 8\)\)",
    ),
    (
        {"input": [1, 28, 28], "model": [{"linear": {}}]},
        r"^model\[0\]\.linear: missing argument 'out'$",
    ),
    (
        {"input": [1, 28, 28], "model": [{"maxpool2d": {"kernel_size": 64}}]},
        r"^model\[0\]\.maxpool2d cannot take input of shape \(1, 28, 28\)",
    ),
    (
        {"input": [6, 4, 4], "model": [{"groupnorm": {"groups": 4}}]},
        r"^model\[0\]\.groupnorm: norm 'groupnorm': 6 channels cannot be split into groups=4; use a divisor of 6: 1, 2, 3, 6 \(incoming shape \(6, 4, 4\)\)",
    ),
    (
        {"input": [4], "model": [{"repeat": {"times": 0, "body": ["relu"]}}]},
        r"^model\[0\]\.repeat\.times: must be a positive integer, got 0",
    ),
    (
        {"input": [4], "model": [{"repeat": {"times": 2}}]},
        r"^model\[0\]\.repeat: expected \{times: N, body: \[bricks\]\}",
    ),
    (
        {
            "input": [4, 6, 6],
            "model": [{"repeat": {"times": 4, "body": [{"conv2d": {"out": 4, "kernel_size": 3}}]}}],
        },
        r"^model\[0\]\.repeat\.body\[0\]\.conv2d cannot take input of shape \(4, 2, 2\).*\(in copy 3 of 4\)$",
    ),
    (
        {"input": [4], "model": [{"linear": {"out": 3}, "relu": None}]},
        r"^model\[0\]: an item is one brick \(optionally with name: and from:\), got keys \['linear', 'relu'\]",
    ),
    (
        {"input": [4], "model": [{"linear": {"out": 3}, "name": "a.b"}]},
        r"^model\[0\]\.name: must be a non-empty string without '\.'",
    ),
    (
        {"input": [4], "model": [{"relu": None, "name": "x"}, {"relu": None, "name": "x"}]},
        r"^model\[1\]: name 'x' is used twice in model",
    ),
    ({"input": [4], "model": []}, r"^model: expected a non-empty list of bricks"),
    (
        {"input": [4], "model": 3},
        r"^model: expected a list of bricks, a family name or \{family: \{arguments\}\}",
    ),
    (
        {"input": [4], "model": [3]},
        r"^model\[0\]: expected a brick name or \{brick: \{arguments\}\}, got 3",
    ),
    ({"input": [4], "model": [{"linear": 3}]}, r"^model\[0\]\.linear: arguments must be a mapping"),
    ({"input": [4], "modle": ["relu"]}, r"^unknown spec key 'modle'; did you mean 'model'\?"),
    ({"input": [4]}, r"^spec has no 'model'"),
    (
        {"input": [4], "model": ["relu"], "output": [5]},
        r"^output: the spec says \[5\] but the model gives \[4\]",
    ),
    (
        {"input": [4], "input_dtype": "complex", "model": ["relu"]},
        r"^unknown input_dtype 'complex'",
    ),
    ("[1, 2]", r"^spec text: a spec must be a mapping with 'model' \(and 'input'\), got list"),
    ("model: [a, b\n  c: d", r"^spec text: line 2, column 4: "),
    (
        "input: !!python/object/apply:os.system ['echo hacked']\nmodel: [relu]",
        r"^spec text: line 1, column 8: could not determine a constructor for the tag",
    ),
    ("missing.yaml", r"^spec file not found: missing\.yaml$"),
]


@pytest.mark.parametrize(("spec", "message"), ERROR_CASES)
def test_spec_errors(spec: Any, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        build(spec)


def test_spec_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown brick"):
        build({"input": [4], "model": ["nope"]})
