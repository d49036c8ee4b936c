"""Images that cannot be read: each told once by name and skipped, counted at the end of each
pass over a split, and fatal when one pass finds more than :data:`LIMIT` of the dataset.

Under torchrun each rank reads its own share: a rank tells what it finds as it finds it (rank 0
speaks), and at the end of the epoch the ranks pool their lists, so rank 0 tells the others'
finds and the count is the whole job's. A rank that alone finds more than the limit stops there.
"""

from __future__ import annotations

from collections.abc import Callable

from brickwork.errors import DataError
from brickwork.train import distributed

LIMIT = 0.01
"""The share of the dataset's images that may be unreadable: more stops the run."""
SHOWN = 5
"""How many of the unreadable images an error names."""


class Unreadable:
    """The unreadable images of one split, as a run meets them.

    Args:
        split: the split's name, for messages.
        total: the split's number of images.
        dataset: the dataset's number of images, all splits together (the limit's base).
        log: where each image is told (once per run) and each epoch's count.
    """

    def __init__(self, split: str, total: int, dataset: int, log: Callable[[str], None]) -> None:
        self.split, self.total, self.dataset, self.log = split, total, dataset, log
        self.found: dict[int, str] = {}
        """This epoch's finds on this process: sample index → message."""
        self.told: set[int] = set()

    def add(self, index: int, message: str) -> None:
        """Note sample ``index`` as unreadable (``message`` names it and says why).

        Raises:
            DataError: this process alone has found more than :data:`LIMIT` of the dataset.
        """
        self.found[index] = message
        if index not in self.told:
            self.told.add(index)
            self.log(f"skipped an unreadable image: {message}")
        self._check(self.found)

    def end(self, when: str) -> None:
        """Pool the finds of every process, tell the count, and start over.

        Args:
            when: ``"epoch 3"``, ``"validation"``: what the count is of.

        Raises:
            DataError: more than :data:`LIMIT` of the dataset is unreadable in this split.
        """
        pooled: dict[int, str] = {}
        for found in distributed.gather_objects(self.found):
            pooled.update(found)
        self.found = {}
        for index in sorted(pooled.keys() - self.told):
            self.told.add(index)
            self.log(f"skipped an unreadable image: {pooled[index]}")
        if pooled:
            self.log(
                f"{when}: skipped {len(pooled)} unreadable image(s) of {self.total} in the "
                f"{self.split} split"
            )
        self._check(pooled)

    def _check(self, found: dict[int, str]) -> None:
        if len(found) <= LIMIT * self.dataset:
            return
        shown = "; ".join(found[i] for i in sorted(found)[:SHOWN])
        more = f"; and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
        raise DataError(
            f"{len(found)} of the {self.total} images of the {self.split} split are unreadable, "
            f"more than {LIMIT:.0%} of the dataset's {self.dataset}: {shown}{more}",
            hint="repair or remove these files (up to 1% are skipped with a message)",
        )
