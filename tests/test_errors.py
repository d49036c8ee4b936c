import numpy as np
import pytest

from brickwork.errors import ConfigError, positive_int, size_list


@pytest.mark.parametrize(("value", "expected"), [(1, 1), (64, 64), (np.int64(3), 3)])
def test_positive_int_accepts_integers(value: object, expected: int) -> None:
    assert positive_int(value, "x") == expected


@pytest.mark.parametrize("value", [0, -1, 32.0, 2.5, "32", None, True, [3]])
def test_positive_int_refuses_everything_else(value: object) -> None:
    with pytest.raises(ConfigError, match=r"^width must be a positive integer, got "):
        positive_int(value, "width")


@pytest.mark.parametrize(
    ("values", "min_len", "message"),
    [
        ([], 1, r"sizes needs at least 1 size, got \[\]"),
        ([3], 2, r"sizes needs at least 2 sizes, got \[3\]"),
        ([3, 0], 1, r"sizes\[1\] must be a positive integer, got 0"),
        ([3, -2], 1, r"sizes\[1\] must be a positive integer, got -2"),
        ([3, 4.0], 1, r"sizes\[1\] must be a positive integer, got 4.0"),
        ("32", 1, r"sizes must be a list of positive integers, got '32'"),
        (32, 1, r"sizes must be a list of positive integers, got 32"),
    ],
)
def test_size_list_names_the_bad_entry(values: object, min_len: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        size_list(values, "sizes", min_len=min_len)


def test_size_list_accepts_tuples_and_generators() -> None:
    assert size_list((1, 2), "s") == [1, 2]
    assert size_list((i for i in (4, 5)), "s") == [4, 5]
