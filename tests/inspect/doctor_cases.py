"""Models with exactly one classic bug each, in the guides' style, and the same models fixed."""

import warnings

import torch
from torch import nn


def conv_block(in_f: int, out_f: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_f, out_f, 3, padding=1), nn.BatchNorm2d(out_f), nn.ReLU())


class Classifier(nn.Module):
    """The guides' encoder/decoder CNN, with the flatten size typed by hand."""

    def __init__(self, flat: int = 64 * 28 * 28) -> None:
        super().__init__()
        self.encoder = nn.Sequential(conv_block(1, 32), conv_block(32, 64))
        self.decoder = nn.Sequential(nn.Sequential(nn.Linear(flat, 10)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x).flatten(1))  # type: ignore[no-any-return]


class WrongChannels(nn.Module):
    def __init__(self, second_in: int = 16) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3)
        self.conv2 = nn.Conv2d(second_in, 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))  # type: ignore[no-any-return]


class WrongNorm(nn.Module):
    def __init__(self, features: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3)
        self.norm = nn.BatchNorm2d(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))  # type: ignore[no-any-return]


class WrongLayerNorm(nn.Module):
    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 8)
        self.norm = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x))  # type: ignore[no-any-return]


class Attention(nn.Module):
    """A self-attention block whose key projection has the wrong width when ``key != 8``."""

    def __init__(self, key: int = 8) -> None:
        super().__init__()
        self.q = nn.Linear(8, 8)
        self.k = nn.Linear(8, key)
        self.v = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, 8)
        scores = torch.bmm(self.q(x), self.k(x).transpose(1, 2)).softmax(-1)
        return torch.bmm(scores, self.v(x))


class IndentedForward(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

        def forward(self, x):  # type: ignore[no-untyped-def]  # the bug: indented into __init__
            return self.fc(x)


class DedentedForward(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)  # type: ignore[no-any-return]


class Misspelt(nn.Module):
    def __init__(self, typo: bool = True) -> None:
        super().__init__()
        self.typo = typo
        self.encoder = nn.Linear(4, 8)
        self.decoder = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        decoder = self.decodr if self.typo else self.decoder
        return decoder(self.encoder(x))  # type: ignore[no-any-return]


class CalledWithoutInput(nn.Module):
    def __init__(self, bug: bool = True) -> None:
        super().__init__()
        self.bug = bug
        self.encoder = nn.Linear(4, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder() if self.bug else self.encoder(x)  # type: ignore[no-any-return, call-arg]


class Unused(nn.Module):
    def __init__(self, use_extra: bool = False) -> None:
        super().__init__()
        self.use_extra = use_extra
        self.encoder = nn.Linear(4, 8)
        self.extra = nn.Sequential(nn.Linear(8, 8), nn.ReLU())
        self.decoder = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.encoder(x)
        if self.use_extra:
            x = self.extra(x)
        return self.decoder(x)  # type: ignore[no-any-return]


class PlainList(nn.Module):
    def __init__(self, registered: bool = False) -> None:
        super().__init__()
        layers = [nn.Linear(4, 4) for _ in range(3)]
        self.layers = nn.ModuleList(layers) if registered else layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class PlainDictOfParameters(nn.Module):
    def __init__(self, registered: bool = False) -> None:
        super().__init__()
        scales = {"a": nn.Parameter(torch.ones(4)), "b": nn.Parameter(torch.ones(4))}
        self.scales = nn.ParameterDict(scales) if registered else scales

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scales["a"] * self.scales["b"]


class ViewBatch(nn.Module):
    def __init__(self, flatten: bool = False) -> None:
        super().__init__()
        self.flatten = flatten
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 7 * 7, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1, 14, 14) flattens to 4x too many
        x = self.conv(x)
        x = nn.functional.max_pool2d(x, 2) if self.flatten else x
        return self.fc(x.flatten(1) if self.flatten else x.view(-1, 8 * 7 * 7))  # type: ignore[no-any-return]


class TraceOnSelf(nn.Module):
    """The guides' ModuleList trace pattern with ``self.trace.append``."""

    def __init__(self, local: bool = False) -> None:
        super().__init__()
        self.local = local
        self.layers = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 2)])
        self.trace: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        trace = [] if self.local else self.trace
        for layer in self.layers:
            x = layer(x)
            trace.append(x)
        return x


class KeepsLastOutput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.last = self.fc(x)
        return self.last


class Detached(nn.Module):
    def __init__(self, detach: bool = True) -> None:
        super().__init__()
        self.detach = detach
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.a(x)
        return self.b(hidden.detach() if self.detach else hidden)  # type: ignore[no-any-return]


class IgnoresInput(nn.Module):
    def __init__(self, ignore: bool = True) -> None:
        super().__init__()
        self.ignore = ignore
        self.fc = nn.Linear(4, 2)
        self.register_buffer("const", torch.ones(1, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.const.expand(x.shape[0], 4) if self.ignore else x)  # type: ignore[no-any-return]


class Noisy(nn.Module):
    def __init__(self, noisy: bool = True) -> None:
        super().__init__()
        self.noisy = noisy
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.noisy:
            print("x", x.shape)
            warnings.warn("this API is old", DeprecationWarning, stacklevel=1)
        return self.fc(x)  # type: ignore[no-any-return]


class Tokens(nn.Module):
    """A healthy model over integer token ids."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 8)
        self.head = nn.Linear(8, 3)
        self.head.weight = nn.Parameter(torch.randn(3, 8))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(ids).mean(1))  # type: ignore[no-any-return]


# Healthy models that a meta run must not mistake for broken ones.


class GuideRNN(nn.Module):
    """Makes its initial state with torch.zeros and no device, as the guides do."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 16, batch_first=True)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h0 = torch.zeros(1, x.size(0), 16)
        out, _ = self.lstm(x, (h0, h0.clone()))
        positions = torch.arange(x.size(1))  # (L,), on the default device
        return self.head(out[:, -1] + positions[-1])  # type: ignore[no-any-return]


class SeqFirst(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 16)  # (L, B, F) by default
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[-1])  # type: ignore[no-any-return]  # (B, 3)


class FrozenAttentionEval(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mha = nn.MultiheadAttention(32, 4, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mha(x, x, x)[0]  # type: ignore[no-any-return]


class Checkpointed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from torch.utils.checkpoint import checkpoint

        return checkpoint(self.b, self.a(x), use_reentrant=True)  # type: ignore[no-any-return]


class OldWeightNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.c = nn.utils.weight_norm(nn.Linear(8, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(x)  # type: ignore[no-any-return]


@__import__("dataclasses").dataclass
class Out:
    logits: torch.Tensor


class DataclassOutput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> Out:
        return Out(self.fc(x))


class LossFirst(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.fc(x)
        return {"loss": logits.logsumexp(-1).mean(), "logits": logits}


class Helper:
    def __init__(self, layer: nn.Module) -> None:
        self.layer = layer

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)  # type: ignore[no-any-return]


class IndirectCalls(nn.Module):
    """A bound method, a helper object and a partial that hold submodules or weights."""

    def __init__(self) -> None:
        super().__init__()
        self.gelu = nn.GELU()
        self.l1 = nn.Linear(4, 4)
        self.l2 = nn.Linear(4, 4, bias=False)  # the partial uses only the weight
        self.act = self.gelu.forward
        self.helper = Helper(self.l1)
        self.project = __import__("functools").partial(nn.functional.linear, weight=self.l2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.act(self.helper(x)))  # type: ignore[no-any-return]


class FrozenTeacher(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.student = nn.Linear(4, 2)
        self.acts = [nn.ReLU(), nn.Tanh()]
        self._teacher = [nn.Linear(4, 2).requires_grad_(False)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.acts[0](self.student(x))  # type: ignore[no-any-return]


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        return y if bool((y > 0).any()) else -y  # a Python bool of a tensor: needs its values


class SeqFirstEncoder(nn.Module):
    """PyTorch's default layout: TransformerEncoderLayer with batch_first=False, (L, B, E)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 16)
        self.encoder = nn.TransformerEncoderLayer(16, 2, 32)  # (L, B, E)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # (B, L)
        return self.encoder(self.embed(tokens).transpose(0, 1))  # type: ignore[no-any-return]


class FlatLogits(nn.Module):
    """A language model that returns its logits flattened for cross_entropy."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 8)
        self.head = nn.Linear(8, 20)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # (B, L) → (B * L, V)
        logits = self.head(self.embed(tokens))
        return logits.view(-1, logits.size(-1))


class GenerateOnly(nn.Module):
    """A decoder that only generate() uses."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(4, 8)
        self.decoder = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # type: ignore[no-any-return]

    def generate(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.forward(x))  # type: ignore[no-any-return]


class FrozenBackbone(nn.Module):
    """A backbone kept out of training by torch.no_grad(), its requires_grad left on."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            features = self.backbone(x)
        return self.head(features)  # type: ignore[no-any-return]


class EmaTeacher(nn.Module):
    """A student and its exponential-moving-average teacher, updated in forward."""

    def __init__(self) -> None:
        super().__init__()
        self.student = nn.Linear(4, 2)
        self.teacher = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            for s, t in zip(self.student.parameters(), self.teacher.parameters(), strict=True):
                t.mul_(0.99).add_(s, alpha=0.01)
            target = self.teacher(x)
        return self.student(x) - target  # type: ignore[no-any-return]


class OptedOut(nn.Module):
    """An unused module silenced by a comment, and one silenced by its class attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.used = nn.Linear(4, 2)
        self.spare = nn.Linear(4, 2)  # brickwork: ignore[unused-module]
        self.quiet = Quiet()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.used(x)  # type: ignore[no-any-return]


class Quiet(nn.Module):
    brickwork_ignore = ("unused-module",)

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)  # type: ignore[no-any-return]


class Detector(nn.Module):
    """A detector's inference: proposals chosen by value, detached, one dict per image."""

    def __init__(self) -> None:
        super().__init__()
        self.proposals = nn.Linear(4, 4)
        self.boxes = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        scores = self.proposals(x).detach()  # no gradient flows back through the proposals
        keep = torch.nonzero(scores.sum(-1) > -1e9).squeeze(-1)  # chosen by value
        boxes = self.boxes(scores[keep])
        return [{"boxes": boxes[i : i + 1]} for i in range(x.shape[0])]
