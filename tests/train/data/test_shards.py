"""``brickwork pack`` and ``shards:DIR``: WebDataset-style tar shards that train exactly as
the folder they were packed from."""

import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
import torch
from image_trees import make_tree

from brickwork.errors import ConfigError, DataError
from brickwork.inspect.render import parse_bytes
from brickwork.train.data import ImageDataset, LoaderOptions, load_dataset, open_batches, pack


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("photos")
    make_tree(root / "train", {"a": 10, "b": 10})
    make_tree(root / "val", {"a": 3, "b": 3}, seed=1)
    out = tmp_path_factory.mktemp("shards") / "out"
    lines: list[str] = []
    result = pack(f"folder:{root}", out, 8000, log=lines.append)
    assert result.samples == {"train": 20, "val": 6}
    assert result.shards["train"] > 1  # 8 kB a shard: several
    assert len(lines) == sum(result.shards.values())
    return root, out


def loaded(name: str) -> ImageDataset:
    data = load_dataset(name, seed=3, image_size=[12])
    assert isinstance(data, ImageDataset)
    return data


def copied(out: Path, folder: Path) -> dict[str, Any]:
    """The shards of ``out`` copied into ``folder``; their index, to damage."""
    folder.mkdir(exist_ok=True)
    for path in out.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    return json.loads((folder / "index.json").read_text())  # type: ignore[no-any-return]


def test_shards_are_tar_files_as_webdataset_reads_them(packed: tuple[Path, Path]) -> None:
    root, out = packed
    with tarfile.open(out / "train-000000.tar") as tar:
        names = tar.getnames()
        first = tar.extractfile(names[0])
        assert first is not None
        assert first.read() == (root / "train" / "a" / "000.jpg").read_bytes()
        label = tar.extractfile(names[1])
        assert label is not None
        assert label.read() == b"0"
    assert names[:4] == ["00000000.jpg", "00000000.cls", "00000001.jpg", "00000001.cls"]
    index = json.loads((out / "index.json").read_text())
    assert index["classes"] == ["a", "b"]
    assert index["splits"]["train"]["source"][0] == "a/000.jpg"


def test_packing_twice_gives_the_same_bytes(packed: tuple[Path, Path], tmp_path: Path) -> None:
    root, out = packed
    pack(f"folder:{root}", tmp_path / "again", 8000)
    for path in out.iterdir():
        assert (tmp_path / "again" / path.name).read_bytes() == path.read_bytes()


def test_shards_train_on_the_same_batches_as_the_folder(packed: tuple[Path, Path]) -> None:
    root, out = packed
    folder, shards = loaded(f"folder:{root}"), loaded(f"shards:{out}")
    assert (shards.classes, shards.input_shape) == (folder.classes, folder.input_shape)
    assert [shards.split_size(s) for s in ("train", "val", "test")] == [16, 6, 4]
    assert shards.mean == folder.mean
    options = LoaderOptions(batch_size=6, seed=3, workers=2)
    from_folder = list(open_batches(folder, options).epoch(1))
    from_shards = list(open_batches(shards, options).epoch(1))
    assert len(from_folder) == len(from_shards) == 3
    for f, s in zip(from_folder, from_shards, strict=True):
        assert torch.equal(f.x, s.x)
        assert torch.equal(f.y, s.y)
    for (fx, fy), (sx, sy) in zip(
        open_batches(folder, options).split("val"),
        open_batches(shards, options).split("val"),
        strict=True,
    ):
        assert torch.equal(fx, sx)
        assert torch.equal(fy, sy)


def test_a_damaged_image_in_a_shard_is_named_by_shard_and_source(
    packed: tuple[Path, Path], tmp_path: Path
) -> None:
    _, out = packed
    copy = tmp_path / "copy"
    index = copied(out, copy)
    offset = index["splits"]["val"]["offset"][0]
    shard = copy / index["splits"]["val"]["shards"][index["splits"]["val"]["shard"][0]]
    content = bytearray(shard.read_bytes())
    content[offset : offset + 64] = b"\0" * 64
    shard.write_bytes(bytes(content))
    data = loaded(f"shards:{copy}")
    with pytest.raises(DataError) as info:
        data.splits["val"].open(0)
    assert str(info.value).startswith(f"{shard}:a/000.jpg: cannot read it as an image")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            "no-index",
            r"index.json: no such file; shards:DIR reads a folder written by brickwork pack",
        ),
        ("bad-json", r"index.json: damaged \("),
        (
            "short-shard",
            r"train-000000.tar: \d+ bytes, the index needs \d+; the shards are incomplete",
        ),
        ("missing-shard", r"train-000001.tar: missing; the shards are incomplete"),
        ("bad-label", r"index.json: damaged \(a label of split 'train' is not a class\)"),
        ("escape", r"index.json: damaged \(split 'train' names a shard outside the folder\)"),
    ],
)
def test_a_damaged_shard_folder_is_one_clear_line(
    packed: tuple[Path, Path], tmp_path: Path, damage: str, message: str
) -> None:
    index = copied(packed[1], tmp_path)
    index_path = tmp_path / "index.json"
    if damage == "no-index":
        index_path.unlink()
    elif damage == "bad-json":
        index_path.write_text("{not json")
    elif damage == "short-shard":
        shard = tmp_path / "train-000000.tar"
        shard.write_bytes(shard.read_bytes()[:1000])
    elif damage == "missing-shard":
        (tmp_path / "train-000001.tar").unlink()
    else:
        if damage == "bad-label":
            index["splits"]["train"]["label"][0] = 7
        else:
            index["splits"]["train"]["shards"][0] = "../../etc/passwd"
        index_path.write_text(json.dumps(index))
    with pytest.raises(DataError, match=message) as info:
        load_dataset(f"shards:{tmp_path}")
    assert "\n" not in str(info.value)


def test_pack_writes_only_into_a_new_or_empty_folder(packed: tuple[Path, Path]) -> None:
    root, out = packed
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(
        ConfigError, match=r"--out .*: not empty; pack writes its shards into a new or empty folder"
    ):
        pack(f"folder:{root}", out, 10**9)
    assert sorted(p.name for p in out.iterdir()) == before
    with pytest.raises(ConfigError, match=r"'cifar10': brickwork pack reads folder:PATH"):
        pack("cifar10", out / "x", 10**9)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1GB", 10**9),
        ("500MB", 500 * 10**6),
        ("256MiB", 256 * 2**20),
        ("4096", 4096),
        ("1.5 kb", 1500),
    ],
)
def test_shard_sizes_are_read_with_their_units(text: str, size: int) -> None:
    assert parse_bytes(text, "--shard-size") == size


@pytest.mark.parametrize("text", ["", "1XB", "-5MB", "0", "GB", "1e9", "16XB", "-1GiB"])
def test_a_bad_shard_size_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match=rf"--shard-size '{text}': expected a size such as 16GiB"):
        parse_bytes(text, "--shard-size")


def test_a_truncated_image_in_a_shard_is_named_when_decoded(
    packed: tuple[Path, Path], tmp_path: Path
) -> None:
    index = copied(packed[1], tmp_path)
    index["splits"]["train"]["length"][0] -= 200  # the record ends before the image does
    (tmp_path / "index.json").write_text(json.dumps(index))
    data = loaded(f"shards:{tmp_path}")
    shard = tmp_path / index["splits"]["train"]["shards"][0]
    where = next(
        i
        for i in range(data.split_size("train"))
        if data.splits["train"].where(i) == f"{shard}:a/000.jpg"
    )
    with pytest.raises(DataError, match=rf"^{shard}:a/000.jpg: cannot decode it \("):
        data.eval_transform()(data.splits["train"].open(where))
