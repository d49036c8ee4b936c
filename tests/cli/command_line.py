"""The installed ``brickwork`` command, run as a user runs it."""

import subprocess
import sys
from pathlib import Path

COMMAND = Path(sys.executable).with_name("brickwork")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COMMAND), *args], capture_output=True, text=True, timeout=120, check=False
    )
