import pytest
import torch
from torch import nn

from brickwork.errors import ArgumentError, ConfigError
from brickwork.layers import ACTIVATIONS, NORMS, ChannelLayerNorm, make_act, make_norm


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("relu", nn.ReLU),
        ("lrelu", nn.LeakyReLU),
        ("leaky_relu", nn.LeakyReLU),
        ("leakyrelu", nn.LeakyReLU),
        ("gelu", nn.GELU),
        ("silu", nn.SiLU),
        ("swish", nn.SiLU),
        ("mish", nn.Mish),
        ("elu", nn.ELU),
        ("selu", nn.SELU),
        ("celu", nn.CELU),
        ("prelu", nn.PReLU),
        ("relu6", nn.ReLU6),
        ("softplus", nn.Softplus),
        ("tanh", nn.Tanh),
        ("sigmoid", nn.Sigmoid),
        ("hardswish", nn.Hardswish),
        ("identity", nn.Identity),
        ("none", nn.Identity),
        ("linear", nn.Identity),
    ],
)
def test_every_activation_by_name(name: str, cls: type[nn.Module]) -> None:
    act = make_act(name)
    assert type(act) is cls
    x = torch.randn(2, 3)
    assert act(x).shape == x.shape


def test_activation_registry_has_exactly_the_documented_names() -> None:
    assert ACTIVATIONS.names() == sorted(
        [
            *("relu", "lrelu", "gelu", "silu", "mish", "elu", "selu", "celu", "prelu", "relu6"),
            *("softplus", "tanh", "sigmoid", "hardswish", "identity"),
        ]
    )


def test_make_act_returns_a_fresh_module_each_call() -> None:
    assert make_act("prelu") is not make_act("prelu")
    given = nn.PReLU()
    copy = make_act(given)
    assert copy is not given
    assert isinstance(copy, nn.PReLU)
    assert copy.weight is not given.weight


@pytest.mark.parametrize(
    ("spec", "check"),
    [
        (None, lambda m: isinstance(m, nn.Identity)),
        (nn.GELU, lambda m: isinstance(m, nn.GELU)),
        (("lrelu", {"negative_slope": 0.2}), lambda m: m.negative_slope == 0.2),
        ({"elu": {"alpha": 0.5}}, lambda m: m.alpha == 0.5),
        ({"gelu": {"approximate": "tanh"}}, lambda m: m.approximate == "tanh"),
    ],
)
def test_make_act_spec_forms(spec: object, check: object) -> None:
    assert check(make_act(spec))  # type: ignore[operator]


def test_unknown_activation_suggests() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown activation 'rleu'; did you mean 'relu'\? valid: celu, elu"
    ):
        make_act("rleu")


def test_activation_with_unknown_argument() -> None:
    with pytest.raises(
        ArgumentError, match="activation 'elu': unknown argument 'alfa'; did you mean 'alpha'"
    ):
        make_act({"elu": {"alfa": 1.0}})


@pytest.mark.parametrize(
    ("spec", "dims", "cls", "x_shape"),
    [
        ("batchnorm", 2, nn.BatchNorm2d, (2, 8, 5, 5)),
        ("batchnorm", 1, nn.BatchNorm1d, (2, 8)),
        ("batchnorm", 1, nn.BatchNorm1d, (2, 8, 7)),
        ("batchnorm", 3, nn.BatchNorm3d, (2, 8, 3, 3, 3)),
        ({"batchnorm": {"dims": 1}}, 2, nn.BatchNorm1d, (2, 8)),
        ("BatchNorm2d", 2, nn.BatchNorm2d, (2, 8, 5, 5)),
        ("layernorm", 1, ChannelLayerNorm, (2, 8)),
        ("layernorm", 1, ChannelLayerNorm, (2, 8, 7)),
        ("layernorm", 2, ChannelLayerNorm, (2, 8, 5, 5)),
        ("groupnorm", 2, nn.GroupNorm, (2, 8, 5, 5)),
        ({"groupnorm": {"groups": 4}}, 2, nn.GroupNorm, (2, 8, 5, 5)),
        ("instancenorm", 2, nn.InstanceNorm2d, (2, 8, 5, 5)),
        ("instancenorm", 1, nn.InstanceNorm1d, (2, 8, 7)),
        ("none", 2, nn.Identity, (2, 8, 5, 5)),
        (None, 2, nn.Identity, (2, 8, 5, 5)),
    ],
)
def test_make_norm(spec: object, dims: int, cls: type[nn.Module], x_shape: tuple[int, ...]) -> None:
    norm = make_norm(spec, 8, dims=dims)
    assert type(norm) is cls
    x = torch.randn(x_shape)
    assert norm(x).shape == x.shape


def test_norm_registry_names() -> None:
    assert NORMS.names() == ["batchnorm", "groupnorm", "instancenorm", "layernorm", "none"]


@pytest.mark.parametrize(("channels", "groups"), [(64, 32), (48, 24), (7, 7), (40, 20), (3, 3)])
def test_groupnorm_default_groups_divide_channels(channels: int, groups: int) -> None:
    norm = make_norm("groupnorm", channels)
    assert isinstance(norm, nn.GroupNorm)
    assert norm.num_groups == groups


def test_groupnorm_groups_that_do_not_divide() -> None:
    with pytest.raises(
        ConfigError,
        match="12 channels cannot be split into groups=5; use a divisor of 12: 1, 2, 3, 4, 6, 12",
    ):
        make_norm({"groupnorm": {"groups": 5}}, 12)


def test_norm_bad_dims() -> None:
    with pytest.raises(ConfigError, match="norm 'batchnorm': dims must be 1, 2 or 3, got 4"):
        make_norm("batchnorm", 8, dims=4)


def test_unknown_norm_suggests() -> None:
    with pytest.raises(ConfigError, match="unknown norm 'batchnrom'; did you mean 'batchnorm'"):
        make_norm("batchnrom", 8)


def test_channel_layernorm_normalises_over_channels() -> None:
    x = torch.randn(2, 6, 4, 5)
    norm = ChannelLayerNorm(6)
    expected = nn.functional.layer_norm(x.permute(0, 2, 3, 1), (6,)).permute(0, 3, 1, 2)
    torch.testing.assert_close(norm(x), expected)


@pytest.mark.parametrize(
    ("spec", "channels", "dims", "message"),
    [
        ("groupnorm", 0, 2, "norm channels must be a positive integer, got 0"),
        ("batchnorm", -4, 2, "norm channels must be a positive integer, got -4"),
        ("batchnorm", 8.0, 2, "norm channels must be a positive integer, got 8.0"),
        ("batchnorm", 8, 2.0, "dims must be 1, 2 or 3, got 2.0"),
        ("batchnorm", 8, True, "dims must be 1, 2 or 3, got True"),
        (
            {"groupnorm": {"groups": 4.0}},
            8,
            2,
            "norm 'groupnorm': groups must be a positive integer, got 4.0",
        ),
    ],
)
def test_norm_bad_sizes(spec: object, channels: object, dims: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_norm(spec, channels, dims=dims)  # type: ignore[arg-type]


def test_layernorm_normalises_channels_of_sequences() -> None:
    x = torch.randn(4, 8, 5)
    expected = nn.functional.layer_norm(x.transpose(1, 2), (8,)).transpose(1, 2)
    torch.testing.assert_close(make_norm("layernorm", 8, dims=1)(x), expected)
