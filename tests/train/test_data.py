import gzip
import hashlib
import io
import os
import stat
import struct
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from brickwork.errors import DataError
from brickwork.train import data as data_module
from brickwork.train.data import load_dataset, random_flip, random_shift, read_idx


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def tiny_mnist(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 120), ("t10k", 30)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return tmp_path


def test_digits_test_split_is_sklearns() -> None:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    _, x_test, _, y_test = train_test_split(
        digits.data, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )
    d = load_dataset("digits")
    assert len(d.y_test) == 450
    assert torch.equal(d.y_test, torch.tensor(y_test))
    torch.testing.assert_close(d.x_test.flatten(1), torch.tensor(x_test, dtype=torch.float32) / 16)
    assert len(d.y_train) + len(d.y_val) == 1797 - 450
    assert d.input_shape == (1, 8, 8)
    assert not d.flips


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_idx_datasets_from_a_folder(tiny_mnist: Path, name: str) -> None:
    d = load_dataset(name, tiny_mnist)
    assert d.input_shape == (1, 28, 28)
    assert len(d.y_train) + len(d.y_val) == 120
    assert len(d.y_test) == 30
    assert float(d.x_train.min()) >= 0
    assert float(d.x_train.max()) <= 1


def test_a_truncated_idx_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + struct.pack(">3I", 10, 28, 28) + b"\0" * 100)
    with pytest.raises(
        DataError,
        match=r"truncated or padded: the header says \(10, 28, 28\) = 7840 bytes, the file has 100",
    ):
        read_idx(path)
    path.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="cannot read it as an IDX file"):
        read_idx(path)


def test_cifar10_binary_batches(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for name, n in [*((f"data_batch_{i}.bin", 20) for i in range(1, 6)), ("test_batch.bin", 10)]:
        records = np.concatenate(
            [(np.arange(n) % 10)[:, None], rng.integers(0, 256, (n, 3072))], axis=1
        )
        (tmp_path / name).write_bytes(records.astype(np.uint8).tobytes())
    d = load_dataset("cifar10", tmp_path)
    assert d.input_shape == (3, 32, 32)
    assert len(d.y_test) == 10
    assert d.flips
    (tmp_path / "test_batch.bin").write_bytes(b"\0" * 1000)
    with pytest.raises(DataError, match="not a CIFAR-10 binary batch"):
        load_dataset("cifar10", tmp_path)


def test_downloads_check_their_checksum_and_fail_clearly_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data_module, "CACHE", tmp_path)

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(data_module.urllib.request, "urlopen", offline)
    with pytest.raises(
        DataError, match=r"cannot download https://.*train-images-idx3-ubyte\.gz"
    ) as info:
        load_dataset("mnist")
    assert "--data-dir" in (info.value.hint or "")

    class Fake:
        def __enter__(self) -> "Fake":
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def read(self, n: int = -1) -> bytes:
            data, self.data = getattr(self, "data", b"wrong bytes"), b""
            return data

    monkeypatch.setattr(data_module.urllib.request, "urlopen", lambda *a, **k: Fake())
    with pytest.raises(DataError, match="checksum is not sha256:"):
        load_dataset("mnist")
    assert not list((tmp_path / "mnist").glob("*.gz"))  # nothing kept


def test_a_download_gets_the_usual_permissions_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = b"the file's bytes"

    class Fake(io.BytesIO):
        def __enter__(self) -> "Fake":
            return self

    monkeypatch.setattr(data_module.urllib.request, "urlopen", lambda *a, **k: Fake(payload))
    digest = "sha256:" + hashlib.sha256(payload).hexdigest()
    old = os.umask(0o022)
    try:
        data_module.download("https://example.org/f.gz", tmp_path / "f.gz", digest)
    finally:
        os.umask(old)
    assert (tmp_path / "f.gz").read_bytes() == payload
    assert stat.S_IMODE((tmp_path / "f.gz").stat().st_mode) == 0o644  # not mkstemp's 0600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.gz"]


def test_image_folders(tmp_path: Path) -> None:
    for label, value in (("cat", 30), ("dog", 220)):
        (tmp_path / label).mkdir()
        for i in range(10):
            Image.fromarray(np.full((6, 5, 3), value + i, dtype=np.uint8)).save(
                tmp_path / label / f"{i}.png"
            )
    d = load_dataset(f"folder:{tmp_path}")
    assert d.classes == ["cat", "dog"]
    assert d.input_shape == (3, 6, 5)
    assert len(d.y_train) + len(d.y_val) + len(d.y_test) == 20


@pytest.mark.parametrize(
    ("name", "data_dir", "message"),
    [
        ("mnsit", None, "unknown dataset 'mnsit'; did you mean 'mnist'"),
        ("mnist", "/no/such/folder", "--data-dir /no/such/folder: no such directory"),
        ("synthetic:3,32", None, "expected synthetic:C,H,W,K,N"),
        ("synthetic:3,8,8,1,100", None, "K ≥ 2"),
        ("folder:/no/such/folder", None, "no such directory"),
    ],
)
def test_bad_dataset_names(name: str, data_dir: str | None, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_dataset(name, data_dir)


def test_a_folder_without_the_idx_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing train-images-idx3-ubyte\.gz"):
        load_dataset("mnist", tmp_path)


def test_batch_augmentation_shifts_and_flips() -> None:
    x = torch.zeros(64, 1, 8, 8)
    x[:, :, 4, 4] = 1.0
    shifted = random_shift(x, 1, torch.Generator().manual_seed(0))
    positions = {tuple(torch.nonzero(img[0])[0].tolist()) for img in shifted}
    assert positions <= {(r, c) for r in (3, 4, 5) for c in (3, 4, 5)}
    assert len(positions) > 3
    assert shifted.sum() == 64
    flipped = random_flip(
        torch.arange(8.0).view(1, 1, 1, 8).repeat(64, 1, 1, 1), torch.Generator().manual_seed(0)
    )
    assert {float(img[0, 0, 0]) for img in flipped} == {0.0, 7.0}


def test_small_datasets_split_without_stratifying(tmp_path: Path) -> None:
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(2):
            Image.fromarray(np.full((4, 4), 40 * i, dtype=np.uint8)).save(
                tmp_path / label / f"{i}.png"
            )
    d = load_dataset(f"folder:{tmp_path}")
    assert len(d.y_train) + len(d.y_val) + len(d.y_test) == 4
    assert len(d.y_test) >= 1


def test_a_folder_of_one_class_is_refused(tmp_path: Path) -> None:
    (tmp_path / "only").mkdir()
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(tmp_path / "only" / "0.png")
    with pytest.raises(DataError, match="1 class sub-folder"):
        load_dataset(f"folder:{tmp_path}")
