from typing import Any

import pytest
import torch
from torch import nn

from brickwork import summary
from brickwork.inspect.render import format_bytes, format_count, inputs_text, shape_text


class PartlyFrozenRoot(nn.Module):
    """The model holds a frozen and a trainable parameter itself, beside a submodule."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(4), requires_grad=False)
        self.shift = nn.Parameter(torch.zeros(4))
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * self.scale + self.shift  # type: ignore[no-any-return]


def cells(table: str, label: str) -> list[str]:
    """The cells of the table row whose first cell is ``label``."""
    for line in table.splitlines():
        parts = [part.strip() for part in line.strip("│┃ ").split("│")]
        if parts[0] == label:
            return parts[1:]
    raise AssertionError(f"no row {label!r} in\n{table}")


def test_an_expanded_row_shows_its_own_trainable_parameters() -> None:
    result = summary(PartlyFrozenRoot(), (4,), columns=("params", "trainable"))
    root = result.rows[0]
    assert (root.own_params, root.own_trainable) == (8, 4)
    assert (root.params, root.trainable) == (28, 24)
    text = str(result)
    assert cells(text, "PartlyFrozenRoot") == ["8", "4"]  # scale is frozen: 4 of 8 train
    assert cells(text, "fc (Linear)") == ["20", "20"]


def test_a_frozen_parameter_on_the_root_is_not_shown_trainable() -> None:
    model = PartlyFrozenRoot()
    model.shift.requires_grad_(False)
    text = str(summary(model, (4,), columns=("params", "trainable")))
    assert cells(text, "PartlyFrozenRoot") == ["8", "--"]


def test_a_collapsed_row_shows_its_whole_subtree() -> None:
    text = str(summary(PartlyFrozenRoot(), (4,), depth=0, columns=("params", "trainable")))
    assert cells(text, "PartlyFrozenRoot") == ["28", "24"]


@pytest.mark.parametrize(
    ("shape", "text"),
    [
        ([2, 3], "[2, 3]"),
        ([[2, 3], [4]], "[[2, 3], [4]]"),
        ({"x": [2, 3], "n": "int"}, "{x: [2, 3], n: int}"),
        ("Tensor", "Tensor"),
        (None, "--"),
    ],
)
def test_shape_text(shape: Any, text: str) -> None:
    assert shape_text(shape) == text


@pytest.mark.parametrize(
    ("shapes", "text"),
    [([[2, 3]], "[2, 3]"), ([[2, 3], [2]], "[[2, 3], [2]]"), ([], "[]"), (None, "--")],
)
def test_inputs_text_shows_a_single_input_without_the_list(shapes: Any, text: str) -> None:
    assert inputs_text(shapes) == text


@pytest.mark.parametrize(
    ("n", "count", "size"),
    [
        (0, "0", "0 B"),
        (999, "999", "999 B"),
        (1500, "1.50K", "1.46 KiB"),
        (51_930_186, "51.93M", "49.52 MiB"),
        (51_930_186 * 4, "207.72M", "198.10 MiB"),
        (3 * 10**12, "3.00T", "2.73 TiB"),
    ],
)
def test_counts_and_bytes(n: int, count: str, size: str) -> None:
    assert format_count(n) == count
    assert format_bytes(n) == size
