"""Model files: a SHA-256 of the tensors, every metadata field checked, meta first."""

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import brickwork
from brickwork.errors import CheckpointError
from brickwork.train.weights import load, read_metadata, save


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    model = brickwork.build(
        {"input": [6], "model": [{"linear": {"out": 4}}, "relu", {"linear": {"out": 3}}]}
    )
    return save(model, tmp_path / "model.safetensors", extra={"classes": ["a", "b", "c"]})


def rewrite(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    with safe_open(str(path), framework="pt") as f:
        content = json.loads((f.metadata() or {})["brickwork"])
    change(content)
    save_file(load_file(str(path)), str(path), metadata={"brickwork": json.dumps(content)})


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x10  # inside the last tensor's data
    path.write_bytes(bytes(data))


def test_a_file_round_trips_with_its_digest(model_file: Path) -> None:
    metadata = read_metadata(model_file)
    assert len(metadata["sha256"]) == 64
    assert isinstance(load(model_file), torch.nn.Sequential)


def test_flipped_bytes_are_caught_and_no_verify_skips_the_check(model_file: Path) -> None:
    flip_a_byte(model_file)
    with pytest.raises(
        CheckpointError, match=r"its tensors' SHA-256 differs .*: the file is damaged"
    ) as info:
        load(model_file)
    assert "--no-verify" in (info.value.hint or "")
    load(model_file, verify=False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c.__setitem__("spec", "/etc/passwd"),
            r"'spec' is '/etc/passwd', not a spec mapping",
        ),
        (lambda c: c.__setitem__("classes", []), r"'classes' is \[\]"),
        (lambda c: c.__setitem__("std", "abc"), r"'std' is 'abc'"),
        (lambda c: c.__setitem__("std", [0]), r"'std' is \[0\], not a non-empty list of positive"),
        (lambda c: c.pop("sha256"), r"carries no SHA-256 of its tensors"),
        (lambda c: c.__setitem__("sha256", "0" * 64), r"its tensors' SHA-256 differs"),
        (lambda c: c.__setitem__("format", "pickle"), r"'format' is 'pickle'"),
    ],
)
def test_damaged_metadata_is_one_line(
    model_file: Path, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    rewrite(model_file, change)
    with pytest.raises(CheckpointError, match=message) as info:
        load(model_file)
    assert "root:" not in str(info.value)  # /etc/passwd was never read


def test_a_spec_asking_for_a_huge_model_is_refused_before_allocating(model_file: Path) -> None:
    def huge(content: dict[str, Any]) -> None:
        content["spec"]["model"][0]["linear"]["out_features"] = 12_000_000
        content["spec"]["model"][2]["linear"]["in_features"] = 12_000_000

    rewrite(model_file, huge)
    script = (
        "import resource, sys, time\n"
        "from brickwork.train.weights import load\n"
        "from brickwork.errors import CheckpointError\n"
        "import brickwork\n"
        "brickwork.build({'input': [2], 'model': [{'linear': {'out': 2}}]})  # imports before the clock\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "start = time.perf_counter()\n"
        "try:\n    load(sys.argv[1])\nexcept CheckpointError as err:\n    print(err)\n"
        "print(time.perf_counter() - start)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(model_file)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert "its weights do not fit the model its spec builds" in out[0]
    assert re.search(
        r"0\.(bias|weight) is \[4(, 6)?\] in the file, \[12000000(, 6)?\] in the model", out[0]
    )
    assert float(out[1]) < 2.0
    assert int(out[2]) < 100  # MB grown while refusing; the model would take 600 MB
