"""brickwork.summary against torchinfo.summary: wall time and peak memory, same models, one run.

1. Wall time on a hand-written ResNet-50 (25.6M parameters) at 224×224, batch 1 and batch 32:
   both tools summarise the same real model, interleaved, after one warm-up call each.
2. Peak resident memory above ``import torch``, each case in a fresh subprocess.
3. A 20-billion-parameter MLP spec (80 GB of float32 weights, more than this machine has):
   brickwork's time and peak memory, and what torchinfo does with it.

torchinfo is a benchmark-only dependency (`pip install torchinfo`, or `make bench`).

    .venv/bin/python benchmarks/summary.py [--reps 7] [--resnet-only]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch
import torchinfo

import brickwork
from baselines import ResNet50ByHand
from measure import status_kib, timed

WIDE = 32768
DEEP = 19  # 19 layers of 32768 x 32768: 20.4 billion parameters
HUGE_SPEC = {"input": [WIDE], "model": [{"linear": {"out": WIDE}} for _ in range(DEEP)]}


def measure(case: str) -> dict[str, object]:
    """Run one case in this (fresh) process; peak RSS is counted from after `import torch`."""
    base = status_kib("VmRSS")
    start = time.perf_counter()
    result: dict[str, object] = {"case": case}
    if case == "brickwork-meta-resnet50":
        with torch.device("meta"):
            model = ResNet50ByHand()
        result["params"] = brickwork.summary(model, (3, 224, 224), batch_size=32).total_params
    elif case == "brickwork-real-resnet50":
        result["params"] = brickwork.summary(
            ResNet50ByHand(), (3, 224, 224), batch_size=32
        ).total_params
    elif case.startswith("torchinfo-real-resnet50-b"):
        batch = int(case.rsplit("b", 1)[1])
        info = torchinfo.summary(ResNet50ByHand(), input_size=(batch, 3, 224, 224), verbose=0)
        result["params"] = info.total_params
    elif case == "brickwork-20b-spec":
        s = brickwork.summary(HUGE_SPEC, batch_size=32)
        result["params"], result["train_gib"] = s.total_params, s.train_memory_bytes / 2**30
    elif case == "torchinfo-20b-meta":
        model = brickwork.build(HUGE_SPEC, device="meta")
        try:
            torchinfo.summary(model, input_size=(32, WIDE), verbose=0)
            result["outcome"] = "ran"
        except Exception as err:  # report what torchinfo does, whatever it is
            result["outcome"] = f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"
    result["seconds"] = time.perf_counter() - start
    result["peak_mib_above_torch"] = (status_kib("VmHWM") - base) / 1024
    return result


def bert_table(reps: int) -> None:
    """BERT-base (random weights, from its config) with a tokenizer's two inputs: the attention
    mask makes brickwork run for real (its meta pass stops at the mask's .item())."""
    try:
        import transformers
    except ImportError:
        print("\n1b. BERT-base: transformers is not installed, skipped")
        return
    model = transformers.BertModel(transformers.BertConfig())
    inputs = {
        "input_ids": torch.randint(0, 1000, (1, 128)),
        "attention_mask": torch.ones(1, 128, dtype=torch.long),
    }
    tools = {
        "brickwork": lambda: brickwork.summary(model, input_data=inputs),
        "torchinfo": lambda: torchinfo.summary(model, input_data=inputs, verbose=0),
    }
    run = brickwork.summary(model, input_data=inputs)
    first = {name: timed(fn) for name, fn in tools.items()}
    times: dict[str, list[float]] = {name: [] for name in tools}
    for rep in range(reps):
        for name in list(tools) if rep % 2 == 0 else list(reversed(tools)):
            times[name].append(timed(tools[name]))
    bw, ti = (statistics.median(times[name]) for name in tools)
    print(f"\n1b. BERT-base, input_ids and attention_mask (1, 128): brickwork ran {run.run}")
    print(f"{'brickwork ms':>13} {'torchinfo ms':>13} {'ratio':>7} {'first call ms (bw / ti)':>26}")
    print(
        f"{bw * 1e3:>13.1f} {ti * 1e3:>13.1f} {bw / ti:>7.3f} "
        f"{first['brickwork'] * 1e3:>12.0f} / {first['torchinfo'] * 1e3:<10.0f}"
    )


def in_subprocess(case: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", case], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        return {"case": case, "outcome": f"exit {out.returncode}: {out.stderr.strip()[-200:]}"}
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument(
        "--resnet-only", action="store_true", help="only table 1, the ResNet-50 wall times"
    )
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return

    model = ResNet50ByHand()
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, torchinfo {torchinfo.__version__}, {threads} threads")
    print("\n1. wall time, ResNet-50 at 224x224 (same real model for both)")
    header = f"{'batch':>5} {'brickwork ms':>13} {'torchinfo ms':>13} {'ratio':>7}"
    print(f"{header} {'first call ms (bw / ti)':>26}")
    for batch in (1, 32):
        tools = {
            "brickwork": lambda b=batch: brickwork.summary(model, (3, 224, 224), batch_size=b),
            "torchinfo": lambda b=batch: torchinfo.summary(
                model, input_size=(b, 3, 224, 224), verbose=0
            ),
        }
        first = {name: timed(fn) for name, fn in tools.items()}
        times: dict[str, list[float]] = {name: [] for name in tools}
        for rep in range(args.reps):
            for name in list(tools) if rep % 2 == 0 else list(reversed(tools)):
                times[name].append(timed(tools[name]))
        bw, ti = (statistics.median(times[name]) for name in tools)
        print(
            f"{batch:>5} {bw * 1e3:>13.1f} {ti * 1e3:>13.1f} {bw / ti:>7.3f} "
            f"{first['brickwork'] * 1e3:>12.0f} / {first['torchinfo'] * 1e3:<10.0f}"
        )

    if args.resnet_only:
        return
    bert_table(args.reps)

    print("\n2. peak resident memory above `import torch`, fresh process per case")
    for case in (
        "brickwork-meta-resnet50",
        "brickwork-real-resnet50",
        "torchinfo-real-resnet50-b1",
        "torchinfo-real-resnet50-b32",
    ):
        r = in_subprocess(case)
        peak = r.get("peak_mib_above_torch", float("nan"))
        print(f"  {case:<30} {peak:>8.1f} MiB  {r.get('seconds', 0):.2f} s")
    print("     (brickwork at batch 32; the real ResNet-50's own weights are 97.5 MiB)")

    print(f"\n3. MLP spec of {DEEP} x {WIDE}x{WIDE} linear layers, batch 32")
    r = in_subprocess("brickwork-20b-spec")
    print(
        f"  brickwork: {r.get('params', 0):,} parameters in {r.get('seconds', 0):.2f} s, "
        f"peak {r.get('peak_mib_above_torch', float('nan')):.1f} MiB above import torch; "
        f"training it with Adam would take {r.get('train_gib', 0):.0f} GiB"
    )
    r = in_subprocess("torchinfo-20b-meta")
    print(f"  torchinfo on the same model built on meta: {r.get('outcome')}")
    print(f"  (a real copy for torchinfo would need {20.4e9 * 4 / 2**30:.0f} GiB of weights)")


if __name__ == "__main__":
    main()
