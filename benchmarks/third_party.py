"""brickwork.summary and doctor on third-party models, as a new user would try them.

Each model is checked by ``model_check.py``: does the summary finish with no error, do its
parameters equal the unique parameter count, do its MACs equal PyTorch's own ``FlopCounterMode``
on the math attention path (or which ops does it list as uncounted), which run did it use (meta
or real), does the doctor report no error, and is the model left as it was. Hugging Face
models are built from configs with random weights (nothing downloaded), each with and without an
attention mask; torchvision's models are built without weights. What is not installed is skipped.

    .venv/bin/python benchmarks/third_party.py [--only NAME] [--skip-doctor] [--jsonl FILE]

torchvision needs its own environment here (torchvision has no CPU build for this torch):
    /work/venv-tv/bin/python benchmarks/third_party.py --family torchvision
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from model_check import Case, run_cases


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
            yield (
                f"hf-{name}{'+mask' if mask else ''}",
                build,
                lambda f=inputs, m=mask: {"input_data": f(m)},
            )


DETECTION_SIZE = 320
"""The detection models' image size, and the size their transform resizes to (800 by default:
a CPU run of a forward with grad at batch 3, the doctor's, then takes gigabytes)."""
TORCHVISION_KINDS = {
    "cls": ("", (3, 224, 224)),
    "seg": ("segmentation", (3, 224, 224)),
    "det": ("detection", (3, DETECTION_SIZE, DETECTION_SIZE)),
    "video": ("video", (3, 16, 112, 112)),
    "flow": ("optical_flow", (3, 128, 128)),
}
"""kind → (torchvision.models submodule, per-sample input shape)."""
_TORCHVISION_SHAPES = {
    "inception_v3": (3, 299, 299),
    "s3d": (3, 16, 224, 224),
    "mvit_v1_b": (3, 16, 224, 224),
    "mvit_v2_s": (3, 16, 224, 224),
}
"""Models whose own input size differs from their kind's (fixed position embeddings, or a
pooling window that needs 224 pixels)."""


def torchvision_models() -> Iterator[Case]:
    """Every torchvision classification, segmentation, detection, video and optical-flow model,
    without weights. Detection models run in eval mode (in training mode they need targets);
    RAFT takes two images."""
    try:
        import torchvision
    except ImportError:
        return
    from torchvision import models

    for kind, (submodule, size) in TORCHVISION_KINDS.items():
        module = getattr(models, submodule) if submodule else models
        for name in models.list_models(module=module):

            def build(n: str = name, k: str = kind) -> nn.Module:
                extra: dict[str, Any] = {"weights_backbone": None} if k in ("seg", "det") else {}
                if k == "det" and not n.startswith("ssd"):  # their transform resizes to 800
                    extra |= {"min_size": DETECTION_SIZE, "max_size": DETECTION_SIZE}
                model = torchvision.models.get_model(n, weights=None, **extra)
                return model.eval() if k == "det" else model  # training takes targets too

            shape = _TORCHVISION_SHAPES.get(name, size)
            if kind == "flow":  # two frames, as positional inputs
                yield (
                    f"tv-{kind}-{name}",
                    build,
                    lambda s=shape: {"input_data": (torch.randn(1, *s), torch.randn(1, *s))},
                )
                continue
            yield (f"tv-{kind}-{name}", build, lambda s=shape: {"input_shape": s})


_PACKAGES = {"hf": "transformers", "torchvision": "torchvision"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=("all", "hf", "torchvision"), default="all")
    parser.add_argument("--only", help="run the cases whose name holds this text")
    parser.add_argument("--skip-doctor", action="store_true")
    parser.add_argument(
        "--jsonl", help="append each row to this file, and reuse the rows already in it"
    )
    args = parser.parse_args()
    cases = []
    for family, found in (("hf", hugging_face), ("torchvision", torchvision_models)):
        if args.family in ("all", family):
            some = list(found())
            if not some:
                print(f"{family}: {_PACKAGES[family]} is not importable here, skipped")
            cases += some
    if not cases:
        return  # nothing installed to check: a skip, not a failure
    if args.only:
        cases = [c for c in cases if args.only in c[0]]
    run_cases(cases, doctor=not args.skip_doctor, jsonl=args.jsonl)


if __name__ == "__main__":
    main()
