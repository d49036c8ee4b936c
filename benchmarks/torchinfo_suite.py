"""brickwork.summary and doctor on torchinfo's own test suite: every summary call its tests make.

The fixture models are imported from a checkout of torchinfo's repository (they are not copied
here); each case below is one ``summary(...)`` call of its ``tests/*_test.py``, named after the
test, with the same model and inputs written as brickwork takes them: torchinfo's
``input_size`` (batch included) as ``meta`` tensors of that size in ``input_data`` (they stand
for a shape), or as ``input_shape`` and ``batch_size`` where the test leaves the batch out
(``batch_dim=0``); its extra keyword arguments as keyword inputs. A call without any input
(``summary(model)``, parameters only) is made without one. Each is checked by
``model_check.py``: no error (or eager PyTorch's own on those inputs), exact parameters, MACs
equal to ``FlopCounterMode`` or the ops not counted listed, model unchanged, doctor clean.

The tests of ``torchinfo_xl_test.py`` need torchvision (and build their models without weights
here: nothing is downloaded); they run where it is installed. The GPU tests need CUDA and run
where there is one; ``half_precision_test.py`` runs on the CPU in float16 otherwise.

    .venv/bin/python benchmarks/torchinfo_suite.py --tests /path/to/torchinfo/tests
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from model_check import Case, run_cases

Given = Callable[[], dict[str, Any]]


def size(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """torchinfo's ``input_size`` entry: a meta tensor of that whole size."""
    return torch.empty(shape, dtype=dtype, device="meta")


def data(*values: Any, **named: Any) -> Given:
    """``input_data``: one value, several positional ones (a tuple), or keyword ones (a dict)."""
    if named:
        return lambda: {"input_data": named}
    if len(values) == 1:
        return lambda: {"input_data": values[0]}
    return lambda: {"input_data": tuple(values)}


def fresh(**named: Callable[[], Any]) -> Given:
    """Keyword inputs made anew for each call (real tensors the forward may write to)."""
    return lambda: {"input_data": {k: make() for k, make in named.items()}}


def shape(*per_sample: int, batch: int = 1, dtype: torch.dtype = torch.float32) -> Given:
    """``input_size`` without its batch (``batch_dim=0``): brickwork's ``input_shape``."""
    return lambda: {"input_shape": per_sample, "batch_size": batch, "input_dtype": dtype}


NO_INPUT: Given = dict  # summary(model): parameters only


def pruned() -> nn.Module:
    from tests.fixtures.models import SingleInputNet

    model = SingleInputNet()
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            prune.l1_unstructured(module, "weight", 0.5)  # type: ignore[no-untyped-call]
    return model


def hooked() -> nn.Module:
    from tests.fixtures.models import ReuseLinearExtended

    model = ReuseLinearExtended()
    model.linear.register_forward_pre_hook(lambda module, inputs: None)
    model.linear.register_forward_hook(lambda module, inputs, outputs: None)
    return model


def frozen(build: Callable[[], nn.Module], first: int) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        model = build()
        for i, p in enumerate(model.parameters()):
            p.requires_grad_(i >= first)
        return model

    return make


def leaky(shared: bool) -> Callable[[], nn.Module]:
    """test_reusing_activation_layers' two models."""

    def make() -> nn.Module:
        act = nn.LeakyReLU(inplace=True)
        acts = [act] * 3 if shared else [nn.LeakyReLU(inplace=True) for _ in range(3)]
        return nn.Sequential(acts[0], nn.Identity(), acts[1], nn.Identity(), acts[2])

    return make


def single_parameter(with_conv: bool) -> Callable[[], nn.Module]:
    """test_single_parameter_model's ParameterA and ParameterB (no forward)."""

    def make() -> nn.Module:
        model = nn.Module()
        model.w = nn.Parameter(torch.zeros(1024))
        if with_conv:
            model.conv = nn.Conv2d(3, 6, 3)
        return model

    return make


def main_cases(m: Any) -> list[Case]:
    """``torchinfo_test.py``, ``exceptions_test.py`` and ``half_precision_test.py`` (on the CPU)."""
    r, f, long = torch.randn, size, torch.long
    d = {256: r(10, 1), 512: [r(10, 1)]}
    ids = torch.ones(20, 128).long()
    lengths = torch.tensor([13, 12] + [11] * 8 + [10] * 14 + [9] * 14 + [8] * 9 + [7] * 19)
    lengths = torch.cat([lengths, torch.tensor([6] * 27 + [5] * 20 + [4] * 15)])
    point = m.NamedTuple.Point((2, 1, 28, 28), (2, 1, 28, 28))
    x300, x300l = r(1, 300), r(1, 300).long()
    half: Callable[[Callable[[], nn.Module]], Callable[[], nn.Module]] = lambda b: (  # noqa: E731
        lambda: b().half()
    )
    return [
        ("basic_summary", m.SingleInputNet, NO_INPUT),
        ("string_result", m.SingleInputNet, data(f(16, 1, 28, 28))),
        ("single_input", m.SingleInputNet, data(f(2, 1, 28, 28))),
        ("input_tensor", m.SingleInputNet, data(r(5, 1, 28, 28))),
        ("batch_size_optimization", m.SingleInputNet, shape(1, 28, 28)),
        ("single_linear_layer", lambda: nn.Linear(2, 5), NO_INPUT),
        ("single_linear_layer-2", lambda: nn.Linear(2, 5), data(f(1, 2))),
        ("training_mode", lambda: nn.Linear(2, 5), data(torch.zeros(1, 2))),
        ("uninitialized_tensor", m.UninitializedParameterModel, NO_INPUT),
        ("uninitialized_tensor-2", m.UninitializedParameterModel, data(r(2, 2))),
        (
            "multiple_input_types",
            m.MultipleInputNetDifferentDtypes,
            data(f(1, 300), f(1, 300, dtype=long)),
        ),
        ("single_input_all_cols", m.SingleInputNet, data(r(7, 1, 28, 28))),
        ("groups", lambda: nn.Conv2d(16, 32, 3, groups=4), data(r(7, 16, 28, 28))),
        ("linear", lambda: nn.Linear(8, 64), data(r(32, 16, 8))),
        ("single_input_batch_dim", m.SingleInputNet, shape(1, 28, 28)),
        ("pruning", pruned, data(f(16, 1, 28, 28))),
        ("dict_input", m.MultipleInputNetDifferentDtypes, data(x1=x300, x2=x300l)),
        ("row_settings", m.SingleInputNet, data(f(16, 1, 28, 28))),
        ("formatting_options", m.SingleInputNet, data(f(16, 1, 28, 28))),
        ("jit", m.LinearModel, data(r(64, 128))),
        ("jit-2", lambda: torch.jit.script(m.LinearModel()), data(r(64, 128))),
        ("partial_jit", lambda: torch.jit.script(m.PartialJITModel()), data(r(2, 1, 28, 28))),
        ("custom_parameter", lambda: m.CustomParameter(8, 4), data(f(1))),
        ("parameter_list", m.ParameterListModel, data(f(100, 100))),
        ("dict_parameters_1", m.DictParameter, data(x=d, scale_factor=5)),
        ("dict_parameters_2", m.DictParameter, data(x=d, scale_factor=5)),
        ("dict_parameters_3", m.DictParameter, data(d, 5)),
        (
            "dict_with_string_value",
            m.DictWithNonTensorValues,
            data([{"tensor": torch.rand(1, 3, 32, 32), "label": "cat"}]),
        ),
        (
            "dict_with_none_value",
            m.DictWithNonTensorValues,
            data([{"tensor": torch.rand(1, 3, 32, 32), "mask": None}]),
        ),
        ("lstm", m.LSTMNet, data(f(1, 100, dtype=long))),
        ("lstm_custom_batch_size", m.LSTMNet, data(f(100, 1, dtype=long))),
        ("recursive", m.RecursiveNet, data(f(1, 64, 28, 28))),
        ("siamese_net", m.SiameseNets, data(f(1, 1, 88, 88), f(1, 1, 88, 88))),
        ("container", m.ContainerModule, data(f(1, 5))),
        ("container-2", m.ContainerModule, data(f(5))),
        ("empty_module", m.EmptyModule, NO_INPUT),
        ("device", m.SingleInputNet, data(f(5, 1, 28, 28))),
        ("device-2", m.SingleInputNet, data(r(5, 1, 28, 28))),
        ("pack_padded", m.PackPaddedLSTM, data(batch=ids, lengths=lengths)),
        (
            "module_dict",
            m.ModuleDictModel,
            data(x=r(1, 10, 3, 3), layer_type="conv", activation_type="lrelu"),
        ),
        (
            "module_dict-2",
            m.ModuleDictModel,
            data(x=r(1, 10, 3, 3), layer_type="pool", activation_type="prelu"),
        ),
        ("highly_nested_dict_model", m.HighlyNestedDictModel, data(torch.ones(10))),
        ("edgecase_input_output_model", m.EdgecaseInputOutputModel, data([{}])),
        ("model_with_args", m.RecursiveNet, data(x=f(1, 64, 28, 28), args1="args1", args2="args2")),
        ("input_size_possibilities", lambda: m.CustomParameter(2, 3), data(f(2))),
        ("multiple_input_tensor_args", m.MultipleInputNetDifferentDtypes, data(x1=x300, x2=x300l)),
        ("multiple_input_tensor_dict", m.MultipleInputNetDifferentDtypes, data(x1=x300, x2=x300l)),
        ("multiple_input_tensor_list", m.MultipleInputNetDifferentDtypes, data(x300, x300l)),
        ("namedtuple", m.NamedTuple, data(f(2, 1, 28, 28), f(2, 1, 28, 28), point)),
        ("return_dict", m.ReturnDict, data(f(1, 1, 28, 28), f(1, 12))),
        ("autoencoder", m.AutoEncoder, data(f(1, 3, 64, 64))),
        ("reusing_activation_layers", leaky(shared=True), NO_INPUT),
        ("reusing_activation_layers-2", leaky(shared=False), NO_INPUT),
        ("reusing_activation_layers-3", leaky(shared=True), fresh(input=lambda: r(2, 8))),
        ("mixed_trainable_parameters", m.MixedTrainableParameters, NO_INPUT),
        ("mixed_trainable_parameters-2", m.MixedTrainableParameters, data(f(1, 10))),
        ("too_many_linear", m.ReuseLinear, data(f(2, 10))),
        ("too_many_linear_plus_existing_hooks", m.ReuseLinearExtended, data(f(2, 10))),
        ("too_many_linear_plus_existing_hooks-2", hooked, data(f(2, 10))),
        ("too_many_relus", m.ReuseReLU, data(f(4, 4, 64, 64))),
        ("pruned_adversary", lambda: m.PrunedLayerNameModel(8, 4), data(f(1))),
        ("pruned_adversary-2", lambda: m.FakePrunedLayerModel(8, 4), data(f(1))),
        ("trainable_column", m.MixedTrainable, data(f(1, 1, 1))),
        ("empty_module_list", nn.ModuleList, NO_INPUT),
        ("single_parameter_model", single_parameter(False), NO_INPUT),
        ("single_parameter_model-2", single_parameter(True), NO_INPUT),
        (
            "register_parameter",
            lambda: m.RegisterParameter(nn.Linear(2, 2), nn.Linear(2, 2)),
            NO_INPUT,
        ),
        (
            "register_parameter-2",
            lambda: m.RegisterParameter(nn.Linear(2, 2), nn.Linear(2, 2)),
            fresh(x=lambda: r(1, 2)),
        ),
        ("parameters_with_other_layers", lambda: m.ParameterFCNet(128, 64, 32), data(r(3, 128))),
        ("parameters_with_other_layers-2", lambda: m.ParameterFCNet(128, 64), data(r(3, 128))),
        ("nested_leftover_params", m.InsideModel, data([torch.zeros(100, 2)])),
        (
            "recursive_with_missing_layers",
            m.RecursiveWithMissingLayers,
            data([torch.rand(2, 3, 128, 128)]),
        ),
        ("cnn_module_list", lambda: m.CNNModuleList(m.ConvLayerA), data(f(1, 1, 10))),
        ("cnn_module_list-2", lambda: m.CNNModuleList(m.ConvLayerB), data(f(1, 1, 10))),
        ("shared_module_in_nested_list", m.SharedModuleInNestedList, data(f(1, 4))),
        ("tied_weights", m.TiedWeightsModel, data(torch.randint(0, 1000, (2, 8)))),
        ("hide_recursive_layers", m.SimpleRNN, data(f(2, 3))),
        (
            "hide_recursive_layers_outside_loop",
            lambda: m.SimpleRNN(repeat_outside_loop=True),
            data(f(2, 3)),
        ),
        ("tensor_kernel_size", m.TensorKernelSizeConv, data(f(1, 1, 16))),
        ("scalar_tensor_input_size", m.ScalarTensorInputNet, data(f(1, 10), f())),
        (
            "scalar_tensor_input_size-2",
            m.ScalarTensorInputNet,
            data(torch.rand(1, 10), torch.rand([])),
        ),
        ("categorical_distribution_output", m.CategoricalOutputModel, data(f(1, 10))),
        ("normal_distribution_output", m.NormalOutputModel, data(f(1, 10))),
        # exceptions_test.py: the forwards that fail are the model's errors (eager fails too)
        (
            "exceptions-incorrect_model_forward",
            lambda: m.EdgeCaseModel(throw_error=True),
            data(f(5, 1, 28, 28)),
        ),
        (
            "exceptions-incorrect_model_forward-2",
            lambda: m.EdgeCaseModel(return_str=True),
            data(f(5, 1, 28, 28)),
        ),
        (
            "exceptions-incorrect_model_forward-3",
            lambda: m.EdgeCaseModel(return_class=True),
            data(f(5, 1, 28, 28)),
        ),
        (
            "exceptions-incorrect_model_forward-4",
            lambda: m.EdgeCaseModel(throw_error=True),
            data([[[r(1, 28, 28)]]]),
        ),
        (
            "exceptions-forward_pass_exception",
            lambda: m.EdgeCaseModel(throw_error=False),
            data(f(1, 1, 28, 28)),
        ),
        # half_precision_test.py, on the CPU
        (
            "half-single_input_half",
            half(m.SingleInputNet),
            data(f(2, 1, 28, 28, dtype=torch.float16)),
        ),
        ("half-linear_model_half", m.LinearModel, data(r(64, 128))),
        ("half-linear_model_half-2", half(m.LinearModel), data(r(64, 128).half())),
        ("half-lstm_half", half(m.LSTMNet), data(f(1, 100, dtype=long))),
    ]


def xl_cases() -> list[Case]:
    """``torchinfo_xl_test.py``: torchvision's ResNets and GoogLeNet (no weights), the genotype
    and TMVA-Net fixtures, and FLAN-T5-small from its configuration (nothing downloaded)."""
    try:
        import torchvision
    except ImportError:
        print("torchinfo_xl_test.py: torchvision is not importable here, its cases skipped")
        return []
    from tests.fixtures.genotype import GenotypeNetwork
    from tests.fixtures.tmva_net import TMVANet

    tv, f = torchvision.models, size
    tmva = (f(1, 1, 5, 256, 64), f(1, 1, 5, 256, 256), f(1, 1, 5, 256, 64))
    cases: list[Case] = [
        ("xl-ascii_only", tv.resnet18, data(f(1, 3, 64, 64))),
        ("xl-frozen_layers", frozen(tv.resnet18, 30), data(f(1, 3, 64, 64))),
        ("xl-eval_order_doesnt_matter", lambda: tv.resnet18().eval(), data(f(1, 3, 224, 224))),
        ("xl-resnet18_depth_consistency", tv.resnet18, data(f(1, 3, 64, 64))),
        ("xl-resnet50", tv.resnet50, data(f(2, 3, 224, 224))),
        ("xl-resnet152", tv.resnet152, data(f(1, 3, 224, 224))),
        (
            "xl-fasterrcnn",
            lambda: tv.detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None),
            data(f(1, 3, 112, 112)),
        ),
        ("xl-genotype", GenotypeNetwork, data(f(2, 3, 32, 32))),
        ("xl-tmva_net_column_totals", lambda: TMVANet(n_classes=4, n_frames=5), data(*tmva)),
        ("xl-google", lambda: tv.googlenet(init_weights=False).eval(), data(f(1, 3, 112, 112))),
        ("xl-google-2", lambda: tv.googlenet(init_weights=False), data(f(1, 3, 112, 112))),
    ]
    try:
        import transformers as t
    except ImportError:
        print("torchinfo_xl_test.py: transformers is not importable here, FLAN-T5 skipped")
        return cases
    config = {"d_model": 512, "d_ff": 1024, "num_layers": 8, "num_heads": 6, "d_kv": 64}
    config |= {"feed_forward_proj": "gated-gelu", "tie_word_embeddings": False}
    config |= {"decoder_start_token_id": 0, "pad_token_id": 0}  # as flan-t5-small's own
    zeros = torch.zeros(3, 100).long()
    cases.append(
        (
            "xl-flan_t5_small",
            lambda: t.AutoModelForSeq2SeqLM.from_config(t.T5Config(**config)),
            data(input_ids=zeros, attention_mask=zeros, labels=zeros),
        )
    )
    return cases


def gpu_cases(m: Any) -> list[Case]:
    """``gpu_test.py`` (where CUDA is)."""
    if not torch.cuda.is_available():
        return []
    cuda = torch.device("cuda")
    return [
        ("gpu-single_layer_network_on_gpu", lambda: nn.Linear(2, 5).cuda(), data(size(1, 2))),
        (
            "gpu-input_size_half_precision",
            lambda: nn.Linear(2, 5).half().cuda(),
            data(size(10, 2, dtype=torch.float16)),
        ),
        ("gpu-device", lambda: m.SingleInputNet().cuda(), data(size(5, 1, 28, 28))),
        (
            "gpu-device-2",
            lambda: m.SingleInputNet().cuda(),
            data(torch.randn(5, 1, 28, 28, device=cuda)),
        ),
        (
            "gpu-device_parallelism",
            lambda: m.MultiDeviceModel("cpu", "cuda"),
            data(torch.randn(10)),
        ),
    ]


RIGHT = {
    "uninitialized_tensor-2": {"no-grad-param"},  # forward makes a new `param` and returns x
    "custom_parameter": {"input-ignored"},  # forward: del x; return self.weight
    "input_size_possibilities": {"input-ignored"},  # the same model
    "pruned_adversary": {"input-ignored"},  # forward: del x; return self.weight_orig
    "pruned_adversary-2": {"input-ignored", "no-grad-param"},  # and weight_mask is never used
    "container": {"no-grad-param"},  # `_between`'s output is overwritten before it is used
    "container-2": {"no-grad-param"},
    "empty_module": {"unregistered-module"},  # `parameter` is a plain tensor with requires_grad
    "single_parameter_model": {"missing-forward"},  # the test's ParameterA has no forward
    "single_parameter_model-2": {"missing-forward"},  # nor has ParameterB
    "parameter_list": {"unused-module"},  # forward reads `self.weights` and returns x
    "hide_recursive_layers": {"unused-module"},  # `projection` runs only outside the loop
    "xl-genotype": {"no-grad-param"},  # forward returns None
    "exceptions-incorrect_model_forward-2": {"no-grad-param"},  # returns a str
    "exceptions-incorrect_model_forward-3": {"no-grad-param"},  # returns a class
}
"""The doctor's errors that are right about torchinfo's fixtures, by case."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", required=True, help="torchinfo's tests/ folder")
    parser.add_argument("--only", help="run the cases whose name holds this text")
    parser.add_argument("--skip-doctor", action="store_true")
    parser.add_argument("--jsonl", help="append each row to this file, and reuse its rows")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(args.tests).resolve().parent))
    from tests.fixtures import models  # torchinfo's own fixtures

    cases = main_cases(models) + xl_cases() + gpu_cases(models)
    if args.only:
        cases = [c for c in cases if args.only in c[0]]
    cases = [(n, b, _copied(g)) for n, b, g in cases]
    run_cases(cases, not args.skip_doctor, args.jsonl, expected=RIGHT)


def _copied(given: Given) -> Given:
    """Each call gets its own copy of the inputs (a forward may write to them)."""
    return lambda: copy.deepcopy(given())


if __name__ == "__main__":
    main()
