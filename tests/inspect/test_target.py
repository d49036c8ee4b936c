from pathlib import Path
from typing import Any

import pytest
from torch import nn

from brickwork.errors import ConfigError
from brickwork.inspect.target import UserCodeError, is_target, load_target, parse_call_arguments

USER_FILE = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, in_c, sizes, n_classes=10, activation="relu"):
        super().__init__()
        self.activation = activation
        self.body = nn.Linear(in_c, sizes[0])
        self.head = nn.Linear(sizes[0], n_classes)

    def forward(self, x):
        return self.head(self.body(x))


def make_net():
    return Net(4, [8], 3)


net = make_net()
not_a_model = 42


class Broken(nn.Module):
    def __init__(self):
        super().__init__()
        raise ValueError("oops in __init__")


def returns_a_list():
    return [1, 2]
"""


@pytest.fixture
def user_file(tmp_path: Path) -> Path:
    path = tmp_path / "user_net.py"
    path.write_text(USER_FILE)
    return path


@pytest.mark.parametrize(
    ("args", "kwargs", "positional", "keywords"),
    [
        ("1, [32, 64], [1024, 512], 10", None, [1, [32, 64], [1024, 512], 10], {}),
        (None, "activation='lrelu'", [], {"activation": "lrelu"}),
        (
            "3",
            "sizes=(4, 5), extra={'a': None, 'b': True}",
            [3],
            {"sizes": (4, 5), "extra": {"a": None, "b": True}},
        ),
        ("-1.5, 'x'", "", [-1.5, "x"], {}),
        (None, None, [], {}),
    ],
)
def test_parse_call_arguments(
    args: str | None, kwargs: str | None, positional: list[Any], keywords: dict[str, Any]
) -> None:
    assert parse_call_arguments(args, kwargs) == (positional, keywords)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ('__import__("os").system("echo hacked")', None, "only Python literals are allowed"),
        ("1 + len([])", None, "only Python literals are allowed"),
        (None, "a=open('x')", "only Python literals are allowed"),
        ("1, [2", None, "is not what goes between a call's parentheses"),
        ("*[1, 2]", None, "only Python literals|unpacking"),
    ],
)
def test_arguments_are_literals_only(args: str | None, kwargs: str | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_call_arguments(args, kwargs)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a/b.py:Net", True),
        ("net.py:make_net", True),
        ("net.yaml", False),
        ("net.py", False),
        ("net.py:1x", False),
    ],
)
def test_is_target(text: str, expected: bool) -> None:
    assert is_target(text) is expected


def test_a_class_with_arguments(user_file: Path) -> None:
    model = load_target(f"{user_file}:Net", "4, [8]", "n_classes=5, activation='lrelu'")
    assert isinstance(model, nn.Module)
    assert model.head.out_features == 5  # type: ignore[union-attr]
    assert model.activation == "lrelu"


def test_a_function_and_an_instance(user_file: Path) -> None:
    assert load_target(f"{user_file}:make_net").head.out_features == 3  # type: ignore[union-attr]
    assert isinstance(load_target(f"{user_file}:net"), nn.Module)


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("Nte", None, "unknown name 'Nte'; did you mean 'Net'"),
        ("not_a_model", None, "is a int, not an nn.Module class"),
        ("net", "1", "is a module instance; it takes no --args/--kwargs"),
        ("returns_a_list", None, r"returns_a_list\(\.\.\.\) returned list, not an nn\.Module"),
    ],
)
def test_bad_names(user_file: Path, name: str, args: str | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_target(f"{user_file}:{name}", args)


def test_construction_failure_names_the_users_line(user_file: Path) -> None:
    with pytest.raises(UserCodeError) as info:
        load_target(f"{user_file}:Broken")
    line = USER_FILE.splitlines().index('        raise ValueError("oops in __init__")') + 1
    assert info.value.lineno == line
    assert f"{user_file}:{line}: ValueError: oops in __init__" in str(info.value)


def test_missing_arguments_are_a_user_code_error(user_file: Path) -> None:
    with pytest.raises(
        UserCodeError, match=r"building Net\(in_c, sizes, n_classes=10, activation='relu'\) failed"
    ):
        load_target(f"{user_file}:Net")


def test_import_errors_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad_syntax.py"
    bad.write_text("import torch\n\ndef f(:\n    pass\n")
    with pytest.raises(UserCodeError, match=rf"importing {bad} failed at {bad}:3: SyntaxError"):
        load_target(f"{bad}:f")
    raising = tmp_path / "raising.py"
    raising.write_text("x = 1\nraise RuntimeError('at import')\n")
    with pytest.raises(UserCodeError, match=rf"{raising}:2: RuntimeError: at import"):
        load_target(f"{raising}:x")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such Python file"):
        load_target(f"{tmp_path}/nope.py:Net")
