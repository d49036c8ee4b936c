"""Graph specs that cannot be built: one SpecError each, starting with the spec path."""

import warnings
from typing import Any

import pytest
import torch

from brickwork import SpecError, build
from brickwork.errors import SpecWarning


def _graph(*items: Any, **spec: Any) -> dict[str, Any]:
    return {"input": [4, 8, 8], "model": list(items), **spec}


CONV = {"conv2d": {"out": 4, "kernel_size": 3, "padding": 1}}
VALID = {"conv2d": {"out": 4, "kernel_size": 3}}  # no padding: 8×8 becomes 6×6

# (spec, message): the path, what was found, what was expected
ERROR_CASES: list[tuple[Any, str]] = [
    (
        _graph({**CONV, "name": "enc1"}, {**CONV, "name": "enc2"}, {"relu": None, "from": "enc3"}),
        r"^model\[2\]\.from: unknown name 'enc3'; did you mean 'enc2'\? valid: input, enc1, enc2$",
    ),
    (
        _graph({**CONV, "name": "a", "from": "b"}, {**CONV, "name": "b", "from": "input"}),
        r"^model\.a\.from: b comes later \(model\.b\); an item reads only inputs and items before",
    ),
    (
        _graph({**CONV, "name": "a", "from": "c"}, {**CONV, "name": "b"}, {**CONV, "name": "c"}),
        r"^model\.a\.from: c makes a cycle: a → c → b → a \(each reads the next\)",
    ),
    (
        _graph({**CONV, "name": "a", "from": "a"}),
        r"^model\.a\.from: a makes a cycle: a → a",
    ),
    (
        _graph(
            {**CONV, "name": "up3"},
            {**VALID, "name": "enc2", "from": "input"},
            {"concat": None, "from": ["up3", "enc2"]},
        ),
        r"^model\[2\]\.from: up3 \(4, 8, 8\) and enc2 \(4, 6, 6\) do not fit: concat along dim 1 "
        r"needs equal sizes in every other dimension, and they differ in dims 2, 3",
    ),
    (
        _graph(
            {**CONV, "name": "a"},
            {"flatten": None, "name": "b", "from": "input"},
            {"add": None, "from": ["a", "b"]},
        ),
        r"^model\[2\]\.from: a \(4, 8, 8\) and b \(256,\) differ in rank; add takes inputs of one",
    ),
    (
        _graph(
            {**CONV, "name": "a"},
            {"conv2d": {"out": 6, "kernel_size": 1}, "name": "b"},
            {"add": None, "from": ["a", "b"]},
        ),
        r"^model\[2\]\.from: a \(4, 8, 8\) and b \(6, 8, 8\) do not fit: add needs equal sizes "
        r"\(or 1\) in every dimension, and they differ in dim 1$",
    ),
    (
        _graph({**CONV, "name": "a"}, {"concat": {"dim": 0}, "from": ["a", "input"]}),
        r"^model\[1\]\.concat: concat: dim 0 is the batch",
    ),
    (
        _graph({**CONV, "name": "a"}, {"concat": {"dim": 4}, "from": ["a", "input"]}),
        r"^model\[1\]\.from: concat: dim 4 is outside inputs of 4 dimensions",
    ),
    (_graph(CONV, {"add": None}), r"^model\[1\]\.add: merges two or more inputs; name them with"),
    (
        _graph({**CONV, "name": "a"}, {**CONV, "from": ["a", "input"]}),
        r"^model\[1\]\.from: conv2d takes one input, but from: names 2 \(a, input\)$",
    ),
    (
        _graph({**CONV, "name": "box"}, outputs=["boxes"]),
        r"^outputs\[0\]: unknown name 'boxes'; did you mean 'box'\?",
    ),
    (
        _graph({**CONV, "name": "box"}, outputs={"logits": "logit"}),
        r"^outputs\.logits: unknown name 'logit'",
    ),
    (
        _graph({**CONV, "name": "a"}, {**CONV, "name": "a"}),
        r"^model\[1\]: name 'a' is used twice in model \(also model\[0\]\)",
    ),
    (
        _graph({**CONV, "name": "1"}, {**CONV, "from": "1"}),
        r"^model\[1\]: position '1' \(its name when unnamed\) is used twice in model",
    ),
    (
        {"inputs": {"a": [4], "b": [4]}, "model": [{"add": None, "from": ["a", "b"], "name": "a"}]},
        r"^model\[0\]: name 'a' is used twice in model \(also an input\)",
    ),
    (
        _graph(CONV, {"relu": None, "from": 0}),
        r"^model\[1\]\.from: 0 is a position; items are referred to by name",
    ),
    (
        {"inputs": {"a": [4], "b": [4]}, "model": ["relu"]},
        r"^model\[0\]: the model has 2 inputs \(a, b\), so the first item says which it reads",
    ),
    (_graph({"use": "tower"}), r"^model\[0\]\.use: unknown name 'tower'"),
    (
        _graph({"use": "b"}, {**CONV, "name": "b"}),
        r"^model\[0\]\.use: 'b' comes later \(model\.b\)",
    ),
    (_graph({"use": "input"}), r"^model\[0\]\.use: 'input' is an input; use: names an item's"),
    (
        _graph({**CONV, "name": "a"}, {"use": "a", "relu": None}),
        r"^model\[1\]: an item either uses an earlier item's module or builds a brick",
    ),
    (
        _graph({**CONV, "name": "a"}, {"relu": None, "from": "a.0"}),
        r"^model\[1\]\.from: a\.0: a gives one output; write from: a$",
    ),
    (
        _graph({"chunk": {"chunks": 2}, "name": "p"}, {"relu": None, "from": "p.2"}),
        r"^model\[1\]\.from: p\.2: p gives 2 outputs, so its parts are p\.0, p\.1$",
    ),
    (
        _graph({"chunk": {"chunks": 2}, "name": "p"}, {"relu": None, "from": "p"}),
        r"^model\[1\]: p gives 2 outputs \(\(2, 8, 8\), \(2, 8, 8\)\); pick one with from: p\.0 or",
    ),
    (
        _graph({"chunk": {"chunks": 2}}, "relu"),
        r"^model\[1\]: model\[0\] gives 2 outputs",
    ),
    (
        _graph(
            {**CONV, "name": "a"},
            {"relu": {"inplace": True}, "name": "r"},
            {"add": None, "from": ["a", "r"]},
        ),
        r"^model\.r: runs in place \(inplace: true\) on a, which model\[2\] also reads",
    ),
    (
        _graph({**CONV, "name": "a", "from": "x.y"}),
        r"^model\.a\.from: 'x\.y': one part of an output of several is picked by its position",
    ),
    (
        {"input": [4], "inputs": {"a": [4]}, "model": ["relu"]},
        r"^inputs: the spec has both input and inputs",
    ),
    ({"inputs": [4], "model": ["relu"]}, r"^inputs: expected a mapping of names to shapes"),
    ({"inputs": {"a": [10**18, 40]}, "model": ["relu"]}, r"^inputs\.a: .* more than a tensor can"),
    (
        {"inputs": {"a": [10**18, 4]}, "model": [{"relu": None, "from": "a"}]},
        r"^model\[0\]\.relu: a probe batch: 2 × 1000000000000000000 × 4 = 8e\+18 values, more",
    ),
    (
        {"input": [10**18, 4], "model": [{"concat": None, "from": ["input", "input"]}]},
        r"^model\[0\]\.concat: a probe batch: 2 × 1000000000000000000 × 4 = 8e\+18 values",
    ),
    ({"inputs": {"a": {"shape": [4], "dtype": "long", "x": 1}}, "model": ["relu"]}, r"^inputs\.a:"),
    (
        {"inputs": {"a": {"shape": [4], "dtype": "flaot"}}, "model": ["relu"]},
        r"unknown input_dtype",
    ),
    (
        {"inputs": {"forward": [4]}, "model": ["relu"]},
        r"^inputs\.forward: 'forward' would shadow the nn\.Module attribute",
    ),
    (_graph(CONV, outputs=[]), r"^outputs: expected a name, a list or a mapping of names"),
    (
        {"input": [4], "model": [{"model": ["relu"], "from": "input"}]},
        r"^model\[0\]: unknown brick 'model'",
    ),
]


@pytest.mark.parametrize(("spec", "message"), ERROR_CASES)
def test_graph_errors(spec: Any, message: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpecWarning)  # several cases leave a branch unread
        with pytest.raises(SpecError, match=message) as caught:
            build(spec)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("forward", r"'forward' would shadow the nn\.Module attribute of that name"),
        ("training", r"'training' would shadow"),
        ("__dict__", r"'__dict__' would shadow"),
        ("_private", r"'_private' would shadow"),
        ("append", r"'append' would shadow"),  # nn.Sequential's
        ("state_dict", r"'state_dict' would shadow"),
        ("input", r"'input' names the input itself"),
        ("my-block", r"'my-block' is not a valid attribute name"),
        ("1st", r"'1st' is not a valid attribute name"),
        ("class", r"'class' is not a valid attribute name"),
        ("a.b", r"must be a non-empty string without '\.', got 'a\.b'"),
        ("", r"must be a non-empty string"),
        (3, r"must be a non-empty string without '\.', got 3"),
    ],
)
def test_names_that_are_not_plain_attributes_are_refused(name: Any, message: str) -> None:
    for model in ([{"relu": None, "name": name}], [{"relu": None, "name": name, "from": "input"}]):
        with pytest.raises(SpecError, match=rf"^model\[0\]\.name: {message}") as caught:
            build({"input": [4], "model": model})
        assert "\n" not in str(caught.value)


@pytest.mark.parametrize("name", ["conv1", "layer1", "0", "12", "x_2", "größe"])
def test_attribute_names_and_digits_are_names(name: str) -> None:
    model = build({"input": [4], "model": [{"linear": {"out": 2}, "name": name}]})
    assert list(model.state_dict()) == [f"{name}.weight", f"{name}.bias"]


def test_a_branch_nothing_reads_is_a_warning() -> None:
    spec = _graph({**CONV, "name": "aux"}, {**CONV, "name": "main", "from": "input"})
    with pytest.warns(SpecWarning, match=r"^model\.aux: its output is never read") as caught:
        model = build(spec)
    assert len(caught) == 1
    assert model.aux is not None  # it is built all the same


def test_an_input_nothing_reads_is_a_warning() -> None:
    spec = {"inputs": {"a": [4], "b": [4]}, "model": [{"linear": {"out": 2}, "from": "a"}]}
    with pytest.warns(SpecWarning, match=r"^inputs\.b: no item reads this input"):
        build(spec)


def test_a_graph_without_an_unread_branch_does_not_warn() -> None:
    spec = _graph({**CONV, "name": "a"}, {**CONV, "name": "b"}, {"add": None, "from": ["a", "b"]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build(spec)


@pytest.mark.parametrize(
    ("said", "fix", "fixed_shape"),
    [
        (
            "pad enc2 to 8×8",
            {"zeropad2d": {"padding": [1, 1, 1, 1]}, "from": "enc2", "name": "fixed"},
            (2, 8, 8, 8),
        ),
        (
            "crop up3 to 6×6",
            {"zeropad2d": {"padding": [-1, -1, -1, -1]}, "from": "up3", "name": "fixed"},
            (2, 8, 6, 6),
        ),
    ],
)
def test_a_merge_of_images_that_differ_in_size_says_how_to_pad_or_crop(
    said: str, fix: dict[str, Any], fixed_shape: tuple[int, ...]
) -> None:
    spec = _graph(
        {**CONV, "name": "up3"},
        {**VALID, "name": "enc2", "from": "input"},
        {"concat": None, "from": ["up3", "enc2"]},
    )
    with pytest.raises(SpecError) as caught:
        build(spec)
    assert caught.value.hint is not None
    assert said in caught.value.hint
    padding = fix["zeropad2d"]["padding"]
    assert f"{{zeropad2d: {{padding: {padding}}}, from: {fix['from']}}}" in caught.value.hint
    other = "enc2" if fix["from"] == "up3" else "up3"
    fixed = _graph(
        {**CONV, "name": "up3"},
        {**VALID, "name": "enc2", "from": "input"},
        fix,
        {"concat": None, "from": ["fixed", other]},
    )
    assert build(fixed)(torch.randn(2, 4, 8, 8)).shape == fixed_shape


def test_an_add_of_different_channels_says_how_to_project() -> None:
    spec = _graph(
        {**CONV, "name": "a"},
        {"conv2d": {"out": 6, "kernel_size": 1}, "name": "b"},
        {"add": None, "from": ["a", "b"]},
    )
    with pytest.raises(SpecError) as caught:
        build(spec)
    assert caught.value.hint is not None
    assert "`{conv2d: {out: 4, kernel_size: 1}, from: b}`" in caught.value.hint
