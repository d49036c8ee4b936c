"""The ``brickwork`` command, run as a user runs it, or in this process where a test is about what
it says rather than about the installed program (each new process spends seconds importing
PyTorch; a test file keeps a few true runs for the exit status and the installed command)."""

import contextlib
import io
import subprocess
import sys
from pathlib import Path

from PIL import Image

from brickwork.cli import main

COMMAND = Path(sys.executable).with_name("brickwork")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COMMAND), *args], capture_output=True, text=True, timeout=300, check=False, cwd=cwd
    )


def run_here(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``run`` in this process: the same exit status, stdout and stderr, no start-up cost.

    Pillow's pixel limit, which ``--max-pixels`` sets for the whole process, is put back after.
    """
    out, err = io.StringIO(), io.StringIO()
    max_pixels = Image.MAX_IMAGE_PIXELS
    with contextlib.ExitStack() as stack:
        if cwd is not None:
            stack.enter_context(contextlib.chdir(cwd))
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        try:
            status = main(list(args))
        except SystemExit as exit:  # argparse's errors and --help
            status = exit.code if isinstance(exit.code, int) else 0 if exit.code is None else 1
        finally:
            Image.MAX_IMAGE_PIXELS = max_pixels
    return subprocess.CompletedProcess(["brickwork", *args], status, out.getvalue(), err.getvalue())
