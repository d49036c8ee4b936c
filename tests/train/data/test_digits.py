"""The embedded digits: scikit-learn's own test split."""

import torch

from brickwork.train.data import load_dataset


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
