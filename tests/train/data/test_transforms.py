"""The training and evaluation crops: timm's geometry, seeded by the sample, bytes out."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from image_trees import photo
from PIL import Image

from brickwork.errors import DataError
from brickwork.train.data.images import open_image
from brickwork.train.data.transforms import EvalTransform, TrainTransform, model_input, sample_rng


@pytest.mark.parametrize(
    ("width", "height", "size", "box"),
    [
        (400, 300, (224, 224), (68.75, 18.75, 331.25, 281.25)),  # 0.875 of the short side
        (300, 400, (224, 224), (18.75, 68.75, 281.25, 331.25)),
        (256, 256, (224, 224), (16.0, 16.0, 240.0, 240.0)),  # 256 → 224, as timm
        (400, 400, (100, 200), (25.0, 112.5, 375.0, 287.5)),  # a 2:1 output: a 2:1 box
    ],
)
def test_the_evaluation_crop_is_the_centre_of_the_resized_shorter_side(
    width: int, height: int, size: tuple[int, int], box: tuple[float, ...]
) -> None:
    assert EvalTransform(size, 3).box(width, height) == pytest.approx(box)


def test_training_crops_lie_in_the_image_within_the_scale_and_ratio() -> None:
    crop = TrainTransform((32, 32), 3, scale=(0.25, 1.0))
    for index in range(300):
        left, top, right, bottom = crop.box(640, 480, sample_rng(0, 0, index))
        assert 0 <= left < right <= 640
        assert 0 <= top < bottom <= 480
        area = (right - left) * (bottom - top) / (640 * 480)
        assert 0.24 <= area <= 1.0
        assert 3 / 4 - 0.01 <= (right - left) / (bottom - top) <= 4 / 3 + 0.01


def test_a_sample_is_augmented_the_same_whoever_computes_it(tmp_path: Path) -> None:
    path = tmp_path / "p.png"
    photo(np.random.default_rng(0), 60, 80, 100).save(path)
    crop = TrainTransform((16, 16), 3)

    def crops(index: int, epoch: int) -> np.ndarray:
        with open_image(path) as image:
            return crop(image, sample_rng(7, epoch, index))

    assert np.array_equal(crops(3, 1), crops(3, 1))
    others = [crops(i, e) for i, e in ((4, 1), (3, 2), (5, 0))]
    assert not any(np.array_equal(crops(3, 1), o) for o in others)
    assert crops(3, 1).shape == (16, 16, 3)
    assert crops(3, 1).dtype == np.uint8


def test_the_flip_mirrors_the_crop() -> None:
    image = Image.fromarray(np.tile(np.arange(64, dtype=np.uint8) * 4, (64, 1)))
    flipped = unflipped = 0
    for index in range(40):
        kept = TrainTransform((8, 8), 1, scale=(1.0, 1.0), flip=True)(
            image, sample_rng(0, 0, index)
        )
        plain = TrainTransform((8, 8), 1, scale=(1.0, 1.0), flip=False)(
            image, sample_rng(0, 0, index)
        )
        if np.array_equal(kept, plain[:, ::-1]) and not np.array_equal(kept, plain):
            flipped += 1
        elif np.array_equal(kept, plain):
            unflipped += 1
    assert flipped + unflipped == 40
    assert 10 <= flipped <= 30


def test_a_training_crop_needs_the_samples_generator() -> None:
    with pytest.raises(TypeError, match="needs the sample's random generator"):
        TrainTransform((8, 8), 3)(Image.new("RGB", (10, 10)), None)


def test_a_phone_photo_is_predicted_as_the_validation_images_were(tmp_path: Path) -> None:
    path = tmp_path / "phone.jpg"
    photo(np.random.default_rng(1), 300, 400, 30).save(path)
    x = model_input(path, (3, 32, 32), {"size": [32, 32], "crop_fraction": 0.875})
    with open_image(path) as image:
        expected = EvalTransform((32, 32), 3)(image)
    assert x.shape == (1, 3, 32, 32)
    assert torch.equal(x, torch.from_numpy(expected).permute(2, 0, 1)[None].float() / 255)


def test_without_a_saved_crop_an_image_of_another_shape_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    Image.new("L", (40, 10)).save(path)
    with pytest.raises(DataError, match="40×10 pixels, but the model takes 8×8 images"):
        model_input(path, (1, 8, 8), None)
    square = tmp_path / "square.png"
    Image.new("L", (16, 16), 255).save(square)
    assert torch.equal(model_input(square, (1, 8, 8), None), torch.ones(1, 1, 8, 8))
    assert math.isclose(float(model_input(square, (3, 8, 8), None).mean()), 1.0)
