"""What every trainer is expected to have: --ema, --accumulate, --patience, --warmup-epochs and
fp16's gradient scaler, each resumed exactly."""

import itertools
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from small_models import small_model

import brickwork
from brickwork.train import RunInterruptedError, TrainConfig, fit
from brickwork.train.ema import Ema
from brickwork.train.optim import make_scheduler
from brickwork.train.weights import read_metadata

QUIET: dict[str, Any] = {"log": lambda _: None}
NO_NORM = {"input": [1, 8, 8], "model": ["flatten", {"linear": {"out": 32}}, "relu", {"linear": {"out": 10}}]}  # fmt: skip


def test_the_average_moves_by_one_minus_decay_and_copies_buffers() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    ema = Ema(model, 0.75)
    before = ema.module[0].weight.clone()
    with torch.no_grad():
        model[0].weight.add_(4.0)
        model[1].running_mean.fill_(3.0)
    ema.update(model)
    torch.testing.assert_close(ema.module[0].weight, before + 1.0)  # a quarter of the way
    assert ema.module[1].running_mean.tolist() == [3.0, 3.0]
    assert not any(p.requires_grad for p in ema.module.parameters())


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [{"ema": 0.9}, {"accumulate": 3, "warmup_epochs": 1}, {"precision": "fp16"}],
    ids=["ema", "accumulate-warmup", "fp16"],
)
def test_stopped_and_resumed_ends_as_a_straight_run(
    tmp_path: Path, digits: brickwork.train.Dataset, options: dict[str, Any]
) -> None:
    config = TrainConfig(epochs=2, batch_size=128, lr=1e-2, **options)
    fit(small_model(), digits, config, out=tmp_path / "straight", **QUIET)

    def interrupt(model: torch.nn.Module, epoch: int, step: int) -> None:
        if (epoch, step) == (1, 3):
            os.kill(os.getpid(), signal.SIGINT)

    stopped = tmp_path / "stopped"
    with pytest.raises(RunInterruptedError):
        fit(small_model(), digits, config, out=stopped, on_step=interrupt, **QUIET)
    (state,) = stopped.glob("checkpoint-*-state.safetensors")
    with safe_open(str(state), framework="pt") as f:
        assert any(k.startswith("ema.") for k in f.keys()) == ("ema" in options)  # noqa: SIM118
    training = read_metadata(Path(str(state).replace("-state", "")))["training"]
    assert ("scale" in training["scaler"]) == ("precision" in options)
    fit(small_model(), digits, config, out=stopped, resume=True, **QUIET)
    straight = (tmp_path / "straight" / "model.safetensors").read_bytes()
    assert (stopped / "model.safetensors").read_bytes() == straight
    rows = [json.loads(line) for line in (stopped / "metrics.jsonl").read_text().splitlines()]
    assert ("ema_val_acc" in rows[0]) == ("ema" in options)
    weights = read_metadata(stopped / "model.safetensors")["weights"]
    assert weights in (("raw", "ema") if "ema" in options else ("raw",))


@pytest.mark.parametrize(("batch_size", "parts"), [(128, 4), (100, 3)])
def test_accumulated_micro_batches_end_as_one_batch(
    digits: brickwork.train.Dataset, batch_size: int, parts: int
) -> None:
    ends = []
    for accumulate in (1, parts):
        torch.manual_seed(0)
        model = brickwork.build(NO_NORM)
        config = TrainConfig(epochs=1, batch_size=batch_size, accumulate=accumulate)
        fit(model, digits, config, **QUIET)
        ends.append(model.state_dict())
    for name, tensor in ends[0].items():
        torch.testing.assert_close(ends[1][name], tensor, atol=1e-5, rtol=0)


def test_patience_stops_the_run_keeps_the_best_weights_and_says_why(
    tmp_path: Path, digits: brickwork.train.Dataset
) -> None:
    lines: list[str] = []
    config = TrainConfig(epochs=5, batch_size=256, lr=1e-9, schedule="none", patience=1)
    history = fit(small_model(), digits, config, out=tmp_path, log=lines.append)
    assert [row.get("epoch") for row in history] == [1, 2, None]  # then the test line
    assert any(
        "stopping early after epoch 2: the validation score has not improved for 1 epoch "
        "(--patience 1); the best weights, of epoch 1, are kept" in line
        for line in lines
    )
    # killed after its last checkpoint but before its test line: --resume stops again at once
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(metrics.read_text().splitlines(keepends=True)[:-1]))
    lines.clear()
    again = fit(small_model(), digits, config, out=tmp_path, resume=True, log=lines.append)
    assert [row.get("epoch") for row in again] == [1, 2, None]
    assert any("stopping early after epoch 2" in line for line in lines)


def test_warmup_rises_linearly_to_where_the_schedule_starts() -> None:
    steps, lr = 4, 0.1
    rates: dict[int, list[float]] = {}
    for warmup in (0, 2):
        optimizer = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=lr)
        config = TrainConfig(epochs=5, lr=lr, schedule="cosine", warmup_epochs=warmup)
        scheduler = make_scheduler(optimizer, config, steps)
        assert scheduler is not None
        seen = []
        for _ in range(5 * steps):
            seen.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        rates[warmup] = seen
    warm = rates[2]
    assert warm[0] == pytest.approx(lr * 1e-3)
    rises = [b - a for a, b in itertools.pairwise(warm[: 2 * steps + 1])]
    assert rises == pytest.approx([rises[0]] * len(rises))  # linear
    assert warm[2 * steps] == pytest.approx(lr)  # then the cosine from its start
    assert warm[-1] < warm[2 * steps + 1] < lr
