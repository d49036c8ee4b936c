import pytest
import torch
from torch import nn

from brickwork import CNNClassifier, count_params, device_of, tree
from brickwork.errors import ConfigError, DeviceError


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, 8)
        self.head = nn.Linear(8, 100, bias=False)
        self.head.weight = self.embed.weight  # tied: one tensor, two modules


def test_shared_parameters_count_once() -> None:
    assert count_params(Tied()) == 100 * 8
    shared = nn.Linear(4, 4)
    assert count_params(nn.Sequential(shared, nn.ReLU(), shared)) == 20


def test_trainable_only() -> None:
    model = CNNClassifier(1, [8], [16], 3, input_shape=(4, 4))
    total = count_params(model)
    for p in model.encoder.parameters():
        p.requires_grad_(False)
    frozen = sum(p.numel() for p in model.encoder.parameters())
    assert count_params(model, trainable_only=True) == total - frozen
    assert count_params(model) == total


def test_lazy_parameters_give_a_clear_error() -> None:
    with pytest.raises(
        ConfigError, match="lazy parameters that are not initialised yet; run one forward pass"
    ):
        count_params(nn.Sequential(nn.LazyLinear(4)))


def test_device_of_a_model_on_one_device() -> None:
    assert device_of(CNNClassifier(1, [8], [], 3, input_shape=(4, 4))) == torch.device("cpu")
    assert device_of(nn.BatchNorm1d(3, affine=False)) == torch.device("cpu")  # buffers only


def test_device_of_a_model_without_tensors_is_none() -> None:
    assert device_of(nn.Sequential(nn.ReLU(), nn.Flatten())) is None


def test_device_of_mixed_model_names_the_modules_per_device() -> None:
    model = CNNClassifier(1, [8], [16], 3, input_shape=(4, 4))
    model.decoder.last.to("meta")
    with pytest.raises(DeviceError) as info:
        device_of(model)
    message = str(info.value)
    assert message.startswith("CNNClassifier has tensors on 2 devices — ")
    assert "cpu: encoder, decoder.dec_blocks" in message
    assert "meta: decoder.last" in message
    assert info.value.hint == "move the whole model with model.to(device)"


def test_device_of_names_a_modules_own_tensors() -> None:
    class Holder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(1, device="meta"))
            self.body = nn.Linear(2, 2)

    with pytest.raises(DeviceError, match=r"cpu: body; meta: \(root\) \(own tensors\)"):
        device_of(Holder())


def test_tree_shows_types_and_own_and_total_counts() -> None:
    model = CNNClassifier(1, [32, 64], [1024, 512], 10)
    lines = tree(model).splitlines()
    assert lines[0].split() == ["module", "own", "total"]
    assert lines[1].split() == ["CNNClassifier", "0", "51,930,186"]
    assert lines[2].split() == ["├─", "encoder:", "Encoder", "0", "19,008"]
    row = next(line for line in lines if "last: Linear" in line)
    assert row.split()[-2:] == ["5,130", "5,130"]
    assert sum(1 for line in lines if "Conv2d" in line) == 2
    assert len(lines) == 1 + len(list(model.modules()))


def test_tree_counts_shared_parameters_once_and_marks_lazy_ones() -> None:
    assert tree(Tied()).splitlines()[1].split() == ["Tied", "0", "800"]
    lazy = tree(nn.Sequential(nn.LazyLinear(4))).splitlines()
    assert lazy[2].split()[-2:] == ["?", "?"]


@pytest.mark.parametrize(
    ("function", "name"), [(count_params, "count_params"), (device_of, "device_of"), (tree, "tree")]
)
def test_inspection_takes_only_modules(function: object, name: str) -> None:
    with pytest.raises(TypeError, match=f"{name} takes an nn.Module, got list"):
        function([1, 2])  # type: ignore[operator]
