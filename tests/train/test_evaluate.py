"""Scores from a confusion matrix: precision, recall, F1 per class and their averages."""

import pytest
import torch

from brickwork.train.evaluate import class_scores


def test_class_scores_give_f1_and_macro_and_weighted_averages() -> None:
    confusion = torch.tensor([[3, 1], [0, 0]])  # class b: never true, never predicted
    scores = class_scores(confusion, ["a", "b"])
    a = scores["per_class"]["a"]
    assert (a["precision"], a["recall"], a["support"]) == (1.0, 0.75, 4)
    assert a["f1"] == pytest.approx(2 * 0.75 / 1.75)
    assert scores["per_class"]["b"]["f1"] == 0.0
    assert scores["macro"]["f1"] == pytest.approx(a["f1"] / 2)
    assert scores["weighted"]["f1"] == pytest.approx(a["f1"])
