"""seg:PATH: images and masks found, paired and cropped alike; each bad layout one clear line."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from brickwork.errors import DataError
from brickwork.train.data import LoaderOptions, load_dataset, open_batches
from brickwork.train.data.images import decode_mask
from brickwork.train.data.masks import segmentation
from brickwork.train.data.seg_shapes import SHAPE_CLASSES, write_shapes
from brickwork.train.data.stream import KeyedImages, Skipped
from brickwork.train.data.transforms import EvalTransform, TrainTransform, sample_rng


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_shapes(tmp_path_factory.mktemp("shapes"), 40, size=32, seed=1)


def _pair(root: Path, name: str, mask: np.ndarray, image_size: tuple[int, int] | None = None):
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    h, w = image_size or mask.shape
    Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(root / "images" / f"{name}.png")
    Image.fromarray(mask).save(root / "masks" / f"{name}.png")


def _small_set(root: Path, n: int = 10, top: int = 2) -> Path:
    for i in range(n):
        mask = np.zeros((8, 8), np.uint8)
        mask[:4] = i % (top + 1)
        mask[0, 0] = 255
        _pair(root, f"im{i}", mask)
    return root


def test_a_generated_set_loads_as_segmentation_with_its_class_names(shapes: Path) -> None:
    data = load_dataset(f"seg:{shapes}")
    assert data.task == "segmentation"
    assert data.classes == list(SHAPE_CLASSES)
    assert data.input_shape == (3, 32, 32)
    assert sum(data.split_size(s) for s in ("train", "val", "test")) == 40
    assert data.model_metadata()["task"] == "segmentation"


def test_without_classes_txt_the_classes_run_to_the_largest_index(tmp_path: Path) -> None:
    data = segmentation(str(_small_set(tmp_path, top=3)), None, 0)
    assert data.classes == ["0", "1", "2", "3"]  # 255 is not a class


def test_train_val_test_folders_are_used_as_given(tmp_path: Path) -> None:
    for split, n in (("train", 6), ("val", 2), ("test", 3)):
        _small_set(tmp_path / split, n)
    data = segmentation(str(tmp_path), None, 0)
    assert [data.split_size(s) for s in ("train", "val", "test")] == [6, 2, 3]


def test_what_is_left_out_is_noted(tmp_path: Path) -> None:
    _small_set(tmp_path)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "masks" / "alone.png")
    (tmp_path / "images" / ".DS_Store").write_text("x")
    (tmp_path / "images" / "notes.txt").write_text("x")
    notes = " | ".join(segmentation(str(tmp_path), None, 0).notes)
    assert "1 masks without an image" in notes
    assert "1 hidden files" in notes
    assert "1 files that are not images" in notes


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("nothing", "no such directory"),
        ("no-masks-folder", "no masks/ folder"),
        ("image-without-mask", "no mask for it"),
        ("one-class", "1 class(es); segmentation needs at least 2"),
        ("no-images", "no images"),
    ],
)
def test_a_bad_layout_is_one_clear_error(tmp_path: Path, layout: str, message: str) -> None:
    root = tmp_path / "set"
    if layout != "nothing":
        _small_set(root)
    if layout == "no-masks-folder":
        for p in (root / "masks").iterdir():
            p.unlink()
        (root / "masks").rmdir()
    elif layout == "image-without-mask":
        (root / "masks" / "im3.png").unlink()
    elif layout == "one-class":
        (root / "classes.txt").write_text("background\n")
    elif layout == "no-images":
        for p in (root / "images").iterdir():
            p.unlink()
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_dataset(f"seg:{root}")


def _coded(size: int = 48) -> tuple[Image.Image, Image.Image]:
    """An image whose grey level tells its mask's class: 40 * class, in blocks of 12 pixels."""
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 4, (size // 12, size // 12)).astype(np.uint8)
    mask = np.kron(blocks, np.ones((12, 12), np.uint8))
    image = np.repeat((mask * 40)[..., None], 3, axis=2)
    return Image.fromarray(image), Image.fromarray(mask)


@pytest.mark.parametrize("seed", range(6))
def test_image_and_mask_are_cropped_resized_and_flipped_alike(seed: int) -> None:
    image, mask = _coded()
    transform = TrainTransform((24, 24), 3, scale=(0.2, 1.0))
    pixels, labels = transform.pair(image, mask, sample_rng(seed, 0, 0))
    assert pixels.shape == (24, 24, 3)
    assert labels.shape == (24, 24)
    from_image = np.rint(pixels[..., 0] / 40).astype(np.uint8)
    assert (from_image == labels).mean() > 0.9  # edges blur in the image, not in the mask
    assert set(np.unique(labels)) <= {0, 1, 2, 3}  # nearest: never a blend of two classes


def test_the_eval_pair_keeps_the_whole_image_and_every_index() -> None:
    image, mask = _coded()
    pixels, labels = EvalTransform((48, 48), 3, crop_fraction=1.0).pair(image, mask)
    assert np.array_equal(labels, np.asarray(mask))
    assert np.array_equal(pixels[..., 0] // 40, labels)


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (Image.new("RGB", (8, 8)), "a RGB mask; a mask holds one class index per pixel"),
        (Image.new("L", (6, 8)), "6×8 pixels, but its image"),
        (Image.new("L", (8, 8), 7), "class index 7, but the data has 3 classes (0-2, and 255"),
    ],
)
def test_a_bad_mask_skips_its_sample_with_the_reason(
    tmp_path: Path, mask: Image.Image, message: str
) -> None:
    _small_set(tmp_path)
    (tmp_path / "classes.txt").write_text("a\nb\nc\n")
    mask.save(tmp_path / "masks" / "im1.png")
    data = segmentation(str(tmp_path), None, 0)
    records = data.splits["train"]
    index = next(i for i in range(len(records)) if records.where(i).endswith("im1.png"))
    found = KeyedImages(records, data.eval_transform(), 0, data.n_classes)[(0, index)]
    assert isinstance(found, Skipped)
    assert message in found.message
    assert "im1.png" in found.message


def test_without_classes_txt_a_colour_mask_stops_the_loading_with_its_name(tmp_path: Path) -> None:
    _small_set(tmp_path)
    Image.new("RGB", (8, 8)).save(tmp_path / "masks" / "im2.png")
    with pytest.raises(DataError, match=r"im2.png: a RGB mask"):
        load_dataset(f"seg:{tmp_path}")


def test_a_palette_mask_gives_its_indices_not_its_colours() -> None:
    indices = np.array([[0, 1], [2, 255]], np.uint8)
    mask = Image.fromarray(indices, "P")
    mask.putpalette([0, 0, 0, 200, 0, 0, 0, 200, 0] + [255] * (253 * 3))
    assert np.array_equal(decode_mask(mask, (0, 0, 2, 2), (2, 2)), indices)


def test_batches_carry_masks_as_long_with_255_kept(tmp_path: Path) -> None:
    data = segmentation(str(_small_set(tmp_path)), None, 0)
    batches = open_batches(data, LoaderOptions(batch_size=4, workers=0))
    batch = next(batches.epoch(0))
    assert batch.x.shape == (4, 3, 8, 8)
    assert batch.y.shape == (4, 8, 8)
    assert batch.y.dtype == torch.long
    _x, y = next(iter(batches.split("val")))
    assert y.shape[1:] == (8, 8)
    assert (y == 255).any()


def test_workers_give_the_same_masks_as_the_main_process(shapes: Path) -> None:
    data = load_dataset(f"seg:{shapes}")
    ys = [
        torch.cat([b.y for b in open_batches(data, LoaderOptions(8, seed=3, workers=w)).epoch(1)])
        for w in (0, 2)
    ]
    assert torch.equal(ys[0], ys[1])
