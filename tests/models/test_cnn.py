import pytest
import torch
from torch import nn

from brickwork import CNNClassifier, Decoder, Encoder, count_params
from brickwork.errors import ArgumentError, ConfigError, ShapeError

GUIDE = {"in_c": 1, "enc_sizes": [32, 64], "dec_sizes": [1024, 512], "n_classes": 10}


def test_the_guides_arguments_give_the_guides_model() -> None:
    model = CNNClassifier(**GUIDE, activation="lrelu")  # type: ignore[arg-type]
    printed = repr(model)
    assert "Linear(in_features=50176, out_features=1024, bias=True)" in printed
    assert printed.count("LeakyReLU(negative_slope=0.01)") == 2
    assert printed.count("Sigmoid()") == 2
    assert "(last): Linear(in_features=512, out_features=10, bias=True)" in printed
    assert count_params(model) == 51_930_186
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)


def test_module_nesting_matches_the_guide() -> None:
    model = CNNClassifier(**GUIDE)  # type: ignore[arg-type]
    layout = [(name, type(m).__name__) for name, m in model.named_modules() if name.count(".") <= 3]
    assert layout == [
        ("", "CNNClassifier"),
        ("encoder", "Encoder"),
        ("encoder.conv_blocks", "Sequential"),
        ("encoder.conv_blocks.0", "Sequential"),
        ("encoder.conv_blocks.0.0", "Conv2d"),
        ("encoder.conv_blocks.0.1", "BatchNorm2d"),
        ("encoder.conv_blocks.0.2", "ReLU"),
        ("encoder.conv_blocks.1", "Sequential"),
        ("encoder.conv_blocks.1.0", "Conv2d"),
        ("encoder.conv_blocks.1.1", "BatchNorm2d"),
        ("encoder.conv_blocks.1.2", "ReLU"),
        ("decoder", "Decoder"),
        ("decoder.dec_blocks", "Sequential"),
        ("decoder.dec_blocks.0", "Sequential"),
        ("decoder.dec_blocks.0.0", "Linear"),
        ("decoder.dec_blocks.0.1", "Sigmoid"),
        ("decoder.dec_blocks.1", "Sequential"),
        ("decoder.dec_blocks.1.0", "Linear"),
        ("decoder.dec_blocks.1.1", "Sigmoid"),
        ("decoder.last", "Linear"),
    ]


@pytest.mark.parametrize(
    ("input_shape", "pool", "in_c", "features"),
    [
        ((28, 28), None, 1, 64 * 28 * 28),
        ((32, 32), None, 3, 64 * 32 * 32),
        ((8, 8), None, 1, 64 * 8 * 8),
        ((7, 9), None, 2, 64 * 7 * 9),
        (16, None, 1, 64 * 16 * 16),
        ((28, 28), "max", 1, 64 * 7 * 7),
        ((32, 32), "avg", 3, 64 * 8 * 8),
        ((9, 13), "max", 1, 64 * 2 * 3),  # floor division at each pool
        ((4, 4), "max", 1, 64 * 1 * 1),
    ],
)
def test_decoder_input_is_inferred_for_any_input_size(
    input_shape: tuple[int, int] | int, pool: str | None, in_c: int, features: int
) -> None:
    model = CNNClassifier(in_c, [32, 64], [128], 10, input_shape=input_shape, pool=pool)
    assert model.decoder.in_features == features
    hw = (input_shape, input_shape) if isinstance(input_shape, int) else input_shape
    out = model(torch.randn(2, in_c, *hw))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


def test_pooling_is_appended_to_each_block() -> None:
    model = CNNClassifier(1, [8, 16], [], 10, pool="max")
    for block in model.encoder.conv_blocks:
        assert isinstance(block[-1], nn.MaxPool2d)
        assert block[-1].kernel_size == 2


def test_empty_dec_sizes_is_a_linear_head() -> None:
    model = CNNClassifier(1, [8], [], 5, input_shape=(4, 4))
    assert len(model.decoder.dec_blocks) == 0
    assert model.decoder.last.in_features == 8 * 4 * 4


def test_building_leaves_batchnorm_statistics_untouched() -> None:
    model = CNNClassifier(**GUIDE)  # type: ignore[arg-type]
    bn = model.encoder.conv_blocks[0][1]
    assert int(bn.num_batches_tracked) == 0
    assert torch.equal(bn.running_mean, torch.zeros(32))
    assert all(t.device.type == "cpu" for t in model.state_dict().values())


def test_every_parameter_gets_a_gradient() -> None:
    model = CNNClassifier(1, [8, 16], [32], 4, input_shape=(8, 8), activation="gelu", pool="avg")
    model(torch.randn(2, 1, 8, 8)).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


def test_decoder_forward_uses_its_input_and_last() -> None:
    decoder = Decoder([6, 5, 4], n_classes=3)
    x = torch.randn(2, 6)
    torch.testing.assert_close(decoder(x), decoder.last(decoder.dec_blocks(x)))
    assert decoder(x).shape == (2, 3)


def test_encoder_defaults_to_kernel_3_padding_1_and_takes_conv_arguments() -> None:
    encoder = Encoder([3, 8, 16])
    assert encoder(torch.randn(2, 3, 10, 10)).shape == (2, 16, 10, 10)
    strided = Encoder([3, 8], stride=2)
    assert strided(torch.randn(2, 3, 10, 10)).shape == (2, 8, 5, 5)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"enc_sizes": []}, ConfigError, r"enc_sizes needs at least 1 size, got \[\]"),
        ({"enc_sizes": [32, 0]}, ConfigError, r"enc_sizes\[1\] must be a positive integer, got 0"),
        ({"enc_sizes": [-32]}, ConfigError, r"enc_sizes\[0\] must be a positive integer, got -32"),
        (
            {"enc_sizes": [32.0, 64]},
            ConfigError,
            r"enc_sizes\[0\] must be a positive integer, got 32.0",
        ),
        (
            {"enc_sizes": ["32"]},
            ConfigError,
            r"enc_sizes\[0\] must be a positive integer, got '32'",
        ),
        ({"enc_sizes": 32}, ConfigError, "enc_sizes must be a list of positive integers, got 32"),
        (
            {"dec_sizes": [1024, -512]},
            ConfigError,
            r"dec_sizes\[1\] must be a positive integer, got -512",
        ),
        ({"dec_sizes": [1024.5]}, ConfigError, r"dec_sizes\[0\] must be a positive integer"),
        ({"n_classes": 0}, ConfigError, "n_classes must be a positive integer, got 0"),
        ({"n_classes": 2.5}, ConfigError, "n_classes must be a positive integer, got 2.5"),
        ({"in_c": 0}, ConfigError, "in_c must be a positive integer, got 0"),
        ({"activation": "rleu"}, ConfigError, r"unknown activation 'rleu'; did you mean 'relu'\?"),
        ({"dec_activation": "sigmod"}, ConfigError, "did you mean 'sigmoid'"),
        ({"norm": "batchnrom"}, ConfigError, "did you mean 'batchnorm'"),
        ({"pool": "mx"}, ConfigError, "unknown pool 'mx'; did you mean 'max'"),
        ({"input_shape": (28,)}, ConfigError, r"input_shape must be \(H, W\) or one int"),
        ({"input_shape": (28, 0)}, ConfigError, "input_shape W must be a positive integer, got 0"),
        (
            {"input_shape": (4, 4), "pool": "max", "enc_sizes": [8, 16, 32]},
            ShapeError,
            r"input_shape \(4, 4\) is too small for CNNClassifier: its 3 conv blocks each pool "
            "by 2, so H and W must be at least 8",
        ),
        ({"bogus": 1}, TypeError, "bogus"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        CNNClassifier(**{**GUIDE, **kwargs})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        (
            (2, 3, 28, 28),
            r"expects input \(B, in_c=1, H, W\), got \(2, 3, 28, 28\): 3 channels but in_c=1",
        ),
        ((2, 28, 28), r"expects input \(B, in_c=1, H, W\), got \(2, 28, 28\)$"),
        (
            (2, 1, 32, 32),
            r"built for input_shape=\(28, 28\) \(its decoder takes 50176 features\), but got "
            r"H, W = \(32, 32\); build it with input_shape=\(32, 32\)",
        ),
        # same number of features after flattening, still the wrong size
        ((2, 1, 14, 56), r"but got H, W = \(14, 56\); build it with input_shape=\(14, 56\)"),
    ],
)
def test_wrong_input_at_forward_time(shape: tuple[int, ...], message: str) -> None:
    model = CNNClassifier(**GUIDE)  # type: ignore[arg-type]
    with pytest.raises(ShapeError, match=message):
        model(torch.randn(shape))


def test_unknown_conv_argument_on_encoder() -> None:
    with pytest.raises(ArgumentError, match="did you mean 'kernel_size'"):
        Encoder([1, 8], kernal_size=5)


def test_channels_last_input_gets_a_permute_hint() -> None:
    model = CNNClassifier(3, [8], [], 2, input_shape=(8, 8))
    with pytest.raises(ShapeError) as info:
        model(torch.randn(2, 8, 8, 3))
    assert info.value.hint == "images stored (B, H, W, C) need x.permute(0, 3, 1, 2)"


def test_pooled_input_that_floors_to_the_same_size_is_still_refused() -> None:
    model = CNNClassifier(3, [8, 16], [32], 10, input_shape=(32, 32), pool="max")
    with pytest.raises(ShapeError, match="input_shape=\\(35, 34\\)"):
        model(torch.randn(2, 3, 35, 34))
