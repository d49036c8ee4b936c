"""Image files of any mode, format and size decoded as ``uint8`` arrays; bad ones refused."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import simplejpeg
from PIL import Image

from brickwork.errors import DataError
from brickwork.train.data import images
from brickwork.train.data.images import decode, image_channels, open_image, reduction, snap_box

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


def big_jpeg(path: Path) -> Path:
    """A 1000 × 800 photo-like JPEG: a ramp and noise."""
    rng = np.random.default_rng(0)
    big = np.clip(
        np.mgrid[0:800, 0:1000][1][..., None] // 4 + rng.integers(0, 30, (800, 1000, 3)), 0, 255
    ).astype(np.uint8)
    return saved(Image.fromarray(big), path, quality=92)


def pillow_resized(path: Path, box: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB").resize(size[::-1], box=box))


@pytest.mark.parametrize(
    ("box", "size", "factor"),
    [
        ((100, 100, 900, 700), (60, 80), 8),  # 10x smaller: decoded at 1/8
        ((0, 0, 1000, 800), (200, 250), 4),
        ((200, 160, 712, 544), (96, 128), 4),
        ((0, 0, 1000, 800), (224, 224), 2),
        ((300, 200, 620, 520), (224, 224), 1),  # the region is less than twice the output
    ],
)
def test_a_big_jpeg_is_decoded_at_reduced_size_close_to_the_full_decode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, box: tuple[int, int, int, int],
    size: tuple[int, int], factor: int,
) -> None:  # fmt: skip
    path = big_jpeg(tmp_path / "big.jpg")
    shapes, decode_jpeg = [], simplejpeg.decode_jpeg

    def spied(*args: object, **kwargs: object) -> np.ndarray:
        shapes.append(decode_jpeg(*args, **kwargs).shape)
        return decode_jpeg(*args, **kwargs)

    monkeypatch.setattr(images.simplejpeg, "decode_jpeg", spied)
    with open_image(path) as image:
        assert reduction(image, box, size) == factor
        fast = decode(image, box, size, 3)
    assert shapes == [(-(-800 // factor), -(-1000 // factor), 3)]  # libjpeg scaled it down
    assert fast.shape == (*size, 3)
    assert np.abs(fast.astype(int) - pillow_resized(path, box, size).astype(int)).mean() < 3


@pytest.mark.parametrize(
    ("image_size", "box", "size", "snapped"),
    [
        ((1000, 800), (101, 99, 901, 703), (60, 80), (104, 96, 904, 704)),  # multiples of 8
        ((1000, 800), (3, 5, 997, 799), (60, 80), (0, 8, 1000, 800)),  # the edge, not 1000 + 4
        ((1000, 800), (10.4, 20.6, 300.5, 330.49), (224, 224), (10, 21, 300, 330)),  # whole pixels
        ((1000, 800), (999.6, 799.7, 1000, 800), (1, 1), (999, 799, 1000, 800)),  # never empty
        ((1000, 800), (500, 400, 500, 400), (1, 1), (500, 400, 501, 401)),
    ],
)
def test_a_box_is_snapped_to_whole_pixels_of_the_reduced_image(
    tmp_path: Path, image_size: tuple[int, int], box: tuple[float, float, float, float],
    size: tuple[int, int], snapped: tuple[int, int, int, int],
) -> None:  # fmt: skip
    path = saved(Image.new("RGB", image_size), tmp_path / "x.jpg")
    with open_image(path) as image:
        assert snap_box(image, box, size) == snapped
        assert snap_box(image, snapped, size) == snapped  # snapping twice changes nothing


def test_a_png_is_never_reduced_and_resizes_like_pillow(tmp_path: Path) -> None:
    path = saved(Image.open(big_jpeg(tmp_path / "big.jpg")), tmp_path / "big.png")
    box, size = (100, 100, 900, 700), (60, 80)
    with open_image(path) as image:
        assert reduction(image, box, size) == 1
        array = decode(image, box, size, 3)
    assert np.abs(array.astype(int) - pillow_resized(path, box, size).astype(int)).mean() < 1


def test_a_cameras_mpo_is_decoded_as_its_first_picture(tmp_path: Path) -> None:
    first = Image.fromarray(RGB).resize((64, 48))
    path = tmp_path / "phone.jpg"
    first.save(path, "MPO", save_all=True, append_images=[Image.new("RGB", (64, 48), "white")])
    with open_image(path) as image:
        assert image.format == "MPO"
        assert reduction(image, (0, 0, 64, 48), (12, 16)) == 4  # the JPEG path, scaled
        array = decode(image, (0, 0, 64, 48), (48, 64), 3)
    with Image.open(path) as image:  # Pillow shows the first picture
        assert np.abs(array.astype(int) - np.asarray(image.convert("RGB"))).max() <= 1


@pytest.mark.parametrize(("mode", "channels"), [("L", 3), ("RGB", 1), ("L", 1), ("RGB", 3)])
def test_gray_and_colour_jpegs_become_either(tmp_path: Path, mode: str, channels: int) -> None:
    path = saved(Image.fromarray(RGB).resize((64, 48)).convert(mode), tmp_path / "x.jpg")
    with Image.open(path) as image:
        expected = np.asarray(image.convert("L" if channels == 1 else "RGB").resize((16, 12)))
    with open_image(path) as image:
        array = decode(image, (0, 0, 64, 48), (12, 16), channels)
    assert array.shape == (12, 16, channels)
    assert np.abs(array.astype(int) - expected.reshape(12, 16, channels)).max() <= 3


def test_a_jpeg_libjpeg_only_warns_about_is_still_read(tmp_path: Path) -> None:
    path = saved(Image.fromarray(RGB).resize((64, 48)), tmp_path / "x.jpg")
    content = path.read_bytes()
    scan = content.index(b"\xff\xda")
    path.write_bytes(content[:scan] + b"\x00\x00\x00" + content[scan:])  # bytes between markers
    with pytest.raises(ValueError, match="extraneous bytes"):
        simplejpeg.decode_jpeg(path.read_bytes())
    expected = whole(saved(Image.open(path), tmp_path / "y.png"), 3)
    with open_image(path) as image:
        for _ in range(2):  # predict decodes a picture twice: for the model and the overlay
            assert np.array_equal(decode(image, (0, 0, 64, 48), (48, 64), 3), expected)


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
