"""`brickwork train`, `evaluate` and `predict` as a user runs them (what they say to bad input is
checked in this process: `run_here`)."""

import json
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from command_line import COMMAND, run, run_here
from PIL import Image

QUICK = ["--epochs", "2", "--batch-size", "256"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "digits"
    result = run("train", *QUICK, "--out", str(out))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "parameters" in lines[0]
    assert lines[1] == "model: the guide's classifier, for 8x8 images"
    assert lines[2].startswith("memory: a step of 256 needs ")
    assert "test accuracy" in result.stdout
    return out


def test_the_run_directory_holds_everything(trained: Path) -> None:
    names = {p.name for p in trained.iterdir()}
    assert {
        "spec.yaml",
        "config.json",
        "metrics.jsonl",
        "curves.png",
        "confusion.png",
        "model.safetensors",
        "checkpoint.json",
    } <= names
    lines = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in lines[:-1]] == [1, 2]
    assert set(lines[0]) == {
        "epoch",
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "lr",
        "seconds",
    }
    assert set(lines[-1]) == {"test_loss", "test_acc"}
    assert 0 <= lines[-1]["test_acc"] <= 1
    config = json.loads((trained / "config.json").read_text())
    assert config["epochs"] == 2
    assert config["data"] == "digits"


def test_evaluate_as_text_and_json(trained: Path) -> None:
    text = run("evaluate", str(trained))
    assert text.returncode == 0, text.stderr
    assert "accuracy" in text.stdout
    assert "precision" in text.stdout
    assert "macro avg" in text.stdout
    assert "weighted avg" in text.stdout
    data = json.loads(run_here("evaluate", str(trained), "--json").stdout)
    metrics = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    assert data["accuracy"] == pytest.approx(metrics[-1]["test_acc"])
    assert len(data["confusion"]) == 10
    assert set(data["per_class"]["3"]) == {"precision", "recall", "f1", "support"}
    assert set(data["macro"]) == set(data["weighted"]) == {"precision", "recall", "f1"}
    assert data["confusion_png"] == str(trained / "confusion.png")


def test_evaluate_draws_the_confusion_picture_where_asked(trained: Path, tmp_path: Path) -> None:
    result = run_here("evaluate", str(trained), "--out", str(tmp_path / "c.png"))
    assert result.returncode == 0, result.stderr
    assert f"normalised per true class: {tmp_path / 'c.png'}" in result.stdout
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    bad = run_here("evaluate", str(trained), "--out", str(tmp_path / "c.txt"))
    assert bad.returncode == 2
    assert bad.stderr.splitlines()[0].endswith("give a .png file in an existing folder")
    assert not (tmp_path / "c.txt").exists()


def test_evaluate_replaces_only_a_picture_it_drew(trained: Path, tmp_path: Path) -> None:
    from PIL import Image

    victim = tmp_path / "holiday.png"
    Image.new("RGB", (4, 4), "blue").save(victim)
    before = victim.read_bytes()
    refused = run_here("evaluate", str(trained), "--out", str(victim))
    assert refused.returncode == 2
    assert (
        "holiday.png exists and is not a brickwork picture: it was not replaced"
        in (refused.stderr.splitlines()[0])
    )
    assert victim.read_bytes() == before
    replaced = run_here("evaluate", str(trained), "--out", str(victim), "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    again = run_here("evaluate", str(trained), "--out", str(victim))  # now a picture of its own
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("synthetic:1,12,12,10,200", "takes images of (1, 8, 8) but synthetic:1,12,12,10,200 has"),
        ("synthetic:1,8,8,3,200", "scores 10 classes but synthetic:1,8,8,3,200 has 3"),
    ],
)
def test_evaluate_on_data_that_does_not_fit_names_both(
    trained: Path, data: str, message: str
) -> None:
    result = run_here("evaluate", str(trained), "--data", data)
    assert result.returncode == 2
    assert message in result.stderr.splitlines()[0]


def test_predict_reads_images_like_training(trained: Path, tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    paths = []
    for i in range(5):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray((digits.images[i] * 16).clip(0, 255).astype(np.uint8)).resize(
            (32, 32)
        ).save(path)
        paths.append(str(path))
    result = run("predict", str(trained), *paths)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 5
    assert lines[0].startswith(f"{paths[0]}: ")
    assert lines[0].endswith("%)")


def test_predict_walks_folders_gives_top_k_and_reports_an_unreadable_file(
    trained: Path, tmp_path: Path
) -> None:
    nested = tmp_path / "images" / "more"
    nested.mkdir(parents=True)
    for i, folder in enumerate((tmp_path / "images", nested, nested)):
        Image.fromarray(np.full((8, 8), 40 * i, dtype=np.uint8)).save(folder / f"d{i}.png")
    (nested / "broken.png").write_bytes(b"not a png")
    (nested / "notes.txt").write_text("left out: not an image")
    result = run_here("predict", str(trained), str(tmp_path / "images"), "--top", "3")
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {nested / 'broken.png'}")
    lines = result.stdout.splitlines()
    assert [line.split(": ")[0] for line in lines] == [
        str(tmp_path / "images" / "d0.png"),
        str(nested / "d1.png"),
        str(nested / "d2.png"),
    ]
    assert all(line.count("%)") == 3 for line in lines)
    as_json = run_here("predict", str(trained), str(nested / "d1.png"), "--json", "--top", "2")
    assert as_json.returncode == 0, as_json.stderr
    [one] = json.loads(as_json.stdout)
    assert one["top"][0]["class"] == one["class"]
    assert len(one["top"]) == 2
    assert one["top"][0]["probability"] >= one["top"][1]["probability"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("no-such-dir",), "error: no-such-dir: no such file or folder"),
        (("empty",), "error: empty: a folder with no images"),
        (("--top", "0", "x.png"), "--top: expected a positive integer, got '0'"),
    ],
)
def test_predict_bad_inputs_are_one_line(
    trained: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    (tmp_path / "empty").mkdir()
    result = run_here("predict", str(trained), *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr.splitlines()[0]


def test_resume_with_a_contradicting_option(trained: Path) -> None:
    result = run_here("train", "--out", str(trained), "--resume", "--lr", "0.5")
    assert result.returncode == 2
    assert "--lr 0.5 contradicts the run's saved lr" in result.stderr


def test_interrupted_cli_run_resumes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    process = subprocess.Popen(
        [str(COMMAND), "train", "--epochs", "40", "--batch-size", "64", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    import time

    deadline = time.time() + 60
    while not (out / "checkpoint.json").exists() and time.time() < deadline:
        time.sleep(0.1)
    process.send_signal(2)  # Ctrl-C
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "checkpoint saved" in stderr
    assert "Traceback" not in stderr
    config = json.loads((out / "config.json").read_text())
    assert config["epochs"] == 40


def write_pickle_bomb(path: Path, marker: Path) -> None:
    class Bomb:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (Path.touch, (str(marker),))  # type: ignore[return-value]

    path.write_bytes(pickle.dumps(Bomb()))


@pytest.mark.parametrize("damage", ["truncated", "garbage", "pickle", "plain-safetensors"])
def test_damaged_or_foreign_model_files_are_refused(
    trained: Path, tmp_path: Path, damage: str
) -> None:
    bad = tmp_path / "model.safetensors"
    marker = tmp_path / "executed"
    good = (trained / "model.safetensors").read_bytes()
    if damage == "truncated":
        bad.write_bytes(good[: len(good) // 2])
    elif damage == "garbage":
        bad.write_bytes(b"\x00" * 64)
    elif damage == "pickle":
        write_pickle_bomb(bad, marker)
    else:
        import torch
        from safetensors.torch import save_file

        save_file({"w": torch.zeros(2)}, str(bad))
    for command in (("evaluate", str(bad)), ("predict", str(bad), str(bad))):
        result = run_here(*command)
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr.startswith("error: ")
        assert "Traceback" not in result.stderr
    assert not marker.exists()  # nothing in the file was executed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("train", "--data", "mnsit", *QUICK), "unknown dataset 'mnsit'; did you mean 'mnist'"),
        (
            ("train", "--data", "mnist", "--data-dir", "/no/such/dir", *QUICK),
            "--data-dir /no/such/dir: no such directory",
        ),
        (("train", "--resume", "--out", "/no/such/run"), "no config.json"),
        (("evaluate", "/no/such/run.safetensors"), "no such file"),
    ],
)
def test_bad_training_input(args: tuple[str, ...], message: str, tmp_path: Path) -> None:
    result = run_here(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_predict_refuses_an_image_of_another_shape(trained: Path, tmp_path: Path) -> None:
    wide = tmp_path / "wide.png"
    Image.fromarray(np.zeros((8, 40), dtype=np.uint8)).save(wide)
    result = run_here("predict", str(trained), str(wide))
    assert result.returncode == 2
    assert "40×8 pixels, but the model takes 8×8 images" in result.stderr


def test_predict_refuses_a_decompression_bomb_unless_its_limit_is_raised(
    trained: Path, tmp_path: Path
) -> None:
    bomb = tmp_path / "bomb.png"
    Image.new("L", (12000, 12000)).save(bomb)  # 144 M pixels in a file of a few hundred KB
    assert bomb.stat().st_size < 1_000_000
    refused = run_here("predict", str(trained), str(bomb))
    assert refused.returncode == 2
    error, hint = refused.stderr.splitlines()
    assert error == (
        f"error: {bomb}: 144,000,000 pixels, more than Pillow's limit of 89,478,485 "
        "(PIL.Image.MAX_IMAGE_PIXELS); refused as a possible decompression bomb"
    )
    assert "--max-pixels N" in hint
    trusted = run_here("predict", str(trained), str(bomb), "--max-pixels", "150000000")
    assert trusted.returncode == 0, trusted.stderr
    assert trusted.stdout.startswith(f"{bomb}: ")
    small = tmp_path / "small.png"
    Image.new("L", (32, 32)).save(small)
    lowered = run_here("predict", str(trained), str(small), "--max-pixels", "100")
    assert lowered.returncode == 2
    assert "1,024 pixels, more than Pillow's limit of 100" in lowered.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--lr", "nan"), "--lr must be a positive number"),
        (("--lr", "inf"), "--lr must be a positive number"),
        (("--weight-decay", "-1"), "--weight-decay must be 0 or more"),
        (("--label-smoothing", "1.5"), "--label-smoothing must be in [0, 1)"),
        (("--seed", "-1"), "--seed must be in [0, 2**32)"),
        (("--device", "foo"), "--device 'foo': choose auto, cpu, cuda, cuda:N or mps"),
        (("--device", "meta"), "cannot train there"),
        (("--epochs", "0"), "--epochs: expected a positive integer, got '0'"),
        (("--max-pixels", "0"), "--max-pixels: expected a positive integer, got '0'"),
        (("--data", "synthetic:1,8,8,2,8"), "N ≥ 10·K"),
    ],
)
def test_bad_training_options_are_refused_before_anything_is_written(
    args: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    result = run_here("train", *args, "--out", str(out))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (out / "checkpoint.json").exists()


def test_resuming_a_complete_run_or_a_damaged_config(trained: Path, tmp_path: Path) -> None:
    done = run_here("train", "--out", str(trained), "--resume")
    assert done.returncode == 2
    assert "the run is complete (2 epochs); nothing to resume" in done.stderr
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "config.json").write_text('{"epochs": 3,')
    result = run_here("train", "--out", str(damaged), "--resume")
    assert result.returncode == 2
    assert "config.json: damaged" in result.stderr


def test_predict_needs_a_training_runs_file(tmp_path: Path) -> None:
    import brickwork

    bare = tmp_path / "bare.safetensors"
    brickwork.save(brickwork.CNNClassifier(1, [4], [], 10, input_shape=(8, 8)), bare)
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(image)
    result = run_here("predict", str(bare), str(image))
    assert result.returncode == 2
    assert "does not say how its images were normalised" in result.stderr


def test_a_device_this_machine_lacks_is_one_line_and_nothing_written(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = run("train", "--device", "cuda:1", "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    assert (
        result.stderr.splitlines()[0] == "error: --device cuda:1: this machine has no CUDA device"
    )
    assert not (tmp_path / "run").exists()
