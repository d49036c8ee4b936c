"""The PNG pictures brickwork writes carry its mark, a ``Software`` text chunk naming it, so that
``evaluate --out`` and ``predict --out`` replace a picture of theirs and never a user's image.

A run directory's own pictures (``confusion.png`` of a run made before the mark) count as
brickwork's too: the run's fixed names are its own (:mod:`brickwork.train.run_dir`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from brickwork._version import __version__
from brickwork.files import check_replace
from brickwork.train.run_dir import RUN_FILES, is_run

SOFTWARE = "Software"
"""The PNG text key of the mark (the PNG standard's key for the program that made a file)."""
MARK = f"brickwork {__version__}"


def png_metadata() -> dict[str, str]:
    """The text chunks of a picture brickwork writes (matplotlib's ``savefig(metadata=...)``)."""
    return {SOFTWARE: MARK}


def png_info() -> Any:
    """The mark as Pillow's ``pnginfo`` for ``Image.save(..., pnginfo=...)``."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(SOFTWARE, MARK)
    return info


def is_written_picture(path: Path) -> bool:
    """Whether ``path`` is a PNG brickwork wrote (its mark), or a picture of a run's own."""
    if path.name in RUN_FILES and is_run(path.parent):
        return True
    from PIL import Image

    try:
        with Image.open(path) as image:
            software = image.info.get(SOFTWARE)
    except Exception:  # not an image Pillow reads (UnidentifiedImageError), or a bomb
        return False
    return isinstance(software, str) and software.startswith("brickwork ")


def check_pictures(paths: Iterable[Path], overwrite: bool) -> None:
    """Refuse, before any is written, to replace a file that is not a picture of brickwork's.

    Raises:
        ConfigError: one of ``paths`` exists and is not one (without ``overwrite``).
    """
    for path in paths:
        check_replace(path, is_written_picture, "picture", overwrite)
