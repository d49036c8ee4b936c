"""Multiply-accumulates per op, and which ops have none.

Every op a watched forward runs falls in one of three kinds (:func:`op_macs`):

- **counted**: a formula here gives its multiply-accumulates. The matmul family (``mm``,
  ``addmm``, ``bmm``, ``baddbmm``, ``addbmm``, ``mv``, ``addmv``, ``dot``, ``addr``...; ``matmul``,
  ``linear`` and ``einsum`` reach these), convolutions (transposed too, every backend's kernel),
  scaled dot-product attention (the math path's ``bmm``, and the fused CPU and CUDA kernels), the
  recurrent kernels of RNN, LSTM and GRU (``_cudnn_rnn``, ``mkldnn_rnn_layer``; the CPU path
  runs ``addmm``), PyTorch's fused transformer and multi-head attention ops, and embedding bags;
- **none by convention**: the ops that count no MACs in PyTorch's ``FlopCounterMode`` and in
  torchinfo alike: pointwise ops, views and copies, reductions, normalisations, softmax,
  pooling, indexing, factories and random numbers;
- **uncounted**: anything else. It counts 0 here, and the summary lists it by name with how many
  times it ran, so that a total is never short without saying so.

All counts agree with PyTorch's ``torch.utils.flop_counter`` where it has a formula (it counts two
FLOPs per MAC).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import flop_registry

_aten = torch.ops.aten

Formula = Callable[..., int]
"""``formula(*args, out=..., **kwargs)`` → the op's multiply-accumulates."""


def _conv(x: Any, weight: Any, *rest: Any, out: Any, **kwargs: Any) -> int:
    """Any convolution kernel: ``(x, weight, bias, stride, padding, dilation, transposed...)``."""
    transposed = bool(rest[4]) if len(rest) > 4 and isinstance(rest[4], bool) else False
    transposed = kwargs.get("transposed", transposed)
    out = out[0] if isinstance(out, tuple | list) else out
    per_position = math.prod(weight.shape)  # (C_out, C_in/groups, *kernel) or transposed
    positions = (x.numel() // x.shape[1]) if transposed else (out.numel() // out.shape[1])
    return int(per_position * positions)


def _mm(a: Any, b: Any, *, out: Any, **kwargs: Any) -> int:
    return int(a.shape[0] * a.shape[1] * b.shape[1])


def _addmm(bias: Any, a: Any, b: Any, *rest: Any, out: Any, **kwargs: Any) -> int:
    return _mm(a, b, out=out)


def _bmm(a: Any, b: Any, *, out: Any, **kwargs: Any) -> int:
    return int(a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2])


def _baddbmm(bias: Any, a: Any, b: Any, *rest: Any, out: Any, **kwargs: Any) -> int:
    return _bmm(a, b, out=out)


def _mv(a: Any, v: Any, *, out: Any, **kwargs: Any) -> int:
    return int(a.numel())


def _addmv(bias: Any, a: Any, v: Any, *rest: Any, out: Any, **kwargs: Any) -> int:
    return int(a.numel())


def _dot(a: Any, b: Any, *, out: Any, **kwargs: Any) -> int:
    return int(a.numel())


def _addr(bias: Any, a: Any, b: Any, *rest: Any, out: Any, **kwargs: Any) -> int:
    return int(a.numel() * b.numel())


def _attention(query: Any, key: Any, value: Any, *rest: Any, out: Any, **kwargs: Any) -> int:
    """Fused attention: ``q @ kᵀ`` and ``softmax @ v``, as the math path's two ``bmm``."""
    *batch, length_q, dim = query.shape
    length_k, dim_v = key.shape[-2], value.shape[-1]
    return int(math.prod(batch) * length_q * length_k * (dim + dim_v))


def _flash_forward(query: Any, key: Any, value: Any, *rest: Any, out: Any, **kw: Any) -> int:
    """``_flash_attention_forward`` and ``_efficient_attention_forward``: (B, L, H, D) layout."""
    return _attention(query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2), out=out)


def _rnn_layer(x: Any, weights: Any, *rest: Any, out: Any, **kwargs: Any) -> int:
    """A recurrent kernel: every 2-D weight (input, hidden, projection) meets each token once.

    ``x`` is (T, B, F), (B, T, F) or packed (tokens, F); ``weights`` is a list (``_cudnn_rnn``)
    or the first of the layer's weights (``mkldnn_rnn_layer``, whose next is the hidden one)."""
    tokens = x.numel() // x.shape[-1]
    if isinstance(weights, torch.Tensor):
        weights = [weights, rest[0]]
    return int(tokens * sum(w.numel() for w in weights if w.dim() == 2))


def _native_mha(query: Any, key: Any, value: Any, embed_dim: int, *rest: Any, **kw: Any) -> int:
    """``_native_multi_head_attention`` on (B, L, E): projections, attention, output."""
    tokens_q, tokens_k = query.numel() // embed_dim, key.numel() // embed_dim
    batch, length_q, length_k = query.shape[0], query.shape[-2], key.shape[-2]
    projections = (2 * tokens_q + 2 * tokens_k) * embed_dim * embed_dim  # q, out; k, v
    return int(projections + 2 * batch * length_q * length_k * embed_dim)


def _encoder_layer(src: Any, embed_dim: int, heads: int, *rest: Any, **kwargs: Any) -> int:
    """``_transformer_encoder_layer_fwd`` on (B, L, E): attention, then the feed-forward."""
    ffn = rest[11].shape[0]  # ffn_weight_1: (F, E)
    tokens = src.numel() // embed_dim
    return _native_mha(src, src, src, embed_dim) + int(2 * tokens * embed_dim * ffn)


def _embedding_bag(weight: Any, indices: Any, *rest: Any, out: Any, **kwargs: Any) -> int:
    """Each looked-up row is scaled (by its per-sample weight, or 1) and added into its bag."""
    return int(indices.numel() * weight.shape[1])


def _from_pytorch(packet: Any) -> Formula:
    def count(*args: Any, out: Any, **kwargs: Any) -> int:
        return int(flop_registry[packet](*args, **kwargs, out_val=out)) // 2

    return count


FORMULAS: dict[str, Formula] = {
    **dict.fromkeys(
        (
            "convolution",
            "_convolution",
            "convolution_overrideable",
            "cudnn_convolution",
            "cudnn_convolution_transpose",
            "mkldnn_convolution",
            "miopen_convolution",
            "_slow_conv2d_forward",
            "thnn_conv2d",
            "slow_conv3d_forward",
            "slow_conv_dilated2d",
            "slow_conv_dilated3d",
            "slow_conv_transpose2d",
            "slow_conv_transpose3d",
            "_nnpack_spatial_convolution",
            "conv_depthwise3d",
            "_conv_depthwise2d",
        ),
        _conv,
    ),
    "mm": _mm,
    "_mm_activation": _mm,
    "addmm": _addmm,
    "_addmm_activation": _addmm,
    "bmm": _bmm,
    "baddbmm": _baddbmm,
    "addbmm": _baddbmm,
    "mv": _mv,
    "addmv": _addmv,
    "dot": _dot,
    "vdot": _dot,
    "addr": _addr,
    "_scaled_mm": _from_pytorch(_aten._scaled_mm),
    **dict.fromkeys(
        (
            "_scaled_dot_product_flash_attention_for_cpu",
            "_scaled_dot_product_flash_attention",
            "_scaled_dot_product_efficient_attention",
            "_scaled_dot_product_cudnn_attention",
            "_scaled_dot_product_fused_attention_overrideable",
        ),
        _attention,
    ),
    "_flash_attention_forward": _flash_forward,
    "_efficient_attention_forward": _flash_forward,
    "_cudnn_rnn": _rnn_layer,
    "mkldnn_rnn_layer": _rnn_layer,
    "miopen_rnn": _rnn_layer,
    "_native_multi_head_attention": _native_mha,
    "_transformer_encoder_layer_fwd": _encoder_layer,
    "_embedding_bag": _embedding_bag,
    "_embedding_bag_forward_only": _embedding_bag,
}
"""op name (without overload) → its MAC formula."""

_NO_MACS = re.compile(
    r"_?native_(batch|layer|group)_norm|_?batch_norm|_native_batch_norm_legit|.*_norm$|"
    r"_fused_rms_norm|_weight_norm_interface|.*softmax|.*pool\d?d.*|max_unpool|"
    r"_?upsample_.*|grid_sampler.*|affine_grid.*|pixel_(un)?shuffle|channel_shuffle|im2col|"
    r"col2im|"
    r"_?to_copy|copy_?|clone|contiguous|cat|stack|empty.*|zeros.*|ones.*|full.*|arange|"
    r"linspace|logspace|scalar_tensor|new_.*|fill_?|zero_|index.*|_index_put_impl_|gather|"
    r"scatter.*|masked_.*|where|embedding|_embedding_bag_(dense_)?backward|one_hot|"
    r".*pad.*|roll|flip|repeat.*|tile|split.*|unsafe_split.*|unbind|chunk|narrow|slice.*|"
    r"select.*|cum.*|sort|argsort|topk|kthvalue|arg(max|min)|max|min|amax|amin|aminmax|sum|"
    r"nansum|mean|nanmean|var.*|std.*|prod|any|all|_is_(all|any)_true|nonzero.*|_?unique.*|bernoulli_?|"
    r"native_dropout|.*dropout.*|rand.*|normal_?|uniform_?|exponential_|multinomial|"
    r"lift.*|_local_scalar_dense|item|is_nonzero|equal|allclose|isclose|sym_.*|_assert.*|"
    r"detach.*|alias.*|_unsafe_view|_reshape_alias|tril.*|triu.*|bucketize|searchsorted|"
    r"diag.*|eye|histc|bincount|count_nonzero|logsumexp|norm|_pack_padded_sequence|"
    r"_pad_packed_sequence|_to_dense|to_sparse.*|resize.*|set_|_foreach_.*|"
    r"_fused_.*_cell|_thnn_fused_(lstm|gru)_cell|record_stream|_efficientzerotensor|"
    r"_conj.*|_neg_view|_make_dep_token|_functional_assert.*|_print|copy_from.*|"
    r"(hard|log_)?(swish|sigmoid|tanh)_?|(leaky_)?relu6?_?|r?relu_with_noise_?|[gs]elu_?|c?elu_?|"
    r"silu_?|mish_?|softplus|softshrink|hardshrink|threshold_?|_?prelu(_kernel)?|glu"
)
"""Op names that run no multiply-accumulate by convention (PyTorch's ``FlopCounterMode`` and
torchinfo count none for them either)."""

_QUIET_TAGS = {
    torch.Tag.pointwise,
    torch.Tag.view_copy,
    torch.Tag.inplace_view,
    torch.Tag.nondeterministic_seeded,
    torch.Tag.reduction,
}
_kinds: dict[Any, Formula | bool | None] = {}  # op → formula, False (none by convention), None


def op_macs(func: Any, args: Any, kwargs: Any, out: Any) -> int | None:
    """Multiply-accumulates of one op.

    Args:
        func: the op (``torch.ops.aten.convolution.default``...).
        args: its positional arguments.
        kwargs: its keyword arguments.
        out: what it returned.

    Returns:
        The op's multiply-accumulates; 0 for an op that runs none by convention (pointwise,
        views, reductions, norms, pooling, indexing...); ``None`` for an op that has no formula
        here and is none of those: the summary lists it as uncounted.
    """
    kind = macs_formula(func)
    if kind is False:
        return 0
    if kind is None or kind is True:  # True is never stored; the check narrows the type
        return None
    return kind(*args, out=out, **kwargs)


def macs_formula(func: Any) -> Formula | bool | None:
    """What :func:`op_macs` does with ``func``: its formula, ``False`` for an op that runs no
    MACs by convention, or ``None`` for an uncounted op (decided once per op).

    Args:
        func: the op (``torch.ops.aten.convolution.default``...).
    """
    return _kinds[func] if func in _kinds else _kinds.setdefault(func, _kind(func))


def op_name(func: Any) -> str:
    """``aten.convolution`` for ``torch.ops.aten.convolution.default``; the namespace kept.

    Args:
        func: an op overload (or anything with a name).
    """
    packet = getattr(func, "overloadpacket", None)
    return str(packet) if packet is not None else str(func)


def _kind(func: Any) -> Formula | bool | None:
    """A formula, ``False`` for an op with no MACs by convention, or ``None`` (uncounted)."""
    name = getattr(func, "__name__", str(func)).split(".")[0]
    namespace = getattr(func, "namespace", "aten")
    if namespace in ("aten", "prims") and name in FORMULAS:
        return FORMULAS[name]
    packet = getattr(func, "overloadpacket", None)
    if namespace == "aten" and packet in flop_registry:
        return _from_pytorch(packet)
    if getattr(func, "is_view", False) or _QUIET_TAGS.intersection(getattr(func, "tags", ())):
        return False
    if namespace in ("aten", "prims", "prim") and _NO_MACS.fullmatch(name):
        return False
    if namespace == "aten" and name.endswith("_") and name != "_":  # in place: as its twin
        twin = getattr(getattr(torch.ops.aten, name[:-1], None), "default", None)
        if twin is not None and _QUIET_TAGS.intersection(twin.tags):
            return False
    return None
