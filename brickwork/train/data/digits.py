"""``digits``: scikit-learn's bundled 8×8 handwritten digits, scaled to [0, 1].

Its test split is exactly ``train_test_split(X, y, test_size=0.25, random_state=0,
stratify=y)``'s, so results compare with scikit-learn's examples.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from brickwork.train.data.dataset import Dataset, split_validation


def digits(argument: str, data_dir: str | os.PathLike[str] | None, seed: int) -> Dataset:
    """The digits (embedded, nothing to download); the split does not depend on ``seed``.

    Args:
        argument: unused (the part after ``digits:``).
        data_dir: unused.
        seed: unused: the splits are scikit-learn's.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (1797, 1, 8, 8)
    y = torch.tensor(bunch.target, dtype=torch.long)
    index = np.arange(len(y))
    rest, test = train_test_split(index, test_size=0.25, random_state=0, stratify=bunch.target)
    x_rest, y_rest = x[torch.from_numpy(rest)], y[torch.from_numpy(rest)]
    x_train, y_train, x_val, y_val = split_validation(x_rest, y_rest, 0.1, seed=0)
    test_t = torch.from_numpy(test)
    return Dataset(
        "digits", [str(d) for d in range(10)], x_train, y_train, x_val, y_val, x[test_t], y[test_t]
    )
