"""Nothing lost, nothing trusted: the probes of issue 13, repeated and counted.

1. **Kills**: ``brickwork train`` killed with SIGKILL at random moments and at each stage of the
   end of a run, then ``--resume``d: every trial must end with the straight run's weights
   (bit-identical) and its metrics (but for wall times).
2. **Damaged files**: model files and checkpoints with flipped bytes, truncated, replaced by
   garbage or a pickle, or with damaged metadata fields, given to ``evaluate``, ``export`` and
   ``train --resume``: no traceback, and no damaged tensor accepted.
3. **Random specs**: random specs and bombs (repeat counts, YAML aliases, deep nesting, huge
   sizes) given to ``build``: only models or ``SpecError``s, each within 5 s and 500 MB.
4. **Two writers**: two ``brickwork train`` started together on one ``--out``: one is refused.

    .venv/bin/python benchmarks/reliability.py [--kills 30] [--files 100] [--specs 2000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import reprlib
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

COMMAND = str(Path(sys.executable).with_name("brickwork"))
SPEC = {  # a small classifier for the 8×8 digits: a run of 3 epochs takes a few seconds
    "model": [
        {"conv_block": {"out": 8, "kernel_size": 3, "padding": 1}},
        {"maxpool2d": {"kernel_size": 2}},
        "flatten",
        {"linear": {"out": 10}},
    ]
}
TRAIN = ["--epochs", "3", "--batch-size", "128"]


def train(out: Path, *extra: str) -> subprocess.Popen[str]:
    spec = out.parent / "spec.json"
    spec.write_text(json.dumps(SPEC))
    return subprocess.Popen(
        [COMMAND, "train", str(spec), "--out", str(out), *TRAIN, *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    process = train(out, *extra)
    _, err = process.communicate(timeout=600)
    return subprocess.CompletedProcess(process.args, process.returncode, "", err)


def rows(out: Path) -> list[dict[str, Any]]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]


# ----------------------------------------------------------------------------- 1. kills


EPOCHS = int(TRAIN[1])
END_STAGES = (  # what the end of a run writes, in order (loop.end_epoch, then loop.finish)
    "after the last checkpoint, before its metrics line",
    "after the last metrics line, before its curves",
    "after the last epoch's curves, before the test's curves",
    "between the test's curves and the confusion matrix",
    "after the pictures, before the test line",
)
STAGES = (
    "before its directory was made (the command is run again)",
    "before the first checkpoint",
    "during the epochs",
    *END_STAGES,
    "after the test line (the run was whole)",
)


class Watch:
    """Where a run is, read off its directory while it runs. ``curves.png`` is written at the
    end of every epoch and again with the test line, so the watch counts its writes (a new
    inode and time each: it is renamed into place); no two are less than a poll apart."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.curves = 0
        self._seen: tuple[int, int] | None = None

    def poll(self) -> str:
        try:
            status = (self.out / "curves.png").stat()
        except OSError:
            return self.stage()
        if (status.st_ino, status.st_mtime_ns) != self._seen:
            self._seen = (status.st_ino, status.st_mtime_ns)
            self.curves += 1
        return self.stage()

    def stage(self) -> str:
        out = self.out
        if not out.exists():
            return STAGES[0]
        n = _pointer(out)  # pair n is epoch n's: nothing else is in the run's directory
        if n is None:
            return STAGES[1]
        lines = _lines(out / "metrics.jsonl")
        if n < EPOCHS:
            return STAGES[2]
        if len(lines) < EPOCHS:
            return END_STAGES[0]
        if "test_acc" in lines[-1]:
            return STAGES[-1]
        if (out / "confusion.png").exists():
            return END_STAGES[4]
        if self.curves < EPOCHS:
            return END_STAGES[1]
        return END_STAGES[2] if self.curves == EPOCHS else END_STAGES[3]


def _pointer(out: Path) -> int | None:
    try:
        return int(json.loads((out / "checkpoint.json").read_text())["n"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def kill_when(
    process: subprocess.Popen[str], ready: Callable[[str], bool], watch: Watch, deadline: float
) -> str | None:
    """SIGKILL ``process`` as soon as ``ready(stage)``; the stage it was killed at, or ``None``
    when it ended first."""
    while process.poll() is None and time.monotonic() < deadline:
        if ready(watch.poll()):
            process.kill()
            process.wait()
            return watch.poll()  # what it wrote before it died
        time.sleep(0.001)
    process.wait()
    return None


def at_or_after(target: str) -> Callable[[str], bool]:
    """Ready at ``target``, or at a later stage when the run went past it between two polls."""
    return lambda stage: STAGES.index(stage) >= STAGES.index(target)


def kills(root: Path, trials: int, rng: random.Random) -> Counter[str]:
    """The first trials kill at each end stage in turn, then every other trial does; the rest
    kill at random moments."""
    straight = root / "straight" / "run"
    straight.parent.mkdir(parents=True)
    began = time.monotonic()
    assert finished(straight).returncode == 0
    length = time.monotonic() - began
    weights, metrics = (straight / "model.safetensors").read_bytes(), rows(straight)
    counts: Counter[str] = Counter()
    for trial in range(trials):
        out = root / f"trial{trial}" / "run"
        out.parent.mkdir(parents=True)
        process = train(out)
        targeted = trial < len(END_STAGES) or trial % 2 == 0
        if targeted:
            ready = at_or_after(END_STAGES[trial % len(END_STAGES)])
        else:
            moment = time.monotonic() + rng.uniform(0.3, 0.9 * length)
            ready = lambda _, moment=moment: time.monotonic() >= moment  # noqa: E731
        killed = kill_when(process, ready, Watch(out), time.monotonic() + 600)
        stage = killed or "not killed (it ended first)"
        # as a user would: the same command, with --resume once the run has a directory
        resumed = (finished(out, "--resume") if out.exists() else finished(out)) if killed else None
        model = out / "model.safetensors"
        same = model.is_file() and model.read_bytes() == weights and rows(out) == metrics
        # killed after its test line: the run was whole, and --resume says there is nothing to do
        complete = resumed is not None and "the run is complete" in resumed.stderr
        ok = same and (resumed is None or resumed.returncode == 0 or complete)
        counts[f"{stage}: {'identical' if ok else 'DIFFERENT'}"] += 1
        if not ok and resumed is not None:
            print(f"  trial {trial}: {resumed.stderr.strip()}", file=sys.stderr)
    return counts


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except OSError:
        return []


# ----------------------------------------------------------------------------- 2. damaged files


def damaged_files(root: Path, count: int, rng: random.Random) -> Counter[str]:
    """Damage copies of a trained run's files; count what the commands make of them."""
    from brickwork.cli import main

    source = root / "source" / "run"
    source.parent.mkdir(parents=True)
    assert finished(source, "--epochs", "1").returncode == 0
    counts: Counter[str] = Counter()
    for i in range(count):
        target = root / f"damaged{i}"
        shutil.copytree(source, target)
        kind, file = DAMAGES[i % len(DAMAGES)], rng.choice(["model", "checkpoint"])
        path = target / ("model.safetensors" if file == "model" else _weights(target))
        tensors_damaged = kind(path, rng)
        args = (
            ["evaluate", str(target)] if file == "model" and i % 2 else
            ["export", str(path), "--format", "torchscript", "--out", str(target / "m.ts")]
            if file == "model" else ["train", "--out", str(target), "--resume", "--epochs", "1"]
        )  # fmt: skip
        status, err = _run_in_process(main, args)
        if status is None:
            counts["traceback"] += 1
            print(f"  {kind.__name__} {file} {args[0]}: {err}", file=sys.stderr)
        elif status == 0 and tensors_damaged:
            counts["damaged tensors accepted"] += 1
        elif status == 0:
            counts["accepted (the damage was not in the tensors)"] += 1
        else:
            counts["refused in one line" if err.count("\n") <= 2 else "refused, many lines"] += 1
    return counts


def _weights(run: Path) -> str:
    return str(json.loads((run / "checkpoint.json").read_text())["weights"])


def _run_in_process(main: Callable[[list[str]], int], args: list[str]) -> tuple[int | None, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = main(args)
        except SystemExit as exit:
            status = int(exit.code or 0)
        except BaseException as exc:  # what the user would see as a traceback
            return None, f"{type(exc).__name__}: {exc}"
    return status, err.getvalue()


def _data_start(path: Path) -> int:
    return 8 + int.from_bytes(path.read_bytes()[:8], "little")


def flip_tensor_byte(path: Path, rng: random.Random) -> bool:
    data = bytearray(path.read_bytes())
    data[rng.randrange(_data_start(path), len(data))] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))
    return True


def flip_header_byte(path: Path, rng: random.Random) -> bool:
    data = bytearray(path.read_bytes())
    data[rng.randrange(8, _data_start(path))] ^= 1 << rng.randrange(7)
    path.write_bytes(bytes(data))
    return False


def truncate(path: Path, rng: random.Random) -> bool:
    data = path.read_bytes()
    path.write_bytes(data[: rng.randrange(len(data))])
    return True


def garbage(path: Path, rng: random.Random) -> bool:
    path.write_bytes(rng.randbytes(rng.randrange(1, 4096)))
    return True


def pickle_file(path: Path, rng: random.Random) -> bool:
    import pickle

    path.write_bytes(pickle.dumps({"weights": list(range(rng.randrange(100)))}))
    return True


def damage_field(path: Path, rng: random.Random) -> bool:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(path), framework="pt") as f:
        content = json.loads((f.metadata() or {})["brickwork"])
    holder = content["training"] if "training" in content and rng.random() < 0.5 else content
    key = rng.choice(sorted(holder))
    holder[key] = rng.choice([None, -1, 10**9, "abc", [], [0], {"x": 1}, "/etc/passwd", 1.5])
    save_file(load_file(str(path)), str(path), metadata={"brickwork": json.dumps(content)})
    return False


DAMAGES = [flip_tensor_byte, flip_header_byte, truncate, garbage, pickle_file, damage_field]


# ----------------------------------------------------------------------------- 3. random specs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "spec"))
from random_specs import random_bomb, random_spec  # noqa: E402  (the property tests' generator)

BOMBS: list[Any] = [
    {"input": [3, 8, 8], "model": [{"repeat": {"times": 10**9, "body": ["relu"]}}]},
    {"input": [10**18, 4], "model": ["flatten"]},
    {"input": [3, 8, 8], "model": [{"conv2d": {"out": 10**12, "kernel_size": 1}}]},
    "a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + "input: [2]\nmodel: *i\n",
    {"input": [4], "model": [{"forward": {"linear": {"out": 2}}}]},
    {"input": [4], "model": [{"linear": {"out": 2}, "name": "training"}]},
    {"input": [4], "model": [{"linear": {"out": 2}, "name": "__dict__"}]},
]


def _deep(depth: int) -> dict[str, Any]:
    node: Any = ["relu"]
    for _ in range(depth):
        node = [{"sequential": node}]
    return {"input": [4], "model": node}


def specs(count: int, rng: random.Random) -> Counter[str]:
    """Build ``count`` specs (at least the fixed bombs), each with a 5 s alarm: the fixed bombs,
    random bombs, random specs; count what came out, each case once."""
    import brickwork
    from brickwork.errors import SpecError, SpecWarning

    def over_time(signum: int, frame: Any) -> None:
        raise TimeoutError

    signal.signal(signal.SIGALRM, over_time)
    warnings.simplefilter("ignore", SpecWarning)  # random graphs leave branches unread
    cases: list[Any] = [*BOMBS, _deep(300), _deep(10_000)]  # always: count is at least these
    bombs = min(50, max(0, count - len(cases)) // 4)  # 50 of 2,000; a quarter of a small count
    cases += [random_bomb(rng) for _ in range(bombs)]
    cases += [random_spec(rng, bombs=True) for _ in range(count - len(cases))]
    counts: Counter[str] = Counter()
    for case in cases:
        before = _rss_mib()
        began = time.perf_counter()
        signal.alarm(5)
        try:
            brickwork.build(case, device="meta" if rng.random() < 0.5 else None)
            outcome = "a model"
        except SpecError:
            outcome = "a SpecError"
        except TimeoutError:
            outcome = "OVER 5 s"
        except BaseException as exc:
            outcome = f"OTHER: {type(exc).__name__}"
            print(
                f"  {reprlib.repr(case)}: {type(exc).__name__}: {str(exc)[:200]}",
                file=sys.stderr,
            )
        finally:
            signal.alarm(0)
        grew = _rss_mib() - before
        over = grew > 500 or time.perf_counter() - began > 5
        counts[outcome + (", OVER 5 s or 500 MB" if over else "")] += 1  # each case once
    return counts


def _rss_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# ----------------------------------------------------------------------------- 4. two writers


def two_writers(root: Path, trials: int) -> Counter[str]:
    counts: Counter[str] = Counter()
    for trial in range(trials):
        out = root / f"together{trial}" / "run"
        out.parent.mkdir(parents=True)
        first, second = train(out), train(out)
        results = [
            (p.wait(timeout=600), p.stderr.read() if p.stderr else "") for p in (first, second)
        ]
        refused = [
            err
            for status, err in results
            if status == 2 and ("in use by" in err or "already holds a run" in err)
        ]
        done = [status for status, _ in results if status == 0]
        counts["one ran, one was refused" if len(refused) == 1 and len(done) == 1 else "OTHER"] += 1
    return counts


# ----------------------------------------------------------------------------- report


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="brickwork-reliability-") as folder:
        yield Path(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--specs", type=int, default=2000)
    parser.add_argument("--writers", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(f"brickwork reliability probes (seed {args.seed}); peak RSS in MiB where given")
    with scratch() as root:
        sections = [
            ("kills, then --resume", lambda: kills(root / "kills", args.kills, rng)),
            ("damaged files", lambda: damaged_files(root / "files", args.files, rng)),
            ("random specs and bombs", lambda: specs(args.specs, rng)),
            ("two writers on one --out", lambda: two_writers(root / "writers", args.writers)),
        ]
        for title, probe in sections:
            began = time.perf_counter()
            counts = probe()
            print(f"\n{title} ({sum(counts.values())} trials, {time.perf_counter() - began:.0f} s)")
            for outcome, n in sorted(counts.items()):
                print(f"  {n:>5}  {outcome}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"\npeak RSS of this process: {peak} MiB")


if __name__ == "__main__":
    main()
