"""Training setups for the doctor's training checks: each bug, and the same setup fixed.

Each function returns the keyword arguments of ``brickwork.doctor`` (``model_or_spec`` included),
the way a training script has its model, loss, optimizer and batch. Models are tiny.
"""

from typing import Any

import torch
from torch import nn

Setup = dict[str, Any]
FEATURES = 12


def mlp(*layers: nn.Module, width: int = 32, classes: int = 5) -> nn.Sequential:
    """Linear → ReLU → Linear, with ``layers`` appended (a softmax, say)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(FEATURES, width), nn.ReLU(), nn.Linear(width, classes), *layers)


def batch(n: int = 8, classes: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Random features and class indices."""
    generator = torch.Generator().manual_seed(1)
    return torch.randn(n, FEATURES, generator=generator), torch.randint(
        0, classes, (n,), generator=generator
    )


def classify(model: nn.Module, loss: Any = "cross_entropy", **extra: Any) -> Setup:
    return {"model_or_spec": model, "input_shape": (FEATURES,), "loss": loss, **extra}


# probabilities-as-logits -------------------------------------------------------------------


def softmax_then_cross_entropy(fixed: bool = False) -> Setup:
    return classify(mlp() if fixed else mlp(nn.Softmax(dim=1)), nn.CrossEntropyLoss())


class SigmoidHead(nn.Module):
    """A binary classifier that applies its own sigmoid."""

    def __init__(self, sigmoid: bool = True) -> None:
        super().__init__()
        self.body = mlp(classes=1)
        self.sigmoid = sigmoid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.body(x)
        return torch.sigmoid(logits) if self.sigmoid else logits


def sigmoid_then_bce_with_logits(fixed: bool = False) -> Setup:
    x, y = batch()
    return {
        "model_or_spec": SigmoidHead(sigmoid=not fixed),
        "loss": nn.BCEWithLogitsLoss(),
        "input_data": x,
        "target": (y > 2).float()[:, None],
    }


# logits-as-probabilities -------------------------------------------------------------------


def nll_on_logits(fixed: bool = False) -> Setup:
    return classify(mlp(nn.LogSoftmax(dim=1)) if fixed else mlp(), nn.NLLLoss())


def bce_on_logits(fixed: bool = False) -> Setup:
    model = mlp(nn.Sigmoid(), classes=3) if fixed else mlp(classes=3)
    return classify(model, "bce")


# loss-target-mismatch and labels-out-of-range ------------------------------------------------


def regression_target_without_its_dimension(fixed: bool = False) -> Setup:
    x, y = batch()
    target = y.float()[:, None] if fixed else y.float()
    return {"model_or_spec": mlp(classes=1), "loss": "mse", "input_data": x, "target": target}


def float_class_indices(fixed: bool = False) -> Setup:
    x, y = batch()
    return classify(mlp(), input_data=x, target=y if fixed else y.float(), input_shape=None)


def class_indices_with_a_dimension_too_many(fixed: bool = False) -> Setup:
    x, y = batch()
    return classify(mlp(), input_data=x, target=y if fixed else y[:, None], input_shape=None)


def one_class_under_cross_entropy(fixed: bool = False) -> Setup:
    x, y = batch()
    if fixed:
        return {
            "model_or_spec": mlp(classes=1),
            "loss": nn.BCEWithLogitsLoss(),
            "input_data": x,
            "target": (y > 2).float()[:, None],
        }
    return classify(mlp(classes=1), input_data=x, target=torch.zeros_like(y), input_shape=None)


def multi_hot_under_cross_entropy(fixed: bool = False) -> Setup:
    x, y = batch()
    multi = torch.zeros(8, 5)
    multi[torch.arange(8), y] = 1.0
    multi[torch.arange(8), (y + 1) % 5] = 1.0
    loss = nn.BCEWithLogitsLoss() if fixed else nn.CrossEntropyLoss()
    return classify(mlp(), loss, input_data=x, target=multi, input_shape=None)


def relu_head_with_negative_targets(fixed: bool = False) -> Setup:
    x, _ = batch()
    target = torch.randn(8, 1, generator=torch.Generator().manual_seed(2))
    model = mlp(classes=1) if fixed else mlp(nn.ReLU(), classes=1)
    return {"model_or_spec": model, "loss": nn.MSELoss(), "input_data": x, "target": target}


def labels_from_one(fixed: bool = False) -> Setup:
    x, _ = batch()
    labels = torch.arange(8) % 5  # 0 to 4, every class present
    return classify(mlp(), input_data=x, target=labels if fixed else labels + 1, input_shape=None)


def class_indices_under_bce(fixed: bool = False) -> Setup:
    x, y = batch()
    target = (y > 2).float()[:, None] if fixed else y.float()[:, None]
    return {
        "model_or_spec": mlp(classes=1),
        "loss": nn.BCEWithLogitsLoss(),
        "input_data": x,
        "target": target,
    }


def one_hot_integer_labels(fixed: bool = False) -> Setup:
    """One-hot labels left as integers: cross-entropy reads a target of the output's shape as
    class probabilities, which must be floats."""
    x, y = batch()
    target = y if fixed else nn.functional.one_hot(y, 5)
    return classify(mlp(), input_data=x, target=target, input_shape=None)


def sigmoid_bce_target_without_its_dimension(fixed: bool = False) -> Setup:
    x, y = batch()
    target = (y > 2).float()
    return {
        "model_or_spec": mlp(nn.Sigmoid(), classes=1),
        "loss": nn.BCELoss(),
        "input_data": x,
        "target": target[:, None] if fixed else target,
    }


# initial-loss ---------------------------------------------------------------------------------


def last_layer_initialised_large(fixed: bool = False) -> Setup:
    model = mlp()
    if not fixed:
        nn.init.normal_(model[2].weight, std=2.0)
    return classify(model)


# optimizer-misses-params ----------------------------------------------------------------------


def head_replaced_after_the_optimizer(fixed: bool = False) -> Setup:
    model = mlp()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model[2] = nn.Linear(32, 5)  # a new head for the new classes
    if fixed:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    return classify(model, optimizer=optimizer)


class LearnedTemperature(nn.Module):
    """Cross-entropy on logits divided by a learned temperature: the loss has a parameter."""

    def __init__(self) -> None:
        super().__init__()
        self.log_t = nn.Parameter(torch.zeros(()))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits / self.log_t.exp(), target)


def loss_parameter_left_out(fixed: bool = False) -> Setup:
    model, loss = mlp(), LearnedTemperature()
    params = [*model.parameters(), *loss.parameters()] if fixed else list(model.parameters())
    return classify(model, loss, optimizer=torch.optim.SGD(params, lr=0.1))


# eval-mode-training -----------------------------------------------------------------------------


def left_in_eval_mode(fixed: bool = False) -> Setup:
    model = nn.Sequential(mlp(nn.Dropout(0.2)), nn.BatchNorm1d(5))
    model.eval()  # after validation
    if fixed:
        model.train()
    return classify(model)


# frozen-but-updating ------------------------------------------------------------------------------


class Backbone(nn.Module):
    """A frozen-able backbone with a batch norm, and a head."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.backbone = nn.Sequential(nn.Linear(FEATURES, 32), nn.BatchNorm1d(32), nn.ReLU())
        self.head = nn.Linear(32, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


class DecayEverything(torch.optim.SGD):
    """A hand-written decoupled weight decay, applied to every parameter of each group."""

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        for group in self.param_groups:
            for p in group["params"]:
                p.mul_(1 - group["lr"] * group["decay"])
        return super().step(closure)


def frozen_backbone_in_a_decaying_group(fixed: bool = False) -> Setup:
    model = Backbone()
    model.backbone.requires_grad_(False)
    model.backbone.eval()
    groups = [
        {"params": model.backbone.parameters(), "decay": 0.0 if fixed else 0.1},
        {"params": model.head.parameters(), "decay": 0.1},
    ]
    return classify(model, optimizer=DecayEverything(groups, lr=0.1))


def frozen_backbone_in_training_mode(fixed: bool = False) -> Setup:
    model = Backbone()
    model.backbone.requires_grad_(False)
    if fixed:
        model.backbone.eval()
    return classify(model, optimizer=torch.optim.AdamW(model.head.parameters()))


def frozen_after_zero_grad_without_none(fixed: bool = False) -> Setup:
    """A backbone frozen after some steps whose gradients zero_grad(set_to_none=False) left as
    zeros: SGD steps them with weight decay and momentum, so the frozen weights drift."""
    model = Backbone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2)
    x, y = batch()
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=False)
    model.backbone.requires_grad_(False)
    model.backbone.eval()
    if fixed:
        for p in model.backbone.parameters():
            p.grad = None
    return classify(model, optimizer=optimizer, input_data=x, target=y, input_shape=None)


# bias-before-norm ----------------------------------------------------------------------------------


def conv_bias_before_batch_norm(fixed: bool = False) -> Setup:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=fixed is False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 5),
    )
    return {"model_or_spec": model, "input_shape": (3, 6, 6), "loss": "cross_entropy"}


# dead-units and saturated-activations ------------------------------------------------------------


def relus_dead_at_init(fixed: bool = False) -> Setup:
    model = mlp()
    if not fixed:
        nn.init.constant_(model[0].bias, -5.0)
    return classify(model)


class FunctionalSigmoid(nn.Module):
    """A hidden sigmoid applied in forward, after a layer initialised with std 1."""

    def __init__(self, std: float | None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.hidden = nn.Linear(FEATURES, 64)
        if std is not None:
            nn.init.normal_(self.hidden.weight, std=std)
        self.out = nn.Linear(64, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.sigmoid(self.hidden(x)))  # the line the finding names


def sigmoids_saturated_at_init(fixed: bool = False) -> Setup:
    return classify(FunctionalSigmoid(None if fixed else 3.0))


# vanishing-gradients and exploding-gradients ---------------------------------------------------


def deep_sigmoid_stack(fixed: bool = False) -> Setup:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    width = FEATURES
    for _ in range(8):
        layers += (
            [nn.Linear(width, 32, bias=False), nn.BatchNorm1d(32), nn.ReLU()]
            if fixed
            else [nn.Linear(width, 32), nn.Sigmoid()]
        )
        width = 32
    return classify(nn.Sequential(*layers, nn.Linear(32, 5)))


def tiny_first_layer(fixed: bool = False) -> Setup:
    """A first layer initialised near 0 with nothing after it to undo the scale: its gradient,
    relative to its weight, dwarfs the last layer's, whose input it starves."""
    model = mlp()
    if not fixed:
        nn.init.normal_(model[0].weight, std=1e-6)
        nn.init.zeros_(model[0].bias)
    return classify(model)


class NormOfAZeroParameter(nn.Module):
    """A learned offset that starts at 0, scaled by its own norm taken by hand: sqrt(0) has an
    infinite gradient, so the backward gives NaN although the forward is finite."""

    def __init__(self, eps: float) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(FEATURES, 5)
        self.offset = nn.Parameter(torch.zeros(5))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = (self.offset.pow(2).sum() + self.eps).sqrt()
        return self.fc(x) + size * self.offset


def sqrt_at_zero(fixed: bool = False) -> Setup:
    return classify(NormOfAZeroParameter(1e-12 if fixed else 0.0))


# cannot-overfit ---------------------------------------------------------------------------------


def learning_rate_zero(fixed: bool = False) -> Setup:
    model = mlp()
    return classify(model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1 if fixed else 0.0))


def bottleneck_of_one(fixed: bool = False) -> Setup:
    torch.manual_seed(0)
    width = 64 if fixed else 1
    model = nn.Sequential(nn.Linear(FEATURES, width), nn.Tanh(), nn.Linear(width, 5))
    return classify(model, optimizer=torch.optim.Adam(model.parameters(), lr=0.03), steps=100)


def loss_rebuilt_from_a_number(fixed: bool = False) -> Setup:
    """A loss logged with .item() and turned back into a tensor: it carries no gradient."""

    def loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        value = nn.functional.cross_entropy(out, target)
        return value if fixed else torch.tensor(value.item(), requires_grad=True)

    return classify(mlp(), loss)


def wide_sigmoid_layer_under_sgd(fixed: bool = False) -> Setup:
    """A sigmoid after a layer of 4096 inputs, all >= 0 (features after a ReLU), under SGD at a
    learning rate far too high: its first step throws the sigmoid's inputs into its tails, where
    SGD's steps shrink with the gradient (Adam's would not: see guide_classifier)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.ReLU(), nn.Linear(4096, 16), nn.Sigmoid(), nn.Linear(16, 5))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1 if fixed else 3.0)
    return {
        "model_or_spec": model,
        "input_shape": (4096,),
        "loss": "cross_entropy",
        "optimizer": optimizer,
    }
