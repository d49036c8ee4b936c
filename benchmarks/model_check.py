"""One model checked as a new user would try it: the rows of ``third_party.py`` and
``torchinfo_suite.py``.

For each model and input: does ``brickwork.summary`` finish with no error (or fail where eager
PyTorch fails on the same input), do its parameters equal the model's unique parameter count
(after an eager forward, so that lazy and forward-made parameters count), do its MACs equal
PyTorch's ``FlopCounterMode`` on the math attention path (or which ops does it list as uncounted),
which run did it use, what errors does ``brickwork.doctor`` report, and are the model's
state_dict, RNG state and training flags unchanged by both.

The eager reference runs on the values a real run of brickwork's would use (the user's tensors,
or the same seeded random ones for shapes), so that data-dependent models (detection) take the
same path.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, flop_registry

import brickwork
from brickwork.errors import first_line
from brickwork.inspect.inputs import make_inputs
from brickwork.inspect.macs import FORMULAS
from brickwork.inspect.summary import resolve_model

Case = tuple[str, Callable[[], nn.Module], Callable[[], dict[str, Any]]]
"""(name, build the model, ``summary``'s input arguments: ``input_shape`` with ``batch_size``
and ``input_dtype``, or ``input_data``; ``{}`` for a forward that takes nothing)."""


def _state(model: nn.Module) -> tuple[dict[str, torch.Tensor], torch.Tensor, list[bool]]:
    return (
        {k: v.detach().clone() for k, v in _weights(model).items()},
        torch.get_rng_state(),
        [m.training for m in model.modules()],
    )


def _same(before: Any, model: nn.Module) -> bool:
    weights, rng, flags = before
    now = _weights(model)
    return (
        all(k in now and _equal(now[k].detach(), v) for k, v in weights.items())
        and torch.equal(rng, torch.get_rng_state())
        and flags == [m.training for m in model.modules()]
    )


def _equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same values, NaNs in the same places equal (``torch.Tensor(100, 300)`` holds any)."""
    if torch.equal(a, b):
        return True
    floating = a.is_floating_point() and a.shape == b.shape and a.dtype == b.dtype
    return floating and torch.allclose(a, b, rtol=0, atol=0, equal_nan=True)


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state_dict's tensors, lazy ones (no values yet) left out."""
    return {k: v for k, v in model.state_dict(keep_vars=True).items() if not _lazy(v)}


def _lazy(t: Any) -> bool:
    return isinstance(t, nn.parameter.UninitializedTensorMixin)


def unique_params(model: nn.Module) -> int:
    """Parameters counted once each, lazy ones (no shape yet) as 0."""
    return sum(p.numel() for p in model.parameters() if not _lazy(p))


def eager_inputs(model: nn.Module, given: dict[str, Any], batch: int) -> Any:
    """The values brickwork's real run would use: the user's tensors, or seeded random ones."""
    _, shape, dtype = resolve_model(model, given.get("input_shape"), given.get("input_dtype"))
    data = given.get("input_data", () if shape is None else None)
    inputs = make_inputs(shape, data, batch, dtype)
    first = next((t for t in (*model.parameters(), *model.buffers())), None)
    device = first.device if first is not None and first.device.type != "meta" else "cpu"
    return inputs.real(model, torch.device(device))


class _Ops(TorchDispatchMode):
    """The ops a forward runs."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[Any] = set()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.seen.add(func.overloadpacket)
        return func(*args, **(kwargs or {}))


def reference(
    model: nn.Module, given: dict[str, Any], batch: int
) -> tuple[int | None, str, list[str]]:
    """FlopCounterMode's MACs of one eager forward with grad (``None`` when eager fails too),
    eager's error, and the ops that ran which brickwork counts and FlopCounterMode has no
    formula for (an LSTM's ``mkldnn_rnn_layer`` on the CPU): where there are some, its total is
    short by their MACs."""
    torch.manual_seed(0)
    args, kwargs = eager_inputs(model, given, batch)
    ops = _Ops()
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter, ops:
        try:
            model(*args, **kwargs)
        except Exception as err:  # these inputs fail in eager PyTorch too: the model's error
            return None, first_line(err, with_type=True), []
    misses = sorted(str(p) for p in ops.seen if p not in flop_registry and p.__name__ in FORMULAS)
    return counter.get_total_flops() // 2, "", misses


def check(case: Case, doctor: bool) -> dict[str, Any]:
    """One row: see the module's docstring."""
    name, build, make = case
    torch.manual_seed(0)
    model = build()
    given = make()
    before = _state(model)
    start = time.perf_counter()
    s = brickwork.summary(model, **given)
    seconds = time.perf_counter() - start
    row: dict[str, Any] = {
        "model": name,
        "run": s.run,
        "error": s.error,
        "params": s.total_params,
        "macs": s.macs,
        "uncounted": s.uncounted_ops,
        "seconds": seconds,
        "unchanged": _same(before, model),
    }
    if doctor:
        before = _state(model)
        report = brickwork.doctor(model, **{k: v for k, v in given.items() if k != "batch_size"})
        errors = [f for f in report.findings if f.severity == "error"]
        row["doctor"] = [f"{f.code}:{f.path}" for f in errors]
        row["doctor_messages"] = [str(f) for f in errors]
        row["doctor_run"] = report.run
        row["unchanged"] = row["unchanged"] and _same(before, model)
    row["reference"], row["eager_error"], row["misses"] = reference(model, given, s.batch_size)
    row["unique"] = unique_params(model)  # after the eager forward: lazy parameters made
    return row


def verdict(r: dict[str, Any]) -> bool:
    """No error (or eager's own), exact parameters, MACs as FlopCounterMode (or the ops not
    counted listed), the model unchanged and the doctor clean (or the model's error)."""
    if "crash" in r:
        return False
    eager_fails = r["reference"] is None
    macs_ok = eager_fails or r["macs"] == r["reference"] or bool(r["uncounted"])
    macs_ok = macs_ok or (bool(r.get("misses")) and r["macs"] > r["reference"])
    codes = {finding.split(":")[0] for finding in r.get("doctor", [])}
    doctor_ok = codes <= set(r.get("expected", ())) or eager_fails
    return bool(
        (r["error"] is None or eager_fails)
        and r["params"] == r["unique"]
        and macs_ok
        and r["unchanged"]
        and doctor_ok
    )


def line(r: dict[str, Any]) -> str:
    """A row of the table as text."""
    if "crash" in r:
        return f"{r['model']:<44} CRASH {r['crash']}"
    tail = r["error"] or ", ".join(f"{k}×{v}" for k, v in r["uncounted"].items())
    if r["run"] == "none":
        tail = "no input: the module tree and its parameters only"
    elif r["reference"] is None:
        tail = f"(eager fails too: {r['eager_error'][:80]}) {tail}"
    if r.get("misses"):
        tail = f"(FlopCounterMode has no formula for {', '.join(r['misses'])}) {tail}"
    params = "ok" if r["params"] == r["unique"] else f"{r['params']}≠{r['unique']}"
    reference = "-" if r["reference"] is None else f"{r['reference']:,}"
    doctor = ",".join(r.get("doctor", [])) or "-"
    if r.get("doctor") and r.get("expected"):
        doctor += " (right)"
    return (
        f"{r['model']:<44} {r['run']:<5} {params:<6} {r['macs']:>15,} {reference:>15} "
        f"{'yes' if r['unchanged'] else 'NO':<5} {doctor:<20} "
        f"{r['seconds']:>6.2f}  {tail or ''}"
    )


HEADER = (
    f"{'model':<44} {'run':<5} {'params':<6} {'MACs':>15} {'FlopCounter':>15} {'same':<5} "
    f"{'doctor errors':<20} {'s':>6}  uncounted / error"
)


def run_cases(
    cases: Iterable[Case],
    doctor: bool,
    jsonl: str | None,
    expected: dict[str, set[str]] | None = None,
) -> list[dict[str, Any]]:
    """Check each case, print its row, append it to ``jsonl`` (whose rows are reused), and print
    the count and the rows that are not ok. ``expected`` names, by case, the doctor's error
    codes that are right about that model (its forward really ignores its input...)."""
    expected = expected or {}
    rows: dict[str, dict[str, Any]] = {}
    if jsonl and Path(jsonl).exists():
        for text in Path(jsonl).read_text().splitlines():
            row = json.loads(text)
            rows[row["model"]] = row
    cases = list(cases)
    print(f"torch {torch.__version__}, {len(cases)} cases", flush=True)
    print(HEADER)
    for case in cases:
        if case[0] not in rows:
            try:
                rows[case[0]] = check(case, doctor)
            except Exception as err:  # report it as a row; a benchmark never stops on one model
                rows[case[0]] = {
                    "model": case[0],
                    "crash": f"{type(err).__name__}: {first_line(err)[:300]}",
                    "trace": traceback.format_exc(),
                }
            if jsonl:
                with open(jsonl, "a") as log:
                    log.write(json.dumps(rows[case[0]], default=str) + "\n")
        rows[case[0]]["expected"] = sorted(expected.get(case[0], ()))
        print(line(rows[case[0]]), flush=True)
    done = [rows[c[0]] for c in cases]
    print(
        f"\n{sum(verdict(r) for r in done)} of {len(done)}: no error (or eager PyTorch's own), "
        "exact parameters, MACs equal to FlopCounterMode or the ops not counted listed, model "
        "unchanged, doctor clean"
    )
    for r in done:
        if not verdict(r):
            print("not ok:", line(r))
            for message in r.get("doctor_messages", []):
                print("   doctor:", message.splitlines()[0][:200])
    return done
