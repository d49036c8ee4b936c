"""Downloads into the cache: checksums, clear failures offline, usual permissions."""

import hashlib
import io
import os
import stat
import urllib.error
from pathlib import Path

import pytest

from brickwork.errors import DataError
from brickwork.train.data import download as download_module
from brickwork.train.data import load_dataset


def test_downloads_check_their_checksum_and_fail_clearly_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(download_module, "CACHE", tmp_path)

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(download_module.urllib.request, "urlopen", offline)
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

    monkeypatch.setattr(download_module.urllib.request, "urlopen", lambda *a, **k: Fake())
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

    monkeypatch.setattr(download_module.urllib.request, "urlopen", lambda *a, **k: Fake(payload))
    digest = "sha256:" + hashlib.sha256(payload).hexdigest()
    old = os.umask(0o022)
    try:
        download_module.download("https://example.org/f.gz", tmp_path / "f.gz", digest)
    finally:
        os.umask(old)
    assert (tmp_path / "f.gz").read_bytes() == payload
    assert stat.S_IMODE((tmp_path / "f.gz").stat().st_mode) == 0o644  # not mkstemp's 0600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.gz"]
