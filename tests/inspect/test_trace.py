import pytest
import torch
from torch import nn

from brickwork import CNNClassifier, trace
from brickwork.errors import ConfigError


@pytest.fixture
def model() -> CNNClassifier:
    return CNNClassifier(1, [4, 8], [16], 3, input_shape=(6, 6))


def _hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


def test_every_submodule_in_call_order(model: CNNClassifier) -> None:
    outputs = trace(model, torch.randn(2, 1, 6, 6))
    names = list(outputs)
    assert set(names) == {name for name, _ in model.named_modules() if name}
    # a container is called before the modules it calls
    assert names[:5] == [
        "encoder",
        "encoder.conv_blocks",
        "encoder.conv_blocks.0",
        "encoder.conv_blocks.0.0",
        "encoder.conv_blocks.0.1",
    ]
    assert names[-2:] == ["decoder.dec_blocks.0.1", "decoder.last"]
    assert outputs["encoder"].shape == (2, 8, 6, 6)
    assert outputs["decoder.dec_blocks.0.0"].shape == (2, 16)
    assert outputs["decoder"].shape == (2, 3)


def test_outputs_are_the_real_intermediate_values(model: CNNClassifier) -> None:
    model.eval()
    x = torch.randn(2, 1, 6, 6)
    outputs = trace(model, x)
    torch.testing.assert_close(outputs["encoder"], model.encoder(x))
    torch.testing.assert_close(outputs["decoder"], model(x))


def test_only_the_named_modules(model: CNNClassifier) -> None:
    outputs = trace(model, torch.randn(2, 1, 6, 6), names=["decoder.last", "encoder"])
    assert list(outputs) == ["encoder", "decoder.last"]
    assert list(trace(model, torch.randn(2, 1, 6, 6), names="encoder")) == ["encoder"]
    assert trace(model, torch.randn(2, 1, 6, 6), names=[""])[""].shape == (2, 3)


def test_trace_leaves_batchnorm_statistics_as_they_were(model: CNNClassifier) -> None:
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trace(model, torch.randn(4, 1, 6, 6))
    trace(model, torch.randn(4, 1, 6, 6))
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert model.training


def test_trace_takes_only_modules() -> None:
    with pytest.raises(TypeError, match=r"trace takes an nn\.Module, got list"):
        trace([1, 2], torch.randn(1))  # type: ignore[arg-type]


def test_unknown_name_suggests(model: CNNClassifier) -> None:
    with pytest.raises(
        ConfigError, match=r"unknown submodule 'decoder\.lats'; did you mean 'decoder\.last'"
    ):
        trace(model, torch.randn(2, 1, 6, 6), names=["decoder.lats"])
    assert _hook_count(model) == 0


def test_two_calls_are_independent_and_nothing_stays_on_the_model(model: CNNClassifier) -> None:
    first = trace(model, torch.randn(2, 1, 6, 6))
    second = trace(model, torch.randn(5, 1, 6, 6))
    assert first is not second
    assert first["decoder"].shape == (2, 3)
    assert second["decoder"].shape == (5, 3)
    assert _hook_count(model) == 0


def test_hooks_are_removed_when_forward_raises(model: CNNClassifier) -> None:
    with pytest.raises(ValueError, match="in_c=1"):
        trace(model, torch.randn(2, 3, 6, 6))
    assert _hook_count(model) == 0


def test_a_module_called_twice_gets_an_entry_per_call() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layer(self.layer(x) + 1)

    outputs = trace(Twice(), torch.randn(2, 4))
    assert list(outputs) == ["layer", "layer#2"]
    assert not torch.equal(outputs["layer"], outputs["layer#2"])


def test_tuple_input_is_passed_as_positional_arguments() -> None:
    class Add(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(3, 3)

        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return self.proj(a + b)

    outputs = trace(Add(), (torch.ones(1, 3), torch.ones(1, 3)))
    assert outputs["proj"].shape == (1, 3)
