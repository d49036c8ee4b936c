"""Spec limits: bombs are refused at once with a SpecError naming the limit; real models build."""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from graph_specs import resnet_graph, unet_graph
from torch import nn

import brickwork
from brickwork import BRICKS, SpecError, build, count_params, summary, to_spec
from brickwork.spec.limits import MAX_BRICKS, MAX_DEPTH, MAX_REPEAT, MAX_SPEC_BYTES, MAX_VALUES

BILLION_LAUGHS = "\n".join(
    [
        'a: &a ["relu", "relu", "relu", "relu", "relu", "relu", "relu", "relu", "relu"]',
        *(
            f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]"
            for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "input: [4]",
        "model: *i  # 9**9 = 387,420,489 relus once expanded",
    ]
)


@pytest.fixture
def counted_brick() -> Iterator[list[int]]:
    """A registered brick that counts how often it is built."""
    built: list[int] = []

    def counted(**kwargs: Any) -> nn.Module:
        built.append(1)
        return nn.Identity()

    BRICKS.register("counted_brick", counted)
    try:
        yield built
    finally:
        BRICKS.unregister("counted_brick")


def test_a_repeat_of_a_billion_copies_is_refused_at_once() -> None:
    spec = {"input": [4], "model": [{"repeat": {"times": 1_000_000_000, "body": ["relu"]}}]}
    message = (
        r"^model\[0\]\.repeat\.times: 1,000,000,000 copies, more than one repeat may make "
        rf"\(MAX_REPEAT = {MAX_REPEAT:,}\)$"
    )
    with pytest.raises(SpecError, match=message):
        build(spec)


def test_too_many_bricks_are_refused_before_one_is_built(counted_brick: list[int]) -> None:
    inner = {"repeat": {"times": 100, "body": ["counted_brick"]}}
    spec = {"input": [4], "model": ["counted_brick", {"repeat": {"times": 100, "body": [inner]}}]}
    message = (
        rf"^model: 10,001 bricks once repeats are multiplied out, .*MAX_BRICKS = {MAX_BRICKS:,}"
    )
    with pytest.raises(SpecError, match=message):
        build(spec)
    assert counted_brick == []  # refused before the first was built


def test_families_count_for_many_bricks() -> None:
    spec = {"input": [3, 32, 32], "model": ["resnet152"] * 9}
    with pytest.raises(SpecError, match=r"^model: 2,250 bricks .*MAX_BRICKS"):
        build(spec, device="meta")


def test_a_yaml_alias_bomb_is_refused_by_build_and_summary() -> None:
    assert len(BILLION_LAUGHS) < 2_000
    message = rf"^spec text: more than {MAX_VALUES:,} values once its aliases are expanded"
    with pytest.raises(SpecError, match=message):
        build(BILLION_LAUGHS)
    with pytest.raises(SpecError, match=message):
        summary(BILLION_LAUGHS)


def test_a_dict_whose_parts_are_shared_is_counted_as_expanded() -> None:
    node: Any = ["relu"] * 10
    for _ in range(6):
        node = [node] * 10  # 10**7 relus, a few hundred list objects
    with pytest.raises(SpecError, match=r"^spec: more than 200,000 values"):
        build({"input": [4], "model": node})


def test_a_yaml_document_that_contains_itself_is_refused() -> None:
    with pytest.raises(SpecError, match=r"^spec text: contains itself"):
        build("input: [4]\nmodel: &a [relu, *a]\n")


def _nested(depth: int) -> Any:
    node: Any = "relu"
    for _ in range(depth):
        node = [node]
    return node


@pytest.mark.parametrize("depth", [250, 10_000])
def test_specs_nested_too_deep_are_refused_in_every_form(depth: int, tmp_path: Path) -> None:
    message = rf"nested more than {MAX_DEPTH} deep \(MAX_DEPTH = {MAX_DEPTH}\)"
    flow = "[" * depth + "relu" + "]" * depth
    json_file = tmp_path / "deep.json"
    json_file.write_text(
        f'{{"input": [4], "model": {flow.replace("relu", chr(34) + "relu" + chr(34))}}}'
    )
    block = (
        "input: [4]\nmodel:\n"
        + "".join(" " * i + "-\n" for i in range(min(depth, 700)))
        + " " * 700
        + "- relu\n"
    )
    for spec, where in [
        (f"input: [4]\nmodel: {flow}", "spec text"),
        (json_file, str(json_file)),
        ({"input": [4], "model": _nested(depth)}, "spec"),
        (block, "spec text"),
    ]:
        with pytest.raises(SpecError, match=rf"^{re.escape(where)}: {message}"):
            build(spec)


def test_a_spec_nested_as_deep_as_allowed_builds_and_is_inspected() -> None:
    model: Any = [{"linear": {"out": 3}}]
    for _ in range(30):  # 30 groups in groups: 62 levels of lists and mappings
        model = [{"sequential": model}]
    built = build({"input": [4], "model": model})
    assert count_params(built) == 15
    assert summary(built, input_shape=(4,)).error is None
    assert brickwork.doctor(built, input_shape=(4,)).ok
    assert build(to_spec(built)).state_dict().keys() == built.state_dict().keys()


@pytest.mark.parametrize("as_file", [False, True])
def test_a_document_too_long_is_refused_before_it_is_parsed(as_file: bool, tmp_path: Path) -> None:
    text = "input: [4]\nmodel: [relu]\n# " + "x" * MAX_SPEC_BYTES + "\n"
    source: Any = text
    where = "spec text"
    if as_file:
        source = tmp_path / "long.yaml"
        source.write_text(text)
        where = str(source)
    message = (
        rf"^{re.escape(where)}: {len(text):,} characters, more than a spec may have \(MAX_SPEC"
    )
    with pytest.raises(SpecError, match=message):
        build(source)


@pytest.mark.slow  # ResNet-152 written out: 560 bricks built on meta, then rebuilt from YAML
def test_resnet152_and_a_big_unet_written_out_build_within_the_limits() -> None:
    spec = resnet_graph((3, 8, 36, 3))
    model = build(spec, device="meta")
    with torch.device("meta"):
        assert count_params(model) == count_params(brickwork.create_model("resnet152"))
    text = yaml.safe_dump(to_spec(model), sort_keys=False, default_flow_style=None)
    assert len(text) < MAX_SPEC_BYTES / 5
    rebuilt = build(text, device="meta")
    assert rebuilt.state_dict().keys() == model.state_dict().keys()
    big_unet = build(unet_graph((64, 128, 256, 512, 1024, 2048), 128), device="meta")
    assert to_spec(big_unet)["output"] == [2, 128, 128]
    assert len(json.dumps(to_spec(big_unet))) < MAX_SPEC_BYTES / 20
