"""A small decoder-only Transformer (GPT; Radford et al. 2018/2019), nanoGPT-like.

Shared by music and poetry. Options, each with its source:

* pre-norm residual blocks (Radford et al. 2019, GPT-2; Xiong et al. 2020);
* causal attention through ``F.scaled_dot_product_attention`` (flash / memory-efficient
  kernels where available; Dao et al. 2022);
* rotary position embeddings (Su et al. 2021, "RoFormer") or learned absolute positions
  (Radford et al. 2018);
* input/output weight tying (Press & Wolf 2017; Inan et al. 2017);
* dropout on attention weights and residual branches (Srivastava et al. 2014);
* a key/value cache so generation costs one position per new token (linear in length);
  sampling, constrained and speculative decoding live in :mod:`muselab.models.decoding`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from muselab.config import check_range
from muselab.errors import ConfigError

if TYPE_CHECKING:
    from muselab.models.decoding import Draft

#: Tokens so far [B, T] -> allowed next tokens, bool [B, V].
LogitsMask = Callable[[Tensor], Tensor]


@dataclass
class TransformerConfig:
    """Architecture of the decoder; every field is checked on construction."""

    vocab_size: int
    block_size: int = 256  # longest context the model attends to
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 256
    dropout: float = 0.1
    bias: bool = False  # biases in linear layers and layer norms (GPT-2 has them)
    rope: bool = True  # rotary positions (Su 2021); False: learned absolute positions
    tie_weights: bool = True  # output head shares the token embedding (Press & Wolf 2017)

    def __post_init__(self) -> None:
        check_range("transformer.vocab_size", self.vocab_size, 2)
        check_range("transformer.block_size", self.block_size, 2, 1 << 16)
        check_range("transformer.n_layer", self.n_layer, 1, 256)
        check_range("transformer.n_head", self.n_head, 1, 256)
        check_range("transformer.n_embd", self.n_embd, 8, 1 << 15)
        check_range("transformer.dropout", self.dropout, 0.0, 0.9)
        if self.n_embd % self.n_head:
            raise ConfigError(f"transformer.n_embd={self.n_embd} must be a multiple of "
                              f"n_head={self.n_head}")
        if self.rope and (self.n_embd // self.n_head) % 2:
            raise ConfigError("transformer.rope needs an even head size (n_embd / n_head)")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


class KVCache:
    """Keys and values of every layer for the positions seen so far (preallocated).

    ``length`` is the number of cached positions; the model writes new keys at
    ``[length, length + T)`` in every layer and then advances ``length`` by ``T``.
    """

    def __init__(self, cfg: TransformerConfig, batch: int, device: torch.device,
                 dtype: torch.dtype = torch.float32) -> None:
        shape = (cfg.n_layer, batch, cfg.n_head, cfg.block_size, cfg.head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)  # [L, B, H, S, D]
        self.v = torch.zeros(shape, device=device, dtype=dtype)  # [L, B, H, S, D]
        self._kv = [(self.k[i], self.v[i]) for i in range(cfg.n_layer)]  # per-layer views
        self.length = 0

    @property
    def capacity(self) -> int:
        return self.k.shape[3]

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store ``k, v`` [B, H, T, D] after the cached positions; return all [B, H, L+T, D]."""
        end = self.length + k.shape[2]
        ck, cv = self._kv[layer]  # [B, H, S, D] views of this layer
        ck[:, :, self.length : end] = k
        cv[:, :, self.length : end] = v
        return ck[:, :, :end], cv[:, :, :end]

    def advance(self, n: int) -> None:
        self.length += n

    def reset(self) -> None:
        self.length = 0


def _rope_tables(cfg: TransformerConfig, base: float = 10000.0) -> tuple[Tensor, Tensor]:
    """cos, sin [S, D/2] of the rotary angles pos * base^(-2i/D) (Su et al. 2021, eq. 15)."""
    d = cfg.head_dim
    inv_freq = base ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)  # [D/2]
    angles = torch.outer(torch.arange(cfg.block_size, dtype=torch.float32), inv_freq)  # [S, D/2]
    return angles.cos(), angles.sin()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate pairs (x_i, x_{i+D/2}) of ``x`` [..., T, D] by the angles cos/sin [T, D/2]."""
    return rotate(x, *full_rope(cos, sin))


def full_rope(cos: Tensor, sin: Tensor) -> tuple[Tensor, Tensor]:
    """cos/sin [T, D/2] -> the per-channel factors [T, D] that :func:`rotate` uses."""
    return torch.cat([cos, cos], dim=-1), torch.cat([-sin, sin], dim=-1)


def rotate(x: Tensor, cos2: Tensor, sin2: Tensor) -> Tensor:
    """Rotary embedding of ``x`` [..., T, D] with factors [T, D] from :func:`full_rope`.

    ``x * cos2 + swap_halves(x) * sin2`` is (x1 cos - x2 sin, x2 cos + x1 sin), the
    rotation of each pair (x_i, x_{i+D/2}) (Su et al. 2021), in four elementwise ops.
    """
    xf = x if x.dtype == torch.float32 else x.float()
    out = xf * cos2 + xf.roll(x.shape[-1] // 2, dims=-1) * sin2  # roll: (x2, x1)
    return out if out.dtype == x.dtype else out.type_as(x)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: TransformerConfig, layer: int) -> None:
        super().__init__()
        self.cfg, self.layer = cfg, layer
        self.qkv = Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)  # fused Q, K, V
        self.proj = Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.resid_drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor] | None,
                cache: KVCache | None) -> Tensor:
        B, T, C = x.shape  # noqa: N806
        H, D = self.cfg.n_head, self.cfg.head_dim  # noqa: N806
        qkv = _linear(self.qkv, x).view(B, T, 3, H, D).permute(2, 0, 3, 1, 4)  # [3, B, H, T, D]
        if rope is not None:  # q and k rotated together (one set of elementwise ops)
            q, k = rotate(qkv[:2], *rope).unbind(0)  # [B, H, T, D] each
        else:
            q, k = qkv[0], qkv[1]
        v = qkv[2]
        past = 0 if cache is None else cache.length
        if cache is not None:
            k, v = cache.update(self.layer, k, v)  # [B, H, past + T, D]
        drop = self.cfg.dropout if self.training else 0.0
        if past == 0 or T == 1:  # one new query may see every cached key
            causal = past == 0 and T > 1
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, is_causal=causal)
        else:  # query i (position past + i) sees keys 0 .. past + i
            mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)
        y = y.transpose(1, 2).reshape(B, T, C)  # [B, T, C]
        return _dropout(self.resid_drop, _linear(self.proj, y))


class MLP(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.fc = Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.proj = Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor) -> Tensor:
        h = F.gelu(_linear(self.fc, x))  # GELU (Hendrycks & Gimpel 2016)
        return _dropout(self.drop, _linear(self.proj, h))


class Block(nn.Module):
    """Pre-norm block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, cfg: TransformerConfig, layer: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg, layer)
        self.ln2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor] | None,
                cache: KVCache | None) -> Tensor:
        x = x + self.attn.forward(_norm(self.ln1, x), rope, cache)
        return x + self.mlp.forward(_norm(self.ln2, x))


# Generation feeds one token at a time, where the per-call overhead of nn.Module (hooks,
# dispatch) and of identity dropouts costs more than the small matmuls themselves: the
# blocks call the functional ops on the modules' parameters directly (module hooks on
# the inner layers are not run).


class Linear(nn.Linear):
    """``nn.Linear`` that can multiply by a transposed copy of its weight (``weight_t``).

    :meth:`Transformer.generate` sets ``weight_t`` on CPU for the duration of a call: for a
    few rows, ``x @ W^T`` with W^T stored [in, out] runs about twice as fast as
    ``F.linear(x, W)`` (another reduction order: results differ in the last bits). Both
    paths compute the same products, so overlapping calls on one model stay correct.
    """

    weight_t: Tensor | None = None


def _linear(m: Linear, x: Tensor) -> Tensor:
    if m.weight_t is None:
        return F.linear(x, m.weight, m.bias)
    y = x @ m.weight_t  # [..., out]
    return y if m.bias is None else y + m.bias


def _norm(m: nn.LayerNorm, x: Tensor) -> Tensor:
    return F.layer_norm(x, m.normalized_shape, m.weight, m.bias, m.eps)


def _dropout(m: nn.Dropout, x: Tensor) -> Tensor:
    return F.dropout(x, m.p, training=True) if m.training and m.p > 0 else x


class Transformer(nn.Module):
    """Decoder-only language model over integer tokens."""

    rope_cos: Tensor
    rope_sin: Tensor
    rope_full: Tensor

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.pos_emb = None if cfg.rope else nn.Embedding(cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        # Tied: logits use the embedding matrix itself (no second, shared parameter, which
        # safetensors could not store).
        self.head = None if cfg.tie_weights else Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.emb_t: Tensor | None = None  # tied head's transposed copy while generating
        cos, sin = _rope_tables(cfg)
        self.register_buffer("rope_cos", cos, persistent=False)  # [S, D/2]
        self.register_buffer("rope_sin", sin, persistent=False)
        self.register_buffer("rope_full", torch.stack(full_rope(cos, sin)),
                             persistent=False)  # [2, S, D]: cos2, sin2 for rotate()
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: scale residual projections
            if name.endswith("proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear | nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count (without position embeddings when ``non_embedding``)."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and self.pos_emb is not None:
            n -= self.pos_emb.weight.numel()
        return n

    def flops_per_token(self, context: int) -> float:
        """Training FLOPs per token: 6N + 12 L C T (Kaplan et al. 2020; PaLM appendix B)."""
        c = self.cfg
        return 6.0 * self.num_params() + 12.0 * c.n_layer * c.n_embd * context

    def logits(self, h: Tensor) -> Tensor:
        """Features [..., C] -> logits [..., V]."""
        if self.head is not None:
            return _linear(self.head, h)
        return F.linear(h, self.tok_emb.weight) if self.emb_t is None else h @ self.emb_t

    @contextmanager
    def _transposed_weights(self) -> Iterator[None]:
        """While generating on CPU: every :class:`Linear` (and the tied head) multiplies by
        a contiguous transposed copy of its weight, made once per call and then dropped."""
        if self.tok_emb.weight.device.type != "cpu":
            yield
            return
        layers = [m for m in self.modules() if isinstance(m, Linear)]
        for m in layers:
            m.weight_t = m.weight.detach().t().contiguous()  # [in, out]
        if self.head is None:
            self.emb_t = self.tok_emb.weight.detach().t().contiguous()  # [C, V]
        try:
            yield
        finally:
            for m in layers:
                m.weight_t = None
            self.emb_t = None

    def new_cache(self, batch: int) -> KVCache:
        p = self.tok_emb.weight
        return KVCache(self.cfg, batch, p.device, p.dtype)

    # -- forward ----------------------------------------------------------------------------

    def hidden(self, idx: Tensor, cache: KVCache | None = None) -> Tensor:
        """Final-layer features [B, T, C] of tokens ``idx`` [B, T] (after the cache, if any)."""
        if idx.dim() != 2:
            raise ValueError(f"idx must be [B, T] token ids, got shape {tuple(idx.shape)}")
        T = idx.shape[1]  # noqa: N806
        past = 0 if cache is None else cache.length
        if past + T > self.cfg.block_size:
            raise ValueError(f"sequence of {past + T} tokens exceeds block_size "
                             f"{self.cfg.block_size}")
        x = F.embedding(idx, self.tok_emb.weight)  # [B, T, C]
        rope = None
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.arange(past, past + T, device=idx.device))  # + [T, C]
        else:
            table = self.rope_full[:, past : past + T]  # [2, T, D]
            rope = (table[0], table[1])
        x = _dropout(self.drop, x)
        for block in self.blocks:
            x = block.forward(x, rope, cache)
        if cache is not None:
            cache.advance(T)
        return _norm(self.ln_f, x)  # [B, T, C]

    def forward(self, idx: Tensor, targets: Tensor | None = None, *,
                cache: KVCache | None = None) -> tuple[Tensor, Tensor | None]:
        """Logits [B, T, V] and, with ``targets`` [B, T] (-1 = ignore), the mean cross-entropy."""
        logits = self.logits(self.hidden(idx, cache))  # [B, T, V]
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-1)
        return logits, loss

    # -- sampling ---------------------------------------------------------------------------

    @torch.inference_mode()
    def generate(
        self,
        prompt: Tensor,
        max_new_tokens: int,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        repetition_penalty: float = 1.0,
        logits_mask: LogitsMask | None = None,
        stop_token: int | None = None,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
        draft: Draft | None = None,
    ) -> Tensor:
        """Continue ``prompt`` [B, T0] by up to ``max_new_tokens``; returns [B, T0 + n].

        ``temperature=0`` is greedy decoding. Rows that emitted ``stop_token`` are padded
        with it; generation ends early when every row has stopped. Contexts longer than
        ``block_size`` keep the most recent tokens (with the cache: it is refilled with
        the last 3/4 block when full, so the cost stays linear). ``draft`` (batch 1, with
        the cache) turns on speculative decoding: it guesses the token after each one
        drawn, from the tokens so far, or returns None (see :mod:`muselab.models.decoding`).
        """
        from muselab.models.decoding import Sampler, generate_tokens

        sampler = Sampler(temperature, top_k, top_p, repetition_penalty, logits_mask, generator)
        was_training = self.training
        self.eval()
        try:
            with self._transposed_weights():
                return generate_tokens(self, prompt, max_new_tokens, sampler,
                                       stop_token=stop_token, use_cache=use_cache, draft=draft)
        finally:
            self.train(was_training)
