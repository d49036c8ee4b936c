import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import brickwork
from brickwork import ResNet, create_model, summary
from brickwork.errors import ConfigError
from brickwork.models.resnet import BasicBlock, Bottleneck

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import torchvision_resnet  # the plain-PyTorch, torchvision-style reference

# name → (parameters, GMACs) at 224×224 with 1000 classes, as torchvision's models have them
TABLE = {
    "resnet18": (11_689_512, 1.81),
    "resnet34": (21_797_672, 3.66),
    "resnet50": (25_557_032, 4.09),
    "resnet101": (44_549_160, 7.80),
    "resnet152": (60_192_808, 11.51),
}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_parameter_and_mac_table(name: str) -> None:
    with torch.device("meta"):
        model = create_model(name)
    result = summary(model, (3, 224, 224))
    params, gmacs = TABLE[name]
    assert result.total_params == params
    assert round(result.macs / 1e9, 2) == gmacs


@pytest.mark.parametrize("name", sorted(TABLE))
def test_torchvision_weights_load_strictly_and_give_the_same_outputs(name: str) -> None:
    with torch.device("meta"):
        ours_meta = create_model(name)
        reference_meta = getattr(torchvision_resnet, name)()
    assert [(k, v.shape) for k, v in ours_meta.state_dict().items()] == [
        (k, v.shape) for k, v in reference_meta.state_dict().items()
    ]
    if name != "resnet18":
        return  # the keys and shapes say it for the deep ones; one real check of the values
    torch.manual_seed(0)
    reference = torchvision_resnet.resnet18().eval()
    ours = create_model("resnet18").eval()
    assert (
        str(ours.load_state_dict(reference.state_dict(), strict=True))
        == "<All keys matched successfully>"
    )
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=0)


def test_encoder_and_decoder_are_views_that_compose_to_the_model() -> None:
    model = create_model("resnet18_small", n_classes=7).eval()
    keys = list(model.state_dict())
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(model.decoder(model.encoder(x)), model(x))
    assert list(model.state_dict()) == keys  # the views added nothing
    assert model.encoder.layer4 is model.layer4


@pytest.mark.parametrize(
    ("name", "size", "stages"),
    [
        ("resnet18", 224, [(64, 56), (128, 28), (256, 14), (512, 7)]),
        ("resnet50", 224, [(256, 56), (512, 28), (1024, 14), (2048, 7)]),
        ("resnet18_small", 32, [(64, 32), (128, 16), (256, 8), (512, 4)]),
        ("resnet18_small", 28, [(64, 28), (128, 14), (256, 7), (512, 4)]),
    ],
)
def test_forward_features_gives_each_stage(
    name: str, size: int, stages: list[tuple[int, int]]
) -> None:
    with torch.device("meta"):
        model = create_model(name)
        features = model.forward_features(torch.empty(2, 3, size, size))
    assert [(f.shape[1], f.shape[2]) for f in features] == stages


def test_small_variants_take_small_grey_images() -> None:
    model = create_model("resnet18_small", in_chans=1)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert isinstance(model.maxpool, nn.Identity)
    assert model.conv1.kernel_size == (3, 3)


def test_zero_init_last_starts_blocks_as_identities() -> None:
    model = ResNet(Bottleneck, (1, 1), widths=(8, 16), n_classes=3, zero_init_last=True)
    for block in (model.layer1[0], model.layer2[0]):
        assert torch.equal(block.bn3.weight, torch.zeros(block.bn3.num_features))
    default = ResNet("basic", (1,), widths=(8,), n_classes=3)
    assert torch.equal(default.layer1[0].bn2.weight, torch.ones(8))


def test_configurable_activation_norm_and_widths() -> None:
    model = ResNet(
        "basic",
        (1, 1, 1),
        widths=(8, 16, 32),
        in_chans=2,
        n_classes=5,
        activation="gelu",
        norm="groupnorm",
        stem="small",
    )
    assert isinstance(model.layer1[0].relu, nn.GELU)
    assert isinstance(model.bn1, nn.GroupNorm)
    assert model(torch.randn(2, 2, 16, 16)).shape == (2, 5)
    assert model.num_features == 32


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"block": "bottle"},
            "unknown ResNet block 'bottle'; did you mean 'bottleneck'[?] valid: basic, bottleneck",
        ),
        ({"depths": (2, 2), "widths": (64,)}, "one entry per stage"),
        ({"depths": (1, 1, 1, 1, 1), "widths": (8,) * 5}, "one entry per stage"),
        ({"stem": "cifar"}, "unknown stem 'cifar'; valid: imagenet, small"),
        ({"n_classes": 0}, "n_classes must be a positive integer"),
        ({"depths": (2, 0, 2, 2)}, r"depths\[1\] must be a positive integer"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"block": BasicBlock, "depths": (2, 2, 2, 2), **kwargs}
    with pytest.raises(ConfigError, match=message):
        ResNet(**arguments)  # type: ignore[arg-type]


def test_variants_refuse_unknown_arguments_with_a_suggestion() -> None:
    with pytest.raises(TypeError, match="did you mean 'zero_init_last'"):
        create_model("resnet18", zero_init_lats=True)


def test_resnet_in_a_spec_takes_its_channels_from_the_input() -> None:
    model = brickwork.build({"input": [1, 28, 28], "model": {"resnet18_small": {"n_classes": 4}}})
    assert model.conv1.in_channels == 1
    assert brickwork.to_spec(model)["output"] == [4]
