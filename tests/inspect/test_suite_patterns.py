"""Patterns that torchinfo's own test suite and torchvision's models use (written here from
scratch, not copied): no input at all, nested inputs, results that are objects, batches joined,
modules picked by key or used through other methods, pruning, TorchScript. Each gives no error
and no wrong total in summary, and no false alarm in the doctor."""

import sys
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from brickwork import doctor, summary

sys.path.insert(0, str(Path(__file__).parent))
import real_cases


class NoArguments(nn.Module):
    """A forward that takes nothing (a learned embedding table returned whole)."""

    def __init__(self) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.randn(3, 4))
        self.proj = nn.Linear(4, 2)

    def forward(self) -> torch.Tensor:
        return self.proj(self.table)  # type: ignore[no-any-return]


class ListOfDicts(nn.Module):
    """An input that is a list of records, each a dict with a tensor and a label."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, records: list[dict[str, Any]]) -> torch.Tensor:
        return self.fc(records[0]["tensor"])  # type: ignore[no-any-return]


class Pair(NamedTuple):
    a: torch.Tensor
    b: torch.Tensor


class TakesNamedTuple(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, pair: Pair) -> torch.Tensor:
        return self.fc(pair.a + pair.b)  # type: ignore[no-any-return]


class TwoViews(nn.Module):
    """A contrastive model: two views' features joined along dimension 0."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.fc(x1), self.fc(x2)])


class Lookup(nn.Module):
    """A table used only through a method other than forward (as RAFT's correlation block)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(4))

    def index(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class UsesLookup(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lookup = Lookup()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.lookup.index(x))  # type: ignore[no-any-return]


class PicksByKey(nn.Module):
    """A head picked from a ModuleDict by an argument."""

    def __init__(self) -> None:
        super().__init__()
        self.heads = nn.ModuleDict({"a": nn.Linear(4, 2), "b": nn.Linear(4, 3)})

    def forward(self, x: torch.Tensor, task: str) -> torch.Tensor:
        return self.heads[task](x)  # type: ignore[no-any-return]


class AuxiliaryHead(nn.Module):
    """An auxiliary classifier run only in training mode (as GoogLeNet's and Inception's)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(4, 4)
        self.head = nn.Linear(4, 2)
        self.aux = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> Any:
        x = self.body(x)
        if self.training:
            return self.head(x), self.aux(x)
        return self.head(x)


class ReturnsText(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> str:
        return str(self.fc(x).shape)


class KeepsOutput(nn.Module):
    """Keeps its last output on self (a cache that a notebook's earlier call filled)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.last: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.last = self.fc(x)
        return self.last


def pruned_linear() -> nn.Module:
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    for module in model:
        if isinstance(module, nn.Linear):
            prune.l1_unstructured(module, "weight", 0.5)  # type: ignore[no-untyped-call]
    return model


def test_no_input_summarises_the_module_tree_and_its_parameters() -> None:
    result = summary(nn.Sequential(nn.Linear(2, 5), nn.ReLU()))
    assert (result.run, result.error, result.total_params) == ("none", None, 15)
    assert [(row.path, row.params) for row in result.rows] == [("", 15), ("0", 15), ("1", 0)]
    text = str(result)
    assert "no input given: parameters only" in text
    assert "MACs per forward pass" not in text


def test_a_forward_that_takes_nothing_runs_without_input() -> None:
    result = summary(NoArguments())
    assert (result.run, result.error, result.total_params, result.macs) == ("meta", None, 22, 24)
    assert doctor(NoArguments()).findings == []


def test_the_doctor_without_input_runs_only_the_checks_that_need_none() -> None:
    report = doctor(nn.Linear(2, 5))
    assert report.findings == []
    assert "forward-error" in report.not_run
    assert "no input was given" in (report.not_run_reason or "")


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (ListOfDicts, lambda: ([{"tensor": torch.rand(3, 4), "label": "cat"}],)),
        (ListOfDicts, lambda: ([{"tensor": torch.empty(3, 4, device="meta"), "mask": None}],)),
        (TakesNamedTuple, lambda: (Pair(torch.rand(3, 4), torch.rand(3, 4)),)),
    ],
    ids=["list-of-dicts", "list-of-dicts-meta", "namedtuple"],
)
def test_nested_inputs_run_on_meta_and_are_found_by_the_doctor(model: Any, data: Any) -> None:
    result = summary(model(), input_data=data())
    assert (result.run, result.error, result.macs) == ("meta", None, 3 * 8)
    report = doctor(model(), input_data=data())
    assert report.findings == [], str(report)


def test_a_distribution_output_reaches_its_parameters_and_counts_no_checks() -> None:
    result = summary(real_cases.Distribution(), (4,), batch_size=3, run="real")
    assert result.uncounted_ops == {}
    assert doctor(real_cases.Distribution(), (4,)).findings == []


def test_batches_joined_along_dimension_0_keep_the_batch() -> None:
    data = (torch.rand(3, 4), torch.rand(3, 4))
    assert doctor(TwoViews(), input_data=data).findings == []


def test_a_module_used_only_through_another_method_is_a_note() -> None:
    report = doctor(UsesLookup(), (4,))
    assert [(f.code, f.severity, f.path) for f in report.findings] == [
        ("missing-forward", "note", "lookup")
    ]
    assert "forward never calls it" in report.findings[0].message


def test_a_module_dict_entry_not_picked_is_a_note() -> None:
    report = doctor(PicksByKey(), input_data={"x": torch.rand(3, 4), "task": "a"})
    assert [(f.code, f.severity, f.path) for f in report.findings] == [
        ("unused-module", "note", "heads.b")
    ]
    assert "picked `heads.a`" in report.findings[0].message


def test_a_head_run_only_in_training_is_a_note_in_eval_mode() -> None:
    report = doctor(AuxiliaryHead().eval(), (4,))
    assert [(f.code, f.severity, f.path) for f in report.findings] == [
        ("unused-module", "note", "aux")
    ]
    assert "run the doctor on model.train()" in report.findings[0].message
    assert doctor(AuxiliaryHead(), (4,)).findings == []


def test_an_output_with_no_tensor_is_named_as_the_cause() -> None:
    report = doctor(ReturnsText(), (4,))
    finding = next(f for f in report.findings if f.code == "no-grad-param")
    assert "the output holds no tensor (it is a str)" in finding.message


def test_a_pruned_weight_is_not_an_unregistered_parameter() -> None:
    assert doctor(pruned_linear(), (4,)).findings == []
    assert summary(pruned_linear(), (4,)).total_params == 12 + 3 + 6 + 2  # weight_orig, bias


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_a_torchscript_module_has_a_forward() -> None:
    model = torch.jit.script(nn.Sequential(nn.Linear(4, 3), nn.ReLU()))
    report = doctor(model, (4,))
    assert [f for f in report.findings if f.severity == "error"] == [], str(report)


def test_a_tensor_computed_by_an_earlier_call_is_not_an_unregistered_parameter() -> None:
    model = KeepsOutput()
    model(torch.rand(3, 4))  # model.last now requires grad, but is no leaf to train
    report = doctor(model, (4,))
    assert [f.code for f in report.findings if f.severity == "error"] == [], str(report)
