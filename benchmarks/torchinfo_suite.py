"""brickwork.summary on torchinfo's own test fixtures, with the inputs torchinfo's tests give them.

The fixture models are imported from a checkout of torchinfo's repository (they are not copied
here); the inputs below are the ones its ``tests/torchinfo_test.py`` passes. For each: does the
summary finish with no error, do its parameters equal the unique parameter count, do its MACs
equal PyTorch's ``FlopCounterMode`` (or which ops are listed as uncounted).

    .venv/bin/python benchmarks/torchinfo_suite.py --tests /path/to/torchinfo/tests
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import brickwork


def cases(m: Any) -> list[tuple[str, Callable[[], nn.Module], Callable[[], Any]]]:
    """(name, model, positional inputs or a dict of keyword inputs), as torchinfo's tests."""
    r = torch.randn
    return [
        ("SingleInputNet", m.SingleInputNet, lambda: r(16, 1, 28, 28)),
        ("LinearModel", m.LinearModel, lambda: r(2, 128)),
        ("UninitializedParameterModel", m.UninitializedParameterModel, lambda: r(2, 128)),
        (
            "MultipleInputNetDifferentDtypes",
            m.MultipleInputNetDifferentDtypes,
            lambda: (r(2, 1, 300), torch.ones(2, 1, 300, dtype=torch.long)),
        ),
        ("ScalarNet", m.ScalarNet, lambda: (r(64, 1, 28, 28), 5)),
        ("LSTMNet", m.LSTMNet, lambda: torch.randint(0, 100, (1, 100))),
        ("RecursiveNet", m.RecursiveNet, lambda: r(1, 64, 28, 28)),
        ("CustomParameter", lambda: m.CustomParameter(8, 4), lambda: r(3)),
        ("ParameterListModel", m.ParameterListModel, lambda: r(100, 100)),
        ("SiameseNets", m.SiameseNets, lambda: (r(1, 1, 88, 88), r(1, 1, 88, 88))),
        ("FunctionalNet", m.FunctionalNet, lambda: r(1, 1, 28, 28)),
        ("ReturnDict", m.ReturnDict, lambda: r(1, 1, 28, 28)),
        ("ContainerModule", m.ContainerModule, lambda: r(1, 5)),
        ("AutoEncoder", m.AutoEncoder, lambda: r(1, 3, 64, 64)),
        ("PartialJITModel", m.PartialJITModel, lambda: r(2, 1, 28, 28)),
        ("MixedTrainableParameters", m.MixedTrainableParameters, lambda: r(1, 1)),
        ("ReuseLinear", m.ReuseLinear, lambda: r(2, 10)),
        ("ReuseLinearExtended", m.ReuseLinearExtended, lambda: r(2, 10)),
        ("ReuseReLU", m.ReuseReLU, lambda: r(4, 4, 64, 64)),
        ("SharedModuleInNestedList", m.SharedModuleInNestedList, lambda: r(2, 10)),
        ("TiedWeightsModel", m.TiedWeightsModel, lambda: r(2, 10)),
        ("ParameterFCNet", lambda: m.ParameterFCNet(128, 64, 32), lambda: r(64, 128)),
        ("InsideModel", m.InsideModel, lambda: r(1, 1)),
        ("CNNModuleList", lambda: m.CNNModuleList(m.ConvLayerA), lambda: r(1, 1, 10)),
        ("SimpleRNN", m.SimpleRNN, lambda: r(6, 3)),
        ("TensorKernelSizeConv", m.TensorKernelSizeConv, lambda: r(1, 1, 10, 10)),
        ("CategoricalOutputModel", m.CategoricalOutputModel, lambda: r(10, 3)),
        ("NormalOutputModel", m.NormalOutputModel, lambda: r(10, 3)),
        ("EdgecaseInputOutputModel", m.EdgecaseInputOutputModel, lambda: [{"x": r(1, 3)}]),
        (
            "PackPaddedLSTM",
            m.PackPaddedLSTM,
            lambda: (torch.randint(0, 60, (2, 20)), torch.tensor([20, 12])),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", required=True, help="torchinfo's tests/ folder")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(args.tests).resolve().parent))
    from tests.fixtures import models  # torchinfo's own fixtures

    ok = 0
    found = cases(models)
    for name, build, make in found:
        torch.manual_seed(0)
        try:
            model, data = build(), make()
        except Exception as err:  # a fixture that needs another torch than this one
            print(f"{name:<34} fixture does not build here: {type(err).__name__}: {err}")
            continue
        unique = sum(p.numel() for p in model.parameters() if not _lazy(p))
        s = brickwork.summary(model, input_data=data)
        unique = sum(p.numel() for p in model.parameters() if not _lazy(p)) or unique
        with FlopCounterMode(display=False) as counter:
            try:
                model(*data) if isinstance(data, tuple | list) else model(data)
                reference: int | None = counter.get_total_flops() // 2
            except Exception:  # these inputs fail in eager PyTorch too: the error is the model's
                reference = None
        params_ok = s.total_params == unique or any(_lazy(p) for p in model.parameters())
        macs_ok = reference is None or s.macs == reference or bool(s.uncounted_ops)
        good = (s.error is None or reference is None) and params_ok and macs_ok
        ok += good
        verdict = "ok" if params_ok else "WRONG"
        eager = "(eager fails too) " if reference is None else ""
        print(
            f"{name:<34} {s.run:<5} params {s.total_params:>10,} ({verdict}) "
            f"MACs {s.macs:>12,} / {reference if reference is not None else '-':<12} "
            f"{eager}{s.error or s.uncounted_ops or ''}"
        )
    print(
        f"\n{ok} of {len(found)} fixtures: no error (or the same failure as eager PyTorch's on "
        "these inputs), exact parameters, MACs as FlopCounterMode"
    )


def _lazy(p: torch.Tensor) -> bool:
    return isinstance(p, nn.parameter.UninitializedParameter)


if __name__ == "__main__":
    main()
