"""Where a dataset's files are: ``--data-dir`` as given, or the cache, downloaded with checksums.

The cache is ``$BRICKWORK_CACHE``, else ``~/.cache/brickwork``; each dataset has a folder in it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from brickwork.errors import DataError
from brickwork.files import atomic_write

CACHE = Path(os.environ.get("BRICKWORK_CACHE", Path.home() / ".cache" / "brickwork"))


def cache_folder(kind: str) -> Path:
    """The cache's folder for the dataset ``kind`` (not created)."""
    return CACHE / kind


def require_dir(path: Path, kind: str, wants: str) -> None:
    """Raise if ``path`` is not a directory, saying what the dataset ``kind`` wants in it.

    Args:
        path: ``--data-dir``, or the ``PATH`` of ``folder:PATH`` or ``shards:PATH`` (``kind``
            ``"folder"`` or ``"shards"``).
        kind: the dataset's name.
        wants: the files or folders expected there, for the message.

    Raises:
        DataError: no such directory.
    """
    if not path.is_dir():
        if kind in ("folder", "shards", "seg"):
            raise DataError(f"{kind}:{path}: no such directory (it should hold {wants})")
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


def locate(
    kind: str, data_dir: str | os.PathLike[str] | None, files: dict[str, str], url: str
) -> Path:
    """The folder holding ``files``: ``data_dir`` as given, or the cache (downloading there).

    Args:
        kind: the dataset's name (its cache folder).
        data_dir: ``--data-dir``, or ``None`` for the cache.
        files: file name → digest (``"sha256:..."``).
        url: where the files are, ending in ``/``.

    Raises:
        DataError: ``data_dir`` is not a folder or lacks a file; a download fails.
    """
    if data_dir is not None:
        folder = Path(data_dir)
        require_dir(folder, kind, ", ".join(files))
        missing = [name for name in files if not (folder / name).is_file()]
        if missing:
            raise DataError(f"{folder}: missing {', '.join(missing)} for the {kind} dataset")
        return folder
    folder = cache_folder(kind)
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
