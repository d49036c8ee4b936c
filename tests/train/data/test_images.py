"""Image files of any mode, format and size decoded as ``uint8`` arrays; bad ones refused."""

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from brickwork.errors import DataError
from brickwork.train.data.images import decode, image_channels, open_image

RGB = np.array([[[200, 40, 10], [10, 200, 40]], [[40, 10, 200], [90, 90, 90]]], dtype=np.uint8)


def saved(image: Image.Image, path: Path, **options: object) -> Path:
    image.save(path, **options)
    return path


def whole(path: Path, channels: int) -> np.ndarray:
    with open_image(path) as image:
        return decode(
            image, (0, 0, image.width, image.height), (image.height, image.width), channels
        )


@pytest.mark.parametrize(
    ("mode", "suffix", "channels"),
    [
        ("L", ".png", 1),
        ("1", ".png", 1),
        ("LA", ".png", 1),
        ("RGB", ".png", 3),
        ("RGBA", ".png", 3),
        ("P", ".png", 3),
        ("P", ".gif", 3),
        ("CMYK", ".jpg", 3),
        ("RGB", ".webp", 3),
        ("RGB", ".bmp", 3),
        ("YCbCr", ".jpg", 3),
    ],
)
def test_every_mode_and_format_becomes_gray_or_rgb_bytes(
    tmp_path: Path, mode: str, suffix: str, channels: int
) -> None:
    path = saved(Image.fromarray(RGB).resize((8, 6)).convert(mode), tmp_path / f"x{suffix}")
    with open_image(path) as image:
        assert image_channels(image) == channels
    for wanted in (1, 3):
        array = whole(path, wanted)
        assert array.shape == (6, 8, wanted)
        assert array.dtype == np.uint8


def test_sixteen_bit_images_keep_their_top_eight_bits(tmp_path: Path) -> None:
    values = np.array([[0x0000, 0x12FF], [0x8000, 0xFFFF]], dtype=np.uint16)
    path = saved(Image.fromarray(values), tmp_path / "deep.png")
    assert whole(path, 1)[..., 0].tolist() == [[0x00, 0x12], [0x80, 0xFF]]
    assert whole(path, 3)[1, 0].tolist() == [0x80, 0x80, 0x80]


def test_a_palette_image_with_transparency_is_read_without_a_warning(tmp_path: Path) -> None:
    image = Image.fromarray(RGB).convert("P")
    path = saved(image, tmp_path / "t.png", transparency=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert whole(path, 3).shape == (2, 2, 3)


def test_a_big_jpeg_is_decoded_at_reduced_size_close_to_the_full_decode(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    big = np.clip(
        np.mgrid[0:800, 0:1000][1][..., None] // 4 + rng.integers(0, 30, (800, 1000, 3)), 0, 255
    ).astype(np.uint8)
    path = saved(Image.fromarray(big), tmp_path / "big.jpg", quality=92)
    with open_image(path) as image:
        drafted = decode(image, (100, 100, 900, 700), (60, 80), 3)
        assert image.size[0] < 1000  # libjpeg scaled it down while decoding
    with Image.open(path) as image:
        full = np.asarray(image.convert("RGB").resize((80, 60), box=(100, 100, 900, 700)))
    assert drafted.shape == (60, 80, 3)
    assert np.abs(drafted.astype(int) - full.astype(int)).mean() < 3


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not an image at all", "cannot read it as an image"),
        (b"", "cannot read it as an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "cannot read it as an image"),
    ],
)
def test_a_file_that_is_not_an_image_is_named(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "cat" / "fake.jpg"
    path.parent.mkdir()
    path.write_bytes(content)
    with pytest.raises(DataError, match=rf"^{path}: {message}"):
        open_image(path).load()


def test_a_truncated_jpeg_fails_when_decoded_naming_the_file(tmp_path: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    path = saved(Image.fromarray(noise), tmp_path / "cut.jpg")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with open_image(path) as image, pytest.raises(DataError, match=rf"^{path}: cannot decode it"):
        decode(image, (0, 0, 64, 64), (8, 8), 3)


@pytest.mark.parametrize("as_bytes", [False, True])
def test_a_decompression_bomb_is_refused_from_its_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_bytes: bool
) -> None:
    path = saved(Image.new("L", (300, 200)), tmp_path / "bomb.png")
    source = path.read_bytes() if as_bytes else path
    for limit in (40_000, 10_000):  # Pillow warns past the limit, and fails past twice it
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
        with pytest.raises(
            DataError,
            match=rf"^{path}: 60,000 pixels, more than Pillow's limit of {limit:,} "
            r"\(PIL.Image.MAX_IMAGE_PIXELS\); refused as a possible decompression bomb$",
        ):
            open_image(source, str(path) if as_bytes else None)


def test_bytes_are_read_as_a_file_would_be(tmp_path: Path) -> None:
    path = saved(Image.fromarray(RGB), tmp_path / "x.png")
    with open_image(path.read_bytes(), "shard.tar:x.png") as image:
        from_bytes = decode(image, (0, 0, 2, 2), (2, 2), 3)
    assert np.array_equal(from_bytes, whole(path, 3))
    assert np.array_equal(from_bytes, RGB)
    with pytest.raises(DataError, match=r"^shard.tar:x.png: cannot read it as an image"):
        open_image(b"junk", "shard.tar:x.png")
