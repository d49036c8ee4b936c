"""Small modules with the patterns that meta tensors cannot run: each needs real values."""

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class MaskAsBool(nn.Module):
    """An attention mask turned into a Python bool, as tokenizer-fed models do."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 8)
        self.proj = nn.Linear(8, 8)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if not bool((attention_mask == 1).all()):  # .item() on the mask
            raise AssertionError("a mask built from a shape holds ones")
        if int(input_ids.max().item()) >= self.embed.num_embeddings:
            raise AssertionError("token ids fit the embedding")
        return self.proj(self.embed(input_ids))  # type: ignore[no-any-return]


class NonZero(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        keep = torch.nonzero(y.sum(-1) > -1e9).squeeze(-1)  # every row, found by value
        return y[keep]


class Packed(nn.Module):
    """pack_padded_sequence with CPU lengths, as RNN tutorials write it."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(4, 6, batch_first=True)
        self.head = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True)
        return self.head(out[:, 0])  # type: ignore[no-any-return]


class ToList(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sizes = x.new_tensor([1.0, 2.0]).tolist()
        return self.fc(x) * sizes[1]  # type: ignore[no-any-return]


class ToCpu(nn.Module):
    def __init__(self, how: str = "cpu") -> None:
        super().__init__()
        self.how = how
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        scale = y.detach().cpu() if self.how == "cpu" else y.detach().to("cpu")
        return y + scale.numpy().mean()  # type: ignore[no-any-return]


class Distribution(nn.Module):
    """A policy head that returns a distribution."""

    def __init__(self) -> None:
        super().__init__()
        self.mean = nn.Linear(4, 2)
        self.log_std = nn.Parameter(torch.zeros(2))

    def forward(self, x: torch.Tensor) -> torch.distributions.Normal:
        return torch.distributions.Normal(self.mean(x), self.log_std.exp())


class Writes(nn.Module):
    """A forward that writes: batch norm statistics, an EMA of its weights, attributes, RNG."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.norm = nn.BatchNorm1d(4)
        self.ema = nn.Linear(4, 4).requires_grad_(False)
        self.calls = 0
        self.seen: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.seen.append(x.shape[0])
        with torch.no_grad():
            for mine, slow in zip(self.fc.parameters(), self.ema.parameters(), strict=True):
                slow.mul_(0.9).add_(mine, alpha=0.1)
            self.fc.bias.add_(1.0)  # an update outside autograd, on a trainable parameter
        y = self.norm(self.fc(x)) + torch.rand(1)  # draws from the global RNG
        x.mul_(0)  # writes to its input
        if float(y.detach().sum()) > 1e9:  # needs real values
            y = -y
        return y + self.ema(x)  # type: ignore[no-any-return]
