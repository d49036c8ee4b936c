"""The side effects of a forward: what it prints and the Python warnings it raises."""

from __future__ import annotations

import io
import sys
import warnings
from contextlib import redirect_stdout
from typing import Any

from brickwork.inspect.findings import Finding
from brickwork.inspect.user_code import user_frame


class Watch:
    """Catches what a forward prints and the Python warnings it raises, with the user's line.

    Use it as a context manager around the forward, then read :meth:`findings`.
    """

    def __init__(self) -> None:
        """An empty watch: nothing printed or caught yet."""
        self.printed = io.StringIO()
        self.printed_at: str | None = None  # the user's line of the first print
        self.caught: list[warnings.WarningMessage] = []

    def __enter__(self) -> Watch:
        """Redirect ``sys.stdout`` and record every warning until the block ends."""
        watch = self

        class Writer(io.StringIO):
            def write(self, text: str) -> int:
                if watch.printed_at is None and text.strip():
                    watch.printed_at = user_frame(sys._getframe(1))
                return watch.printed.write(text)

        self._redirect = redirect_stdout(Writer())
        self._redirect.__enter__()
        self._warnings = warnings.catch_warnings(record=True)
        log = self._warnings.__enter__()
        self.caught = log if log is not None else []
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc: Any) -> None:
        """Put ``sys.stdout`` and the warning filters back."""
        self._warnings.__exit__(*exc)
        self._redirect.__exit__(*exc)

    def findings(self) -> list[Finding]:
        """A ``side-effect`` warning for the prints (the first line shown) and one per warning."""
        found = []
        lines = self.printed.getvalue().strip().splitlines()
        if lines:
            text, where = lines[0], self.printed_at
            more = f" (and {len(lines) - 1} more lines)" if len(lines) > 1 else ""
            found.append(
                Finding(
                    "side-effect",
                    "warning",
                    "",
                    f"forward prints{f' at {where}' if where else ''}: {text[:120]!r}{more}",
                    "printing in forward floods training logs; use logging at debug level, or "
                    "brickwork.summary to see shapes",
                    line=where,
                )
            )
        for w in self.caught:
            found.append(
                Finding(
                    "side-effect",
                    "warning",
                    "",
                    f"forward raises {w.category.__name__} at {w.filename}:{w.lineno}: {w.message}",
                    line=f"{w.filename}:{w.lineno}",
                )
            )
        return found
