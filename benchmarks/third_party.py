"""brickwork.summary and doctor on third-party models, as a new user would try them.

For each model: does the summary finish with no error, do its parameters equal the unique
parameter count, do its MACs equal PyTorch's own ``FlopCounterMode`` on the math attention path
(or which ops does it list as uncounted), which run did it use (meta or real), does the doctor
report no error, and is the model left as it was (state_dict, RNG, training flag). Hugging Face
models are built from configs with random weights (nothing downloaded), each with and without an
attention mask; torchvision's models are built without weights. What is not installed is skipped.

    .venv/bin/python benchmarks/third_party.py [--only NAME] [--skip-doctor]

torchvision needs its own environment here (torchvision has no CPU build for this torch):
    /work/venv-tv/bin/python benchmarks/third_party.py --family torchvision
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import brickwork

Case = tuple[str, Callable[[], nn.Module], Callable[[], dict[str, Any]]]


def _ids(batch: int, length: int, high: int = 100) -> torch.Tensor:
    return torch.randint(0, high, (batch, length))


def _text(ids: bool = True, mask: bool = False, **more: torch.Tensor) -> dict[str, Any]:
    inputs: dict[str, Any] = {"input_ids": _ids(2, 16)} if ids else {}
    if mask:
        inputs["attention_mask"] = torch.ones(2, 16, dtype=torch.long)
    return {**inputs, **more}


def hugging_face() -> Iterator[Case]:
    """BERT, GPT-2, T5, BART, ViT, Llama, Mistral, Whisper and CLIP, small configs."""
    try:
        import transformers as t
    except ImportError:
        return
    small = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    text = {**small, "intermediate_size": 128, "vocab_size": 1000}
    seq2seq = {"d_model": 64, "encoder_layers": 2, "decoder_layers": 2}
    seq2seq |= {f"{side}_attention_heads": 2 for side in ("encoder", "decoder")}
    seq2seq |= {f"{side}_ffn_dim": 128 for side in ("encoder", "decoder")}
    builders: dict[str, tuple[Callable[[], nn.Module], Callable[[bool], dict[str, Any]]]] = {
        "bert": (lambda: t.BertModel(t.BertConfig(**text)), lambda m: _text(mask=m)),
        "gpt2": (
            lambda: t.GPT2LMHeadModel(t.GPT2Config(n_embd=64, n_layer=2, n_head=2)),
            lambda m: _text(mask=m),
        ),
        "t5": (
            lambda: t.T5ForConditionalGeneration(
                t.T5Config(d_model=64, d_ff=128, num_layers=2, num_heads=2, d_kv=32)
            ),
            lambda m: _text(mask=m, decoder_input_ids=_ids(2, 8)),
        ),
        "bart": (
            lambda: t.BartForConditionalGeneration(t.BartConfig(**seq2seq, vocab_size=1000)),
            lambda m: _text(mask=m),
        ),
        "vit": (
            lambda: t.ViTForImageClassification(t.ViTConfig(**small, intermediate_size=128)),
            lambda m: {"pixel_values": torch.randn(2, 3, 224, 224)},
        ),
        "llama": (
            lambda: t.LlamaForCausalLM(t.LlamaConfig(**text, num_key_value_heads=1)),
            lambda m: _text(mask=m),
        ),
        "mistral": (
            lambda: t.MistralForCausalLM(t.MistralConfig(**text, num_key_value_heads=1)),
            lambda m: _text(mask=m),
        ),
        "whisper": (
            lambda: t.WhisperForConditionalGeneration(t.WhisperConfig(**seq2seq, num_mel_bins=80)),
            lambda m: {
                "input_features": torch.randn(2, 80, 3000),
                "decoder_input_ids": _ids(2, 8),
                **({"decoder_attention_mask": torch.ones(2, 8, dtype=torch.long)} if m else {}),
            },
        ),
        "clip": (
            lambda: t.CLIPModel(
                t.CLIPConfig(
                    text_config={**text, "max_position_embeddings": 32},
                    vision_config={**small, "intermediate_size": 128, "image_size": 64},
                )
            ),
            lambda m: _text(mask=m, pixel_values=torch.randn(2, 3, 64, 64)),
        ),
    }
    for name, (build, inputs) in builders.items():
        for mask in (False, True):
            if name == "vit" and mask:
                continue
            yield (f"hf-{name}{'+mask' if mask else ''}", build, lambda f=inputs, m=mask: f(m))


def torchvision_models() -> Iterator[Case]:
    """Every torchvision classification and segmentation model, and the detection ones."""
    try:
        import torchvision
    except ImportError:
        return
    from torchvision import models

    for kind, module, size in (
        ("cls", models, 224),
        ("seg", models.segmentation, 224),
        ("det", models.detection, 320),
    ):
        for name in models.list_models(module=module):
            if name in ("vit_h_14",) or name.startswith("regnet_y_128"):
                continue  # over 600M parameters: minutes on this CPU, nothing new to see

            def build(n: str = name, k: str = kind) -> nn.Module:
                extra = {} if k == "cls" else {"weights_backbone": None}
                model = torchvision.models.get_model(n, weights=None, **extra)
                return model.eval() if k == "det" else model  # training takes targets too

            side = 299 if "inception" in name else size
            yield (f"tv-{kind}-{name}", build, lambda s=side: {"__shape__": (3, s, s)})


def _call(model: nn.Module, inputs: dict[str, Any], batch: int) -> Any:
    """The model called as the summary called it: a shape's batch of random values, or the
    keyword inputs."""
    if "__shape__" in inputs:
        return model(torch.randn(batch, *inputs["__shape__"]))
    return model(**inputs)


def _given(inputs: dict[str, Any]) -> dict[str, Any]:
    """summary's and doctor's input arguments: a per-sample shape (the batch left to them, as
    a new user leaves it), or the keyword inputs."""
    if "__shape__" in inputs:
        return {"input_shape": inputs["__shape__"]}
    return {"input_data": inputs}


def _state(model: nn.Module) -> tuple[dict[str, torch.Tensor], torch.Tensor, list[bool]]:
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        torch.get_rng_state(),
        [m.training for m in model.modules()],
    )


def _same(before: Any, model: nn.Module) -> bool:
    weights, rng, flags = before
    now = model.state_dict()
    return (
        all(torch.equal(now[k], v) for k, v in weights.items())
        and torch.equal(rng, torch.get_rng_state())
        and flags == [m.training for m in model.modules()]
    )


def check(case: Case, doctor: bool) -> dict[str, Any]:
    """One row of the table."""
    name, build, make_inputs = case
    torch.manual_seed(0)
    model = build()
    inputs = make_inputs()
    unique = sum(p.numel() for p in model.parameters())
    before = _state(model)
    start = time.perf_counter()
    s = brickwork.summary(model, **_given(inputs))
    seconds = time.perf_counter() - start
    unchanged = _same(before, model)
    torch.manual_seed(0)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        try:
            _call(model, inputs, s.batch_size)  # with grad, as the summary runs it
            reference: int | None = counter.get_total_flops() // 2
        except Exception:  # the model itself fails in eager mode on these inputs
            reference = None
    row: dict[str, Any] = {
        "model": name,
        "run": s.run,
        "error": s.error,
        "params_ok": s.total_params == unique,
        "macs": s.macs,
        "reference": reference,
        "uncounted": s.uncounted_ops,
        "seconds": seconds,
        "unchanged": unchanged,
    }
    if doctor:
        before = _state(model)
        report = brickwork.doctor(model, **_given(inputs))
        row["doctor"] = [f"{f.code}:{f.path}" for f in report.findings if f.severity == "error"]
        row["unchanged"] = row["unchanged"] and _same(before, model)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=("all", "hf", "torchvision"), default="all")
    parser.add_argument("--only", help="run the cases whose name holds this text")
    parser.add_argument("--skip-doctor", action="store_true")
    args = parser.parse_args()
    cases = []
    if args.family in ("all", "hf"):
        cases += list(hugging_face())
    if args.family in ("all", "torchvision"):
        cases += list(torchvision_models())
    if args.only:
        cases = [c for c in cases if args.only in c[0]]
    print(f"torch {torch.__version__}, {len(cases)} models")
    print(
        f"{'model':<36} {'run':<5} {'params':<6} {'MACs':>14} {'FlopCounter':>14} {'same':<5} "
        f"{'doctor errors':<20} {'s':>6}  uncounted / error"
    )
    totals = {"ok": 0, "all": 0}
    for case in cases:
        try:
            r = check(case, doctor=not args.skip_doctor)
        except Exception as err:  # report it as a row; a benchmark never stops on one model
            print(f"{case[0]:<36} CRASH {type(err).__name__}: {str(err).splitlines()[0][:120]}")
            totals["all"] += 1
            continue
        macs_ok = r["reference"] is None or r["macs"] == r["reference"] or bool(r["uncounted"])
        clean = r["unchanged"] and not r.get("doctor")
        ok = r["error"] is None and r["params_ok"] and macs_ok and clean
        totals["all"] += 1
        totals["ok"] += ok
        tail = r["error"] or ", ".join(f"{k}×{v}" for k, v in r["uncounted"].items())
        print(
            f"{r['model']:<36} {r['run']:<5} {'ok' if r['params_ok'] else 'WRONG':<6} "
            f"{r['macs']:>14,} {r['reference'] if r['reference'] is not None else '-':>14} "
            f"{'yes' if r['unchanged'] else 'NO':<5} {','.join(r.get('doctor', [])) or '-':<20} "
            f"{r['seconds']:>6.2f}  {tail or ''}"
        )
    print(
        f"\n{totals['ok']} of {totals['all']} models: no error, exact parameters, MACs equal to "
        "FlopCounterMode or the difference listed, model unchanged, doctor clean"
    )


if __name__ == "__main__":
    main()
