"""``brickwork pack`` and ``brickwork train`` on image files, as a user runs them."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from command_line import COMMAND, run, run_here
from image_trees import make_tree, photo

QUICK = ["--image-size", "12", "--batch-size", "8", "--workers", "2"]
SPEC = {
    "model": [
        {"conv_block": {"out": 4, "kernel_size": 3, "padding": 1}},
        {"adaptiveavgpool2d": {"output_size": 1}},
        "flatten",
        {"linear": {"out": 2}},
    ]
}


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tree(tmp_path_factory.mktemp("photos"), {"a": 12, "b": 12}, sizes=(16, 40))


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("spec") / "tiny.json"
    path.write_text(json.dumps(SPEC))
    return str(path)


@pytest.mark.slow
def test_pack_train_stopped_by_ctrl_c_with_workers_resume_and_predict(
    photos: Path, spec: str, tmp_path: Path
) -> None:
    shards = tmp_path / "shards"
    packed = run("pack", f"folder:{photos}", "--out", str(shards), "--shard-size", "20KB")
    assert packed.returncode == 0, packed.stderr
    assert "train: 24 images in " in packed.stdout
    assert f"train with --data shards:{shards}" in packed.stdout
    out = tmp_path / "run"
    command = [str(COMMAND), "train", spec, "--data", f"shards:{shards}", *QUICK, "--epochs", "8"]
    process = subprocess.Popen(
        [*command, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal gives a command
    )
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.json").exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the whole group, workers included
    stdout, stderr = process.communicate(timeout=120)
    assert "17 train / 2 validation / 5 test images of (3, 12, 12), 2 classes" in stdout
    assert process.returncode == 130, stderr
    assert "checkpoint saved" in stderr
    assert "Traceback" not in stderr
    assert "DataLoader worker" not in stderr
    resumed = run("train", "--out", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    assert json.loads((out / "config.json").read_text())["image_size"] == [12]
    phone = tmp_path / "phone.jpg"
    photo(np.random.default_rng(0), 300, 400, 0).save(phone)  # 4:3, far bigger than trained on
    predicted = run("predict", str(out), str(phone))
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout.startswith(f"{phone}: ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--image-size", "16"], "--image-size applies to image files"),
        (["train", "--crop-scale", "0"], "--crop-scale must be in (0, 1], got 0.0"),
        (["pack", "folder:/no/such/dir", "--out", "x"], "folder:/no/such/dir: no such directory"),
        (
            ["pack", "folder:.", "--out", "x", "--shard-size", "big"],
            "--shard-size 'big': expected a size",
        ),
    ],
)
def test_bad_data_options_are_one_line_and_status_2(
    args: list[str], message: str, tmp_path: Path
) -> None:
    result = run_here(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith("error: ")
    assert message in first, first
    assert not (tmp_path / "x").exists()


def test_max_pixels_reaches_the_workers_and_is_saved_with_the_run(
    photos: Path, spec: str, tmp_path: Path
) -> None:
    base = ["train", spec, "--data", f"folder:{photos}", *QUICK, "--epochs", "1"]
    lowered = run(*base, "--max-pixels", "100", "--out", str(tmp_path / "low"))
    assert lowered.returncode == 2, lowered.stderr
    assert "more than Pillow's limit of 100 (PIL.Image.MAX_IMAGE_PIXELS)" in lowered.stderr
    assert "Traceback" not in lowered.stderr
    raised = run(*base, "--max-pixels", "200000000", "--out", str(tmp_path / "high"))
    assert raised.returncode == 0, raised.stderr
    assert json.loads((tmp_path / "high" / "config.json").read_text())["max_pixels"] == 200_000_000
