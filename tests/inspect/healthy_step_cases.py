"""Correct training setups that a careless training check would flag: each must stay clean.

Each function returns the keyword arguments of ``brickwork.doctor``, as in :mod:`step_cases`.
"""

import torch
from step_cases import FEATURES, Backbone, Setup, batch, classify, mlp
from torch import nn


def guide_classifier(size: int = 8) -> Setup:
    """The guide's classifier trained the way `brickwork train` does it."""
    import brickwork

    torch.manual_seed(0)
    model = brickwork.CNNClassifier(
        1, [32, 64], [1024, 512], 10, activation="lrelu", input_shape=(size, size)
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=5e-4)
    return {
        "model_or_spec": model,
        "input_shape": (1, size, size),
        "loss": nn.CrossEntropyLoss(label_smoothing=0.1),
        "optimizer": optimizer,
    }


def class_weighted() -> Setup:
    return classify(mlp(), nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0])))


def multi_label() -> Setup:
    x, _ = batch()
    target = (torch.rand(8, 5, generator=torch.Generator().manual_seed(3)) > 0.5).float()
    return classify(mlp(), nn.BCEWithLogitsLoss(), input_data=x, target=target, input_shape=None)


def nll_after_log_softmax() -> Setup:
    x, y = batch()
    return classify(
        mlp(nn.LogSoftmax(dim=1)), nn.NLLLoss(), input_data=x, target=y, input_shape=None
    )


def regression_of_matching_shapes() -> Setup:
    x, y = batch()
    return {
        "model_or_spec": mlp(classes=1),
        "loss": nn.MSELoss(),
        "input_data": x,
        "target": y.float()[:, None],
    }


def segmentation() -> Setup:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 4, 1),
    )
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(4, 3, 8, 8, generator=generator)
    target = torch.randint(0, 4, (4, 8, 8), generator=generator)
    target[:, 0, :] = 255  # unlabelled border
    loss = nn.CrossEntropyLoss(ignore_index=255, label_smoothing=0.05)
    return {"model_or_spec": model, "loss": loss, "input_data": x, "target": target}


def frozen_group_without_decay() -> Setup:
    model = Backbone()
    model.backbone.requires_grad_(False)
    model.backbone.eval()
    groups = [
        {"params": model.backbone.parameters(), "weight_decay": 0.0},
        {"params": model.head.parameters(), "weight_decay": 0.05},
    ]
    return classify(model, optimizer=torch.optim.AdamW(groups, lr=1e-3))


def frozen_backbone_in_eval_mode() -> Setup:
    model = Backbone()
    model.backbone.requires_grad_(False)
    model.backbone.eval()
    return classify(model, optimizer=torch.optim.SGD(model.head.parameters(), lr=0.01))


def smooth_activations() -> Setup:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(FEATURES, 32),
        nn.GELU(),
        nn.Dropout(0.3),
        nn.Linear(32, 32),
        nn.SiLU(),
        nn.Linear(32, 5),
    )
    return classify(model)


class Tagger(nn.Module):
    """Token tagging with a transformer layer: (B, T) ids → (B, T, K) scores."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(20, 16)
        self.layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.1, batch_first=True)
        self.head = nn.Linear(16, 4)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.layer(self.embed(ids)))


def token_tagging_with_padding() -> Setup:
    generator = torch.Generator().manual_seed(5)
    ids = torch.randint(0, 20, (4, 6), generator=generator)
    tags = torch.randint(0, 4, (4, 6), generator=generator)
    tags[:, -2:] = -100  # padding

    def loss(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(scores.flatten(0, 1), target.flatten())

    return {"model_or_spec": Tagger(), "loss": loss, "input_data": ids, "target": tags}


class Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.rnn = nn.LSTM(FEATURES, 16, batch_first=True)
        self.head = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0][:, -1])


def recurrent() -> Setup:
    return {"model_or_spec": Recurrent(), "input_shape": (7, FEATURES), "loss": "cross_entropy"}


def distillation() -> Setup:
    x, _ = batch()
    teacher = torch.softmax(torch.randn(8, 5, generator=torch.Generator().manual_seed(6)), 1)

    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_p = torch.log_softmax(logits, 1)
        return nn.functional.kl_div(log_p, target, reduction="batchmean")

    return classify(mlp(), loss, input_data=x, target=teacher, input_shape=None)


def scheduled_warm_up() -> Setup:
    model = mlp()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: step / 100)  # lr starts at 0
    return classify(model, optimizer=optimizer)


def one_cycle() -> Setup:
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=1000)
    return classify(model, optimizer=optimizer)


class DictOutput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = mlp()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.body(x)
        return {"logits": logits, "probs": logits.softmax(1)}


def dict_output() -> Setup:
    def loss(out: dict[str, torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(out["logits"], target)

    return classify(DictOutput(), loss)


def nll_after_log_softmax_for_sixty_steps() -> Setup:
    """NLLLoss's floor is 0 on log-probabilities (the raw output's would fall without bound)."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(FEATURES, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 5), nn.LogSoftmax(dim=1)
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return classify(model, nn.NLLLoss(), optimizer=optimizer, steps=60)


HEALTHY = [
    guide_classifier,
    class_weighted,
    multi_label,
    nll_after_log_softmax,
    regression_of_matching_shapes,
    segmentation,
    frozen_group_without_decay,
    frozen_backbone_in_eval_mode,
    smooth_activations,
    token_tagging_with_padding,
    recurrent,
    distillation,
    scheduled_warm_up,
    one_cycle,
    dict_output,
    nll_after_log_softmax_for_sixty_steps,
]
"""Correct setups that a careless check would flag."""


def guide_classifier_trained_with(optimizer: str, steps: int) -> Setup:
    """The guide's classifier under a common optimizer and learning rate, for ``steps``: its loss
    falls slowly (AdamW at 1e-4), or spikes before it settles (SGD at 0.1 with momentum)."""
    setup = guide_classifier()
    params = setup["model_or_spec"].parameters()
    optimizers = {
        "adamw-1e-4": lambda: torch.optim.AdamW(params, lr=1e-4),
        "sgd-0.01": lambda: torch.optim.SGD(params, lr=0.01, momentum=0.9),
        "sgd-0.1-nesterov": lambda: torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True),
    }
    return {**setup, "optimizer": optimizers[optimizer](), "steps": steps}


def head_on_a_frozen_backbone(steps: int) -> Setup:
    """A linear head learning slowly on frozen features (AdamW at 1e-3): a steady fall."""
    model = Backbone()
    model.backbone.requires_grad_(False)
    model.backbone.eval()
    optimizer = torch.optim.AdamW(model.head.parameters(), lr=1e-3, weight_decay=0.05)
    return classify(model, optimizer=optimizer, steps=steps)
