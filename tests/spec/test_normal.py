"""brickwork.spec.normal: to_spec, the normalised spec that rebuilds a model."""

from typing import Any

import pytest
import torch
from guide_specs import GUIDE_FAMILY, GUIDE_YAML
from torch import nn

from brickwork import CNNClassifier, SpecError, build, to_spec

GROUNDTRIP_SPECS: list[Any] = [
    GUIDE_YAML,
    GUIDE_FAMILY,
    {
        "input": [4, 8, 8],
        "model": [
            {
                "residual": [
                    {"conv_block": {"out": 8, "kernel_size": 3, "padding": 1, "stride": 2}}
                ],
                "name": "down",
            },
            {"repeat": {"times": 2, "body": ["relu", {"conv2d": {"out": 8, "kernel_size": 1}}]}},
            {"adaptiveavgpool2d": {"output_size": 1}},
            "flatten",
            {"linear": {"out": 3}},
        ],
    },
    {
        "input": [20],
        "model": [
            {"dec_block": {"out": 16}},
            {"residual": [{"linear": {"out": 8}}]},
            "layernorm",
            {"linear": {"out": 2}},
        ],
    },
]


@pytest.mark.parametrize("spec", GROUNDTRIP_SPECS)
def test_to_spec_round_trips(spec: Any) -> None:
    model = build(spec)
    rebuilt = build(to_spec(model))
    assert type(rebuilt) is type(model)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()
    }
    rebuilt.load_state_dict(model.state_dict())
    model.eval(), rebuilt.eval()
    shape = to_spec(model)["input"]
    x = torch.randn(2, *shape)
    torch.testing.assert_close(rebuilt(x), model(x), rtol=0, atol=0)
    assert to_spec(rebuilt) == to_spec(model)


def test_to_spec_writes_every_inferred_size() -> None:
    spec = to_spec(build(GUIDE_YAML))
    assert spec["model"][3] == {"dec_block": {"in_f": 50176, "out_f": 1024}}
    assert spec["model"][0]["conv_block"]["in_f"] == 1
    assert spec["output"] == [10]


def test_to_spec_of_a_family_built_in_python() -> None:
    model = CNNClassifier(3, [8, 16], [32], 5, input_shape=(16, 16), pool="max", activation="gelu")
    spec = to_spec(model)
    assert spec["input"] == [3, 16, 16]
    assert spec["model"]["cnn_classifier"]["pool"] == "max"
    rebuilt = build(spec)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()
    }


def test_to_spec_of_a_model_not_made_by_brickwork() -> None:
    with pytest.raises(SpecError, match="Linear was not built by brickwork, so it has no spec"):
        to_spec(nn.Linear(2, 3))
