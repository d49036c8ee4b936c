"""brickwork.spec.io: spec files and text, read and written; errors with line and column."""

import json
from pathlib import Path

import pytest
from guide_specs import GUIDE_YAML

from brickwork import SpecError, build, count_params, load_spec, save_spec, to_spec


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_files_and_save_spec_round_trip(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"model{suffix}"
    save_spec(build(GUIDE_YAML), path)
    assert not list(tmp_path.glob(".*.tmp"))  # written under a temporary name, then renamed
    if suffix == ".json":
        assert json.loads(path.read_text())["output"] == [10]
    loaded = load_spec(path)
    assert loaded == to_spec(build(GUIDE_YAML))
    assert count_params(build(path)) == 51_930_186
    assert count_params(build(str(path))) == 51_930_186


def test_malformed_files_give_line_and_column(tmp_path: Path) -> None:
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("input: [1, 28, 28]\nmodel:\n  - linear: {out: 10\n  - relu\n")
    with pytest.raises(SpecError, match=rf"^{bad_yaml}: line \d+, column \d+: "):
        build(bad_yaml)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"input": [4],\n "model": ["relu",]}')
    with pytest.raises(SpecError, match=rf"^{bad_json}: line 2, column 19: "):
        build(bad_json)


def test_a_long_one_line_json_spec_is_text_not_a_path() -> None:
    spec = json.dumps({"input": [4], "model": [{"linear": {"out": 3}}] + ["relu"] * 80})
    assert len(spec) > 300
    assert to_spec(build(spec))["output"] == [3]


def test_a_missing_file_without_suffix_says_so() -> None:
    with pytest.raises(
        SpecError, match=r"got the string 'mymodel' \(no file of that name exists\)"
    ):
        build("mymodel")
