"""Where the user's own code is: the line of a traceback or of a call stack outside the libraries.

A user's line is one whose file lies outside torch's folder and this folder of brickwork's, and
is a real file (not ``<stdin>`` or ``<string>``).
"""

from __future__ import annotations

import traceback
from pathlib import Path
from types import FrameType

import torch

LIBRARY_DIRS = (
    str(Path(torch.__file__).resolve().parent),
    str(Path(__file__).resolve().parents[1]),
)
"""torch's and brickwork's own folders: a user's line is outside both."""


def user_frame(frame: FrameType | None, stop: FrameType | None = None) -> str | None:
    """``file:line`` of the innermost frame of the user's code, from ``frame`` outwards.

    Args:
        frame: the frame to start from (``sys._getframe(1)``); ``None`` finds nothing.
        stop: a frame not to look at or beyond (the caller that started a forward, so that a
            call made by library code inside it is not pinned on whoever called the library).
    """
    while frame is not None and frame is not stop:
        filename = str(Path(frame.f_code.co_filename).resolve())
        if not filename.startswith(LIBRARY_DIRS) and not filename.startswith("<"):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return None


def user_line(err: BaseException) -> str | None:
    """``file:line`` of the deepest frame of ``err``'s traceback that is the user's code.

    Args:
        err: a raised exception.
    """
    found = None
    for frame in traceback.extract_tb(err.__traceback__):
        filename = str(Path(frame.filename).resolve())
        if not filename.startswith(LIBRARY_DIRS) and not frame.filename.startswith("<"):
            found = f"{frame.filename}:{frame.lineno}"
    return found


def raised_at(err: BaseException) -> tuple[str, int] | None:
    """``(file, line)`` where ``err`` was raised, when that is the user's code (the last frame
    of its traceback is theirs); ``None`` when it was raised inside torch or brickwork.

    Args:
        err: a raised exception.
    """
    frames = traceback.extract_tb(err.__traceback__)
    if not frames:
        return None
    last = frames[-1]
    filename = str(Path(last.filename).resolve())
    if filename.startswith(LIBRARY_DIRS) or last.filename.startswith("<"):
        return None
    return last.filename, last.lineno or 0
