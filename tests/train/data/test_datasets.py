"""The dataset registry: names, arguments after ``:``, and the messages for bad ones."""

import pytest
import torch

from brickwork.errors import DataError
from brickwork.train.data import DATASETS, Dataset, load_dataset


@pytest.mark.parametrize(
    ("name", "data_dir", "message"),
    [
        ("mnsit", None, "unknown dataset 'mnsit'; did you mean 'mnist'"),
        ("mnist", "/no/such/folder", "--data-dir /no/such/folder: no such directory"),
        ("synthetic:3,32", None, "expected synthetic:C,H,W,K,N"),
        ("synthetic:3,8,8,1,100", None, "K ≥ 2"),
        ("folder:/no/such/folder", None, "no such directory"),
    ],
)
def test_bad_dataset_names(name: str, data_dir: str | None, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_dataset(name, data_dir)


def test_an_unknown_dataset_gets_the_registrys_message() -> None:
    with pytest.raises(DataError) as info:
        load_dataset("mnsit")
    assert str(info.value) == (
        "unknown dataset 'mnsit'; did you mean 'mnist'? "
        "valid: cifar10, digits, fashion-mnist, folder, mnist, seg, shards, synthetic"
    )
    assert "folder:PATH" in (info.value.hint or "")
    assert "seg:PATH" in (info.value.hint or "")
    assert "synthetic:C,H,W,K,N" in (info.value.hint or "")


@pytest.mark.parametrize(
    ("name", "canonical"),
    [("MNIST", "mnist"), ("fashion_mnist", "fashion-mnist"), ("CIFAR10", "cifar10")],
)
def test_names_are_spelt_as_every_registrys(name: str, canonical: str) -> None:
    assert DATASETS.canonical(name) == canonical


def test_the_part_after_the_first_colon_goes_to_the_loader() -> None:
    calls = []

    def loader(argument: str, data_dir: object, seed: int) -> Dataset:
        calls.append((argument, data_dir, seed))
        x, y = torch.zeros(4, 1, 2, 2), torch.tensor([0, 1, 0, 1])
        return Dataset("echo", ["a", "b"], x, y, x, y, x, y)

    DATASETS.register("echo", loader)
    try:
        assert load_dataset("echo:a:b,c", "some/dir", 7).name == "echo"
        assert load_dataset("Echo").name == "echo"
    finally:
        DATASETS.unregister("echo")
    assert calls == [("a:b,c", "some/dir", 7), ("", None, 0)]
