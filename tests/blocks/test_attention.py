import pytest
import torch

from brickwork import SelfAttention2d, build, to_spec


@pytest.mark.parametrize("channels", [1, 3, 16, 33, 64])
@pytest.mark.parametrize("hw", [(1, 1), (5, 7), (8, 8)])
def test_identity_at_initialisation_for_any_channels_and_size(
    channels: int, hw: tuple[int, int]
) -> None:
    block = SelfAttention2d(channels)
    x = torch.randn(2, channels, *hw)
    assert torch.equal(block(x), x)
    assert block.gamma.item() == 0


def test_attention_mixes_positions_once_gamma_moves() -> None:
    torch.manual_seed(0)
    block = SelfAttention2d(16)
    with torch.no_grad():
        block.gamma.fill_(1.0)
    x = torch.randn(2, 16, 4, 4)
    out = block(x)
    assert out.shape == x.shape
    assert not torch.allclose(out, x)
    changed = x.clone()
    changed[:, :, 0, 0] += 1.0  # one position changes every other position's output
    assert not torch.allclose(block(changed)[:, :, 3, 3], out[:, :, 3, 3])


@pytest.mark.parametrize(
    ("channels", "reduction", "inner"), [(64, 8, 8), (16, 4, 4), (3, 8, 1), (33, 8, 4)]
)
def test_query_and_key_are_reduced(channels: int, reduction: int, inner: int) -> None:
    block = SelfAttention2d(channels, reduction=reduction)
    assert block.query.out_channels == block.key.out_channels == inner
    assert block.value.out_channels == channels


def test_spectral_norm() -> None:
    block = SelfAttention2d(16, spectral_norm=True)
    assert hasattr(block.query, "parametrizations")
    x = torch.randn(2, 16, 3, 3)
    assert torch.equal(block(x), x)


def test_in_a_spec_it_takes_the_channels() -> None:
    model = build({"input": [12, 5, 5], "model": [{"self_attention2d": {"reduction": 4}}]})
    assert to_spec(model)["model"] == [{"self_attention2d": {"channels": 12, "reduction": 4}}]
