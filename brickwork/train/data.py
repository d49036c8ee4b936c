"""Datasets as tensors: the embedded digits, MNIST-style IDX files, CIFAR-10, image folders, noise.

Small datasets are held whole as tensors (on the training device) and batched by index;
augmentation works on batch tensors. Names:

- ``digits`` (default): scikit-learn's bundled 8×8 handwritten digits, scaled to [0, 1]. Its test
  split is exactly ``train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)``'s.
- ``mnist``, ``fashion-mnist``: IDX gzip files from ``--data-dir``, or downloaded into a cache
  with checksums.
- ``cifar10``: the binary version (``cifar-10-batches-bin``), from ``--data-dir`` or downloaded.
- ``folder:PATH``: a tree ``PATH/<class>/<image>.png|jpg`` (or ``PATH/train/...`` and
  ``PATH/test/...``).
- ``synthetic:C,H,W,K,N``: N random C×H×W images in K classes, for benchmarks.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
import tarfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from brickwork.errors import DataError, unknown_name_message
from brickwork.files import atomic_write

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "folder:PATH", "synthetic:C,H,W,K,N")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
CACHE = Path(os.environ.get("BRICKWORK_CACHE", Path.home() / ".cache" / "brickwork"))


@dataclass
class Dataset:
    """A classification dataset held as tensors: images ``(N, C, H, W)`` in [0, 1], labels ``(N,)``.

    ``mean`` and ``std`` (per channel, from the training split) are what training normalises
    with; checkpoints keep them so that predictions normalise the same way.
    """

    name: str
    classes: list[str]
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    flips: bool = False
    """Whether a horizontal flip keeps an image's class (photos yes, digits no)."""
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.mean:
            per_channel = self.x_train.transpose(0, 1).flatten(1)  # (C, N*H*W)
            self.mean = per_channel.mean(1).tolist()
            self.std = per_channel.std(1).clamp_min(1e-6).tolist()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def to(self, device: torch.device | str) -> Dataset:
        """The same dataset with every tensor on ``device``."""
        moved = {
            name: getattr(self, name).to(device)
            for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
        }
        return Dataset(
            self.name, self.classes, **moved, flips=self.flips, mean=self.mean, std=self.std
        )


def load_dataset(
    name: str, data_dir: str | os.PathLike[str] | None = None, seed: int = 0
) -> Dataset:
    """The dataset ``name`` (see the module docstring), with train/validation/test splits.

    Raises:
        DataError: an unknown name (with the closest one), a missing directory or file, a file
            that is not what it should be, or a download that fails.
    """
    kind, _, argument = name.partition(":")
    kind = kind.lower().replace("_", "-")
    if kind == "digits":
        return _digits()
    if kind in ("mnist", "fashion-mnist"):
        return _idx_dataset(kind, data_dir, seed)
    if kind == "cifar10":
        return _cifar10(data_dir, seed)
    if kind == "folder":
        return _folder(Path(argument or (data_dir or "")), seed)
    if kind == "synthetic":
        return _synthetic(argument, seed)
    raise DataError(
        unknown_name_message("dataset", name, ["digits", "mnist", "fashion-mnist", "cifar10"])
        + ", folder:PATH, synthetic:C,H,W,K,N"
    )


def _split_validation(
    x: torch.Tensor, y: torch.Tensor, fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Carve a validation set out of a training set: stratified when every class has enough
    images for it, plainly random otherwise."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(y))
    n_val = max(1, round(fraction * len(y)))
    counts = np.bincount(y.numpy())
    counts = counts[counts > 0]
    if len(y) - n_val < 1:
        raise DataError(f"too few images ({len(y)}) to split off a validation or test set")
    stratify = y.numpy() if n_val >= len(counts) and counts.min() >= 2 else None
    train_idx, val_idx = train_test_split(
        index, test_size=n_val, random_state=seed % 2**32, stratify=stratify
    )
    train, val = torch.from_numpy(train_idx), torch.from_numpy(val_idx)
    return x[train], y[train], x[val], y[val]


def _digits() -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (1797, 1, 8, 8)
    y = torch.tensor(digits.target, dtype=torch.long)
    index = np.arange(len(y))
    rest, test = train_test_split(index, test_size=0.25, random_state=0, stratify=digits.target)
    x_rest, y_rest = x[torch.from_numpy(rest)], y[torch.from_numpy(rest)]
    x_train, y_train, x_val, y_val = _split_validation(x_rest, y_rest, 0.1, seed=0)
    test_t = torch.from_numpy(test)
    return Dataset(
        "digits", [str(d) for d in range(10)], x_train, y_train, x_val, y_val, x[test_t], y[test_t]
    )


# ----------------------------------------------------------------------------- IDX (MNIST)

IDX_FILES: dict[str, dict[str, Any]] = {
    "mnist": {
        "url": "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "classes": [str(d) for d in range(10)],
        "files": {
            "train-images-idx3-ubyte.gz": (
                "sha256:440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
            ),
            "train-labels-idx1-ubyte.gz": (
                "sha256:3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
            ),
            "t10k-images-idx3-ubyte.gz": (
                "sha256:8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
            ),
            "t10k-labels-idx1-ubyte.gz": (
                "sha256:f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
            ),
        },
    },
    "fashion-mnist": {
        "url": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "classes": [
            "t-shirt",
            "trouser",
            "pullover",
            "dress",
            "coat",
            "sandal",
            "shirt",
            "sneaker",
            "bag",
            "ankle-boot",
        ],
        "files": {
            "train-images-idx3-ubyte.gz": (
                "sha256:08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc"
            ),
            "train-labels-idx1-ubyte.gz": (
                "sha256:b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc"
            ),
            "t10k-images-idx3-ubyte.gz": (
                "sha256:78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229"
            ),
            "t10k-labels-idx1-ubyte.gz": (
                "sha256:42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf"
            ),
        },
    },
}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (``.gz`` or not) as an array: magic ``0x0000 TT DD``, DD big-endian sizes."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise DataError(f"{path}: cannot read it as an IDX file ({err})") from err
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
    dims = data[3]
    header = 4 + 4 * dims
    shape = struct.unpack(f">{dims}I", data[4:header])
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise DataError(
            f"{path}: truncated or padded: the header says {shape} = {expected} bytes, "
            f"the file has {len(data) - header}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _idx_dataset(kind: str, data_dir: str | os.PathLike[str] | None, seed: int) -> Dataset:
    info = IDX_FILES[kind]
    folder = _locate(kind, data_dir, info["files"], info["url"])
    arrays = {name: read_idx(folder / name) for name in info["files"]}
    x = torch.from_numpy(arrays["train-images-idx3-ubyte.gz"].copy()).float().div(255).unsqueeze(1)
    y = torch.from_numpy(arrays["train-labels-idx1-ubyte.gz"].copy()).long()
    x_test = (
        torch.from_numpy(arrays["t10k-images-idx3-ubyte.gz"].copy()).float().div(255).unsqueeze(1)
    )
    y_test = torch.from_numpy(arrays["t10k-labels-idx1-ubyte.gz"].copy()).long()
    if len(x) != len(y) or len(x_test) != len(y_test):
        raise DataError(f"{folder}: images and labels differ in number")
    x_train, y_train, x_val, y_val = _split_validation(x, y, 1 / 12, seed)
    return Dataset(kind, list(info["classes"]), x_train, y_train, x_val, y_val, x_test, y_test)


# ----------------------------------------------------------------------------- CIFAR-10

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/"
CIFAR_ARCHIVE = {"cifar-10-binary.tar.gz": "md5:c32a1d4ab5d03f1284b67883e8d87530"}
CIFAR_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
CIFAR_RECORD = 1 + 3 * 32 * 32


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A CIFAR-10 binary batch: records of one label byte and 3×32×32 pixel bytes."""
    data = path.read_bytes()
    if not data or len(data) % CIFAR_RECORD:
        raise DataError(
            f"{path}: not a CIFAR-10 binary batch ({len(data)} bytes is not a whole number of "
            f"{CIFAR_RECORD}-byte records)"
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    labels = records[:, 0]
    if labels.max() > 9:
        raise DataError(f"{path}: label {labels.max()} is not a CIFAR-10 class (0-9)")
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


def _cifar10(data_dir: str | os.PathLike[str] | None, seed: int) -> Dataset:
    folder = _cifar_folder(data_dir)
    train = [read_cifar_batch(folder / f"data_batch_{i}.bin") for i in range(1, 6)]
    x_test_np, y_test_np = read_cifar_batch(folder / "test_batch.bin")
    x = torch.from_numpy(np.concatenate([b[0] for b in train])).float().div(255)
    y = torch.from_numpy(np.concatenate([b[1] for b in train])).long()
    x_train, y_train, x_val, y_val = _split_validation(x, y, 0.1, seed)
    x_test = torch.from_numpy(x_test_np.copy()).float().div(255)
    y_test = torch.from_numpy(y_test_np.copy()).long()
    return Dataset(
        "cifar10", CIFAR_CLASSES, x_train, y_train, x_val, y_val, x_test, y_test, flips=True
    )


def _cifar_folder(data_dir: str | os.PathLike[str] | None) -> Path:
    for candidate in [Path(data_dir), Path(data_dir) / "cifar-10-batches-bin"] if data_dir else []:
        if (candidate / "test_batch.bin").is_file():
            return candidate
    if data_dir is not None:
        _require_dir(
            Path(data_dir), "cifar10", "data_batch_1.bin ... data_batch_5.bin, test_batch.bin"
        )
        archive = Path(data_dir) / "cifar-10-binary.tar.gz"
        if archive.is_file():
            return _extract_cifar(archive)
        raise DataError(
            f"{data_dir}: no CIFAR-10 binary batches (data_batch_1.bin ... test_batch.bin) and no "
            "cifar-10-binary.tar.gz in it"
        )
    cached = CACHE / "cifar10" / "cifar-10-batches-bin"
    if (cached / "test_batch.bin").is_file():
        return cached
    folder = _locate("cifar10", None, CIFAR_ARCHIVE, CIFAR_URL)
    return _extract_cifar(folder / "cifar-10-binary.tar.gz")


def _extract_cifar(archive: Path) -> Path:
    target = archive.parent
    try:
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.name.endswith(".bin") and m.isfile()]
            for member in members:  # only plain files named *.bin: nothing else is written
                member.name = "cifar-10-batches-bin/" + Path(member.name).name
                tar.extract(member, target)
    except (tarfile.TarError, OSError, EOFError) as err:
        raise DataError(f"{archive}: cannot extract it ({err})") from err
    return target / "cifar-10-batches-bin"


# ----------------------------------------------------------------------------- files, downloads


def _require_dir(path: Path, kind: str, wants: str) -> None:
    if not path.is_dir():
        if kind == "folder":
            raise DataError(f"folder:{path}: no such directory (it should hold {wants})")
        raise DataError(
            f"--data-dir {path}: no such directory (the {kind} dataset wants {wants} in it)",
            hint="give the folder that holds the files, or leave --data-dir out to download them",
        )


def checksum_ok(path: Path, expected: str) -> bool:
    """Whether ``path`` has the digest ``expected`` (``"sha256:..."`` or ``"md5:..."``)."""
    algorithm, _, digest = expected.partition(":")
    h = hashlib.new(algorithm)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest() == digest


def _locate(
    kind: str, data_dir: str | os.PathLike[str] | None, files: dict[str, str], url: str
) -> Path:
    """The folder holding ``files``: ``data_dir`` as given, or the cache (downloading there)."""
    if data_dir is not None:
        folder = Path(data_dir)
        _require_dir(folder, kind, ", ".join(files))
        missing = [name for name in files if not (folder / name).is_file()]
        if missing:
            raise DataError(f"{folder}: missing {', '.join(missing)} for the {kind} dataset")
        return folder
    folder = CACHE / kind
    folder.mkdir(parents=True, exist_ok=True)
    for name, digest in files.items():
        path = folder / name
        if path.is_file() and checksum_ok(path, digest):
            continue
        download(url + name, path, digest)
    return folder


def download(url: str, path: Path, digest: str) -> None:
    """Fetch ``url`` into ``path`` (a temporary name first), checking its digest.

    Raises:
        DataError: offline, an HTTP error, or a file whose digest is wrong (it is not kept).
    """

    def fetch(tmp: Path) -> None:
        with tmp.open("wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            shutil.copyfileobj(response, out)
        if not checksum_ok(tmp, digest):
            raise DataError(f"{url}: the downloaded file's checksum is not {digest}; not kept")

    try:
        atomic_write(path, fetch)
    except (urllib.error.URLError, OSError) as err:
        raise DataError(
            f"cannot download {url} ({getattr(err, 'reason', err)})",
            hint=f"without a network, put the file in a folder and pass --data-dir (or place it "
            f"in {path.parent})",
        ) from err


# ----------------------------------------------------------------------------- folders, noise


def read_image(path: Path, channels: int, size: tuple[int, int] | None) -> torch.Tensor:
    """An image file as a ``(C, H, W)`` float tensor in [0, 1], resized to ``size`` if given."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB")
            if size is not None and image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError) as err:
        raise DataError(f"{path}: cannot read it as an image ({err})") from err
    tensor = torch.from_numpy(array.copy())
    return tensor.unsqueeze(0) if channels == 1 else tensor.permute(2, 0, 1)


def _folder(root: Path, seed: int) -> Dataset:
    _require_dir(root, "folder", "one sub-folder of images per class")
    splits = {s: root / s for s in ("train", "test") if (root / s).is_dir()}
    tree = splits.get("train", root)
    classes = sorted(p.name for p in tree.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise DataError(
            f"{tree}: {len(classes)} class sub-folder(s); a classifier needs at least 2 "
            f"(expected {tree}/<class>/<image>.png)"
        )
    first = next(
        (
            f
            for c in classes
            for f in sorted((tree / c).iterdir())
            if f.suffix.lower() in IMAGE_SUFFIXES
        ),
        None,
    )
    if first is None:
        raise DataError(f"{tree}: no PNG or JPG images in the class folders")
    from PIL import Image

    with Image.open(first) as image:
        channels = 1 if image.mode in ("L", "1", "I;16") else 3
        size = (image.size[1], image.size[0])

    def read(folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = [], []
        for label, name in enumerate(classes):
            for f in sorted((folder / name).iterdir()) if (folder / name).is_dir() else []:
                if f.suffix.lower() in IMAGE_SUFFIXES:
                    images.append(read_image(f, channels, size))
                    labels.append(label)
        if not images:
            raise DataError(f"{folder}: no images")
        return torch.stack(images), torch.tensor(labels)

    x, y = read(tree)
    if "test" in splits:
        x_test, y_test = read(splits["test"])
    else:
        x, y, x_test, y_test = _split_validation(x, y, 0.2, seed)
    x_train, y_train, x_val, y_val = _split_validation(x, y, 0.125, seed)
    return Dataset(
        f"folder:{root}", classes, x_train, y_train, x_val, y_val, x_test, y_test, flips=True
    )


def _synthetic(argument: str, seed: int) -> Dataset:
    try:
        c, h, w, k, n = (int(v) for v in argument.split(","))
    except ValueError:
        raise DataError(
            f"synthetic:{argument}: expected synthetic:C,H,W,K,N (channels, height, width, "
            "classes, samples), e.g. synthetic:3,32,32,10,5000"
        ) from None
    if min(c, h, w, n) < 1 or k < 2 or n < 10 * k:
        raise DataError(f"synthetic:{argument}: sizes must be positive, K ≥ 2 and N ≥ 10·K")
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k  # every class present
    x = torch.rand(n, c, h, w, generator=g)
    x_rest, y_rest, x_test, y_test = _split_validation(x, y, 0.2, seed)
    x_train, y_train, x_val, y_val = _split_validation(x_rest, y_rest, 0.125, seed)
    return Dataset(
        f"synthetic:{argument}",
        [str(i) for i in range(k)],
        x_train,
        y_train,
        x_val,
        y_val,
        x_test,
        y_test,
    )


# ----------------------------------------------------------------------------- batches


def batches(n: int, batch_size: int, generator: torch.Generator | None) -> Iterator[torch.Tensor]:
    """Index tensors of the batches of one epoch: shuffled with ``generator``, else in order."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def random_shift(x: torch.Tensor, pixels: int, generator: torch.Generator) -> torch.Tensor:
    """Each image shifted by up to ``pixels`` in x and y (zero fill): ``(B, C, H, W)`` batches."""
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pixels, pixels, pixels, pixels))
    dy = torch.randint(0, 2 * pixels + 1, (b,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pixels + 1, (b,), generator=generator).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (B, 1, H, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (B, 1, 1, W)
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image mirrored left-right with probability 1/2."""
    flip = (torch.rand(x.shape[0], generator=generator) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)
