import pytest
from torch import nn

from brickwork.errors import ArgumentError, ConfigError
from brickwork.registry import BRICKS, MODELS, Registry, normalize_name, parse_component_spec


@pytest.fixture
def acts() -> Registry[type[nn.Module]]:
    reg: Registry[type[nn.Module]] = Registry("activation")
    reg.register("relu", nn.ReLU)
    reg.register("lrelu", nn.LeakyReLU, aliases=("leaky_relu", "leakyrelu"))
    reg.register("gelu", nn.GELU)
    return reg


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("LeakyReLU", "leakyrelu"),
        ("leaky_relu", "leakyrelu"),
        ("leaky-relu", "leakyrelu"),
        ("ReLU6", "relu6"),
    ],
)
def test_normalize_name(name: str, key: str) -> None:
    assert normalize_name(name) == key


@pytest.mark.parametrize("spelling", ["lrelu", "LReLU", "leaky_relu", "LeakyReLU", "leaky-relu"])
def test_every_spelling_and_alias_finds_the_entry(
    acts: Registry[type[nn.Module]], spelling: str
) -> None:
    assert acts.get(spelling) is nn.LeakyReLU
    assert spelling in acts
    assert acts.canonical(spelling) == "lrelu"


def test_unknown_name_lists_valid_names_and_the_closest(acts: Registry[type[nn.Module]]) -> None:
    with pytest.raises(ConfigError) as info:
        acts.get("rleu")
    assert (
        str(info.value)
        == "unknown activation 'rleu'; did you mean 'relu'? valid: gelu, lrelu, relu"
    )


def test_unknown_name_suggests_through_aliases(acts: Registry[type[nn.Module]]) -> None:
    with pytest.raises(ConfigError, match="did you mean 'lrelu'"):
        acts.get("leaky_rlu")


def test_unknown_name_without_a_close_match(acts: Registry[type[nn.Module]]) -> None:
    with pytest.raises(
        ConfigError, match=r"^unknown activation 'softmax'; valid: gelu, lrelu, relu$"
    ):
        acts.get("softmax")


def test_unknown_name_is_a_value_error(acts: Registry[type[nn.Module]]) -> None:
    with pytest.raises(ValueError, match="unknown activation"):
        acts.build("nope")


@pytest.mark.parametrize("name", ["relu", "ReLU", "leaky_relu", "LEAKYRELU"])
def test_registering_a_taken_name_or_alias_is_an_error(
    acts: Registry[type[nn.Module]], name: str
) -> None:
    with pytest.raises(ConfigError, match="already registered"):
        acts.register(name, nn.Tanh)
    assert len(acts) == 3


def test_register_as_decorator() -> None:
    reg: Registry[object] = Registry("brick")

    @reg.register("my_brick", aliases=("mine",))
    def my_brick(width: int = 3) -> nn.Module:
        return nn.Linear(width, width)

    assert reg.get("MyBrick") is my_brick
    assert reg.aliases("my_brick") == ["mine"]
    assert reg.names() == ["my_brick"]
    assert list(reg) == ["my_brick"]


@pytest.mark.parametrize(
    "spec",
    [
        ("lrelu", {"negative_slope": 0.2}),
        ["lrelu", {"negative_slope": 0.2}],
        {"lrelu": {"negative_slope": 0.2}},
        {"LeakyReLU": {"negative_slope": 0.2}},
    ],
)
def test_component_spec_forms(acts: Registry[type[nn.Module]], spec: object) -> None:
    module = acts.build(spec)
    assert isinstance(module, nn.LeakyReLU)
    assert module.negative_slope == 0.2


@pytest.mark.parametrize("spec", ["gelu", {"gelu": None}, {"gelu": {}}, ("gelu", {})])
def test_component_spec_without_arguments(acts: Registry[type[nn.Module]], spec: object) -> None:
    assert isinstance(acts.build(spec), nn.GELU)


@pytest.mark.parametrize(
    "spec",
    [
        3,
        None,
        {},
        {"relu": {}, "gelu": {}},
        ("relu", 3),
        (1, {}),
        ("relu",),
        {"relu": [1]},
        {1: {}},
    ],
)
def test_malformed_component_spec(acts: Registry[type[nn.Module]], spec: object) -> None:
    with pytest.raises(ConfigError, match=r"bad activation spec|name must be a string"):
        acts.build(spec)


def test_parse_component_spec_copies_kwargs() -> None:
    kwargs = {"negative_slope": 0.2}
    _, parsed = parse_component_spec({"lrelu": kwargs})
    parsed["inplace"] = True
    assert kwargs == {"negative_slope": 0.2}


def test_unknown_argument_names_the_entry_and_valid_arguments(
    acts: Registry[type[nn.Module]],
) -> None:
    with pytest.raises(ArgumentError) as info:
        acts.build({"lrelu": {"negative_slop": 0.2}})
    message = str(info.value)
    assert message.startswith("activation 'lrelu': unknown argument 'negative_slop'")
    assert "did you mean 'negative_slope'?" in message
    assert "valid: negative_slope, inplace" in message
    assert isinstance(info.value, TypeError)


def test_spec_may_not_repeat_arguments_the_caller_sets() -> None:
    reg: Registry[type[nn.Module]] = Registry("norm")
    reg.register("bn", nn.BatchNorm2d)
    with pytest.raises(ArgumentError, match="num_features"):
        reg.build({"bn": {"num_features": 3}}, num_features=4)


def test_global_registries_hold_the_guide_bricks_and_family() -> None:
    assert {"conv_block", "dec_block"} <= set(BRICKS.names())
    assert BRICKS.canonical("linear_block") == "dec_block"
    assert "cnn_classifier" in MODELS


@pytest.mark.parametrize(
    ("name", "factory", "message"),
    [
        ("", nn.ReLU, "name must be a non-empty string"),
        (3, nn.ReLU, "name must be a non-empty string"),
        ("bad", 3, "the factory must be callable"),
    ],
)
def test_register_refuses_bad_entries(name: object, factory: object, message: str) -> None:
    reg: Registry[object] = Registry("activation")
    with pytest.raises(ConfigError, match=message):
        reg.register(name, factory)  # type: ignore[arg-type]


def test_unregister_frees_the_name_and_its_aliases(acts: Registry[type[nn.Module]]) -> None:
    acts.unregister("leaky_relu")
    assert "lrelu" not in acts
    assert "leakyrelu" not in acts
    acts.register("lrelu", nn.LeakyReLU, aliases=("leaky_relu",))  # free again
    with pytest.raises(ConfigError, match="unknown activation"):
        acts.unregister("nope")
