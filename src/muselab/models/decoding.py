"""Autoregressive decoding for :class:`~muselab.models.transformer.Transformer`.

The parts, each with its source:

* a key/value cache so each new token costs one position (linear in length); the
  :class:`Decoder` is the per-token step, built for batch-1 CPU generation, where reading
  the weights and dispatching small operations cost more than the arithmetic;
* sampling with temperature, top-k (Fan et al. 2018), nucleus/top-p (Holtzman et al.
  2020), a repetition penalty (Keskar et al. 2019, CTRL) and a ``logits_mask`` hook for
  constrained decoding (only the allowed next tokens may be drawn);
* speculative decoding with a cheap deterministic draft (Leviathan et al. 2023; Chen et
  al. 2023): a ``draft`` guesses the token after the one just drawn, the model scores
  both in one pass, and the guess is kept with probability p(guess), else the token is
  drawn from p without it. The tokens follow exactly the distribution of ordinary
  sampling; the draws for a given seed differ from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from muselab.config import check_range
from muselab.errors import ConfigError, MuselabError
from muselab.models.transformer import Block, KVCache, Linear, LogitsMask, rotate

if TYPE_CHECKING:
    from muselab.models.transformer import Transformer

#: Tokens so far [1, T] -> a guess of the next token, or None (no guess).
Draft = Callable[[Tensor], int | None]


@dataclass(frozen=True)
class Sampler:
    """How the next token is drawn from the logits (checked once, on construction)."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float = 1.0
    logits_mask: LogitsMask | None = None
    generator: torch.Generator | None = None

    def __post_init__(self) -> None:
        check_range("temperature", self.temperature, 0.0, 100.0)
        if self.top_k is not None:
            check_range("top_k", self.top_k, 1)
        if self.top_p is not None:
            check_range("top_p", self.top_p, 1e-6, 1.0)
        check_range("repetition_penalty", self.repetition_penalty, 1.0, 100.0)

    def filter(self, logits: Tensor, tokens: Tensor) -> Tensor:
        """Logits [B, V] -> the logits drawn from: penalised, masked, tempered and
        truncated (-inf outside the allowed and top-k/top-p sets). At temperature 0 only
        the penalty and the mask apply (the argmax is drawn)."""
        if self.repetition_penalty != 1.0:  # CTRL: shrink logits of tokens already used
            seen = torch.zeros_like(logits, dtype=torch.bool).scatter_(1, tokens, True)
            rep = self.repetition_penalty
            logits = torch.where(seen, torch.where(logits > 0, logits / rep, logits * rep),
                                 logits)
        if self.logits_mask is not None:
            logits = _apply_mask(logits, self.logits_mask(tokens))
        if self.temperature == 0.0:
            return logits
        if self.temperature != 1.0:
            logits = logits / self.temperature
        if self.top_k is not None and self.top_k < logits.shape[1]:
            kth = torch.topk(logits, self.top_k, dim=1).values[:, -1:]  # [B, 1]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p is not None and self.top_p < 1.0:
            logits = _nucleus(logits, self.top_p)
        return logits

    def draw(self, logits: Tensor, tokens: Tensor) -> Tensor:
        """The next token [B] after ``tokens`` [B, T], given its ``logits`` [B, V]."""
        z = self.filter(logits, tokens)
        if self.temperature == 0.0:
            return z.argmax(dim=1)
        return torch.multinomial(F.softmax(z, dim=1), 1, generator=self.generator)[:, 0]

    def check(self, logits: Tensor, tokens: Tensor, guess: int) -> tuple[bool, Tensor]:
        """Speculative sampling of one row: keep ``guess`` with probability p(guess), else
        draw from p with the guess removed (Leviathan et al. 2023, with a one-hot draft).
        Returns (kept, token [1]); greedy keeps the guess when it is the argmax."""
        z = self.filter(logits, tokens)  # [1, V]
        if self.temperature == 0.0:
            best = z.argmax(dim=1)
            return int(best) == guess, best
        p = F.softmax(z, dim=1)  # [1, V]
        u = torch.rand(1, generator=self.generator, device=p.device)
        if bool(u < p[0, guess]):
            return True, torch.full((1,), guess, dtype=tokens.dtype, device=tokens.device)
        p[0, guess] = 0.0
        return False, torch.multinomial(p, 1, generator=self.generator)[:, 0]


def sample_next(logits: Tensor, tokens: Tensor, **controls: object) -> Tensor:
    """Draw the next token [B] from ``logits`` [B, V] given the ``tokens`` so far [B, T];
    ``controls`` are the fields of :class:`Sampler`."""
    return Sampler(**controls).draw(logits, tokens)  # type: ignore[arg-type]


def _apply_mask(logits: Tensor, allowed: Tensor) -> Tensor:
    if allowed.shape != logits.shape:
        raise ValueError(f"logits_mask returned {tuple(allowed.shape)}, "
                         f"expected {tuple(logits.shape)}")
    if not bool(allowed.any(dim=1).all()):
        raise MuselabError("constrained decoding: no token is allowed at this step "
                           "(the constraints cannot be met with this vocabulary)")
    return logits.masked_fill(~allowed, float("-inf"))


def _nucleus(logits: Tensor, top_p: float) -> Tensor:
    """Keep the smallest set of tokens whose probability reaches ``top_p`` (Holtzman 2020)."""
    sorted_logits, order = logits.sort(dim=1, descending=True)  # [B, V]
    probs = sorted_logits.softmax(dim=1)
    drop_sorted = probs.cumsum(dim=1) - probs >= top_p  # mass before this token >= p
    drop = torch.zeros_like(drop_sorted).scatter_(1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


# -- the generation loop ----------------------------------------------------------------------


def generate_tokens(model: Transformer, prompt: Tensor, n_new: int, sampler: Sampler, *,
                    stop_token: int | None = None, use_cache: bool = True,
                    draft: Draft | None = None) -> Tensor:
    """Continue ``prompt`` [B, T0] by up to ``n_new`` tokens: see ``Transformer.generate``."""
    if prompt.dim() != 2 or prompt.shape[1] < 1:
        raise ConfigError(f"prompt must be [B, T0] with T0 >= 1, got {tuple(prompt.shape)}")
    check_range("max_new_tokens", n_new, 0)
    B, T0 = prompt.shape  # noqa: N806
    buf = torch.empty(B, T0 + n_new, dtype=prompt.dtype, device=prompt.device)
    buf[:, :T0] = prompt  # tokens so far: buf[:, :t], written in place (no re-copying)
    t, end = T0, T0 + n_new
    done = torch.zeros(B, dtype=torch.bool, device=prompt.device)  # [B]
    if t == end:
        return prompt
    step = _CachedStep(model) if use_cache else _UncachedStep(model)
    speculate = draft is not None and use_cache and B == 1
    h = step(buf[:, :t])[:, -1]  # [B, C] features of the last token
    while t < end:
        nxt = sampler.draw(model.logits(h).float(), buf[:, :t])  # [B]
        t = _put(buf, t, nxt, done, stop_token)
        if bool(done.all()) or t == end:
            break
        guess = draft(buf[:, :t]) if speculate and draft is not None else None
        if guess is None:
            h = step(buf[:, :t])[:, -1]
            continue
        # 1. score the drawn token and the guess after it in one pass: features [1, 2, C]
        buf[:, t] = guess
        h2 = step(buf[:, : t + 1], n_out=2)
        # 2. keep the guess with probability p(guess), else draw without it
        kept, tok = sampler.check(model.logits(h2[:, 0]).float(), buf[:, :t], guess)
        t = _put(buf, t, tok, done, stop_token)
        if kept:
            h = h2[:, 1]
        else:  # 3. forget the guess's keys and values, feed the token drawn instead
            step.rollback(1)
            h = step(buf[:, :t])[:, -1]
        if bool(done.all()):
            break
    return buf[:, :t]


def _put(buf: Tensor, t: int, nxt: Tensor, done: Tensor, stop_token: int | None) -> int:
    """Write token ``nxt`` [B] at ``t`` (rows already stopped get ``stop_token``)."""
    if stop_token is not None:
        nxt = torch.where(done, torch.full_like(nxt, stop_token), nxt)
        done |= nxt == stop_token
    buf[:, t] = nxt
    return t + 1


class _UncachedStep:
    """Features of the last ``n_out`` positions, recomputed from the whole context."""

    def __init__(self, model: Transformer) -> None:
        self.model = model

    def __call__(self, tokens: Tensor, n_out: int = 1) -> Tensor:  # [B, T] -> [B, n_out, C]
        return self.model.hidden(tokens[:, -self.model.cfg.block_size :])[:, -n_out:]

    def rollback(self, n: int) -> None:
        """Nothing to forget: every call starts afresh."""


class _CachedStep:
    """Features of the last ``n_out`` positions, feeding only the tokens the cache has not
    seen: one or two (a drawn token, or one and a guess) go through the :class:`Decoder`,
    more (the prompt, a refill) through the model's ordinary forward pass."""

    def __init__(self, model: Transformer) -> None:
        self.model = model
        self.cache: KVCache | None = None
        self.decoder: Decoder | None = None
        self.start = 0  # index in the token sequence of the cache's first position

    def __call__(self, tokens: Tensor, n_out: int = 1) -> Tensor:  # [B, T] -> [B, n_out, C]
        block = self.model.cfg.block_size
        if self.cache is None:
            self.cache = self.model.new_cache(len(tokens))
            self.decoder = Decoder(self.model, self.cache)
        if self.cache.length == 0 or len(tokens[0]) - self.start > block:
            keep = min(len(tokens[0]), block if self.cache.length == 0 else block * 3 // 4)
            self.cache.reset()
            self.start = len(tokens[0]) - keep
        new = tokens[:, self.start + self.cache.length :]  # [B, T_new]
        if new.shape[1] <= 2 and self.decoder is not None:  # a token or a speculative pair
            return self.decoder(new)[:, -n_out:]
        return self.model.hidden(new, self.cache)[:, -n_out:]

    def rollback(self, n: int) -> None:
        """Forget the last ``n`` cached positions (their slots are overwritten later)."""
        assert self.cache is not None and self.cache.length >= n
        self.cache.length -= n


# -- the per-token step -------------------------------------------------------------------------


class _Layer(NamedTuple):
    """One block's weights as the decoder uses them: linear maps as W^T [in, out]."""

    ln1: tuple[Tensor, Tensor | None]
    qkv: tuple[Tensor, Tensor | None]
    proj: tuple[Tensor, Tensor | None]
    ln2: tuple[Tensor, Tensor | None]
    fc: tuple[Tensor, Tensor | None]
    out: tuple[Tensor, Tensor | None]

    @staticmethod
    def of(b: Block) -> _Layer:
        scale = b.attn.cfg.head_dim**-0.5  # attention's 1/sqrt(D), folded into the queries
        return _Layer(_ln(b.ln1), _scale_query(_wt(b.attn.qkv), b.attn.cfg.n_embd, scale),
                      _wt(b.attn.proj), _ln(b.ln2), _wt(b.mlp.fc), _wt(b.mlp.proj))


class Decoder:
    """The incremental step of generation: a few new tokens per row through the model.

    ``decoder(idx [B, T])`` returns the final-layer features [B, T, C] of those tokens
    after the positions in ``cache`` and stores their keys and values: the same function
    as ``model.hidden(idx, cache)`` up to float rounding (tested), built for the per-token
    loop. At this size (a 4.8 M-parameter chorale model does about 10 MFLOP a token) the
    time goes to reading the weights and to dispatching small operations, so the decoder
    does fewer of them: weights are gathered once into plain tuples (no module lookups
    per token; transposed ``[in, out]`` copies where the model has them, see
    :class:`~muselab.models.transformer.Linear`), the attention scale is folded into the
    query weights, the residual adds are fused into the matrix products (``addmm``), and
    the few queries attend through two batched products and a softmax, which costs less
    than the fused SDPA kernel's setup. Eval only (no dropout).
    """

    def __init__(self, model: Transformer, cache: KVCache) -> None:
        cfg = model.cfg
        self.model, self.cache, self.cfg = model, cache, cfg
        self.eps = model.ln_f.eps
        self.layers = [_Layer.of(b) for b in cast(list[Block], model.blocks)]
        b, h, s, d = cache.k.shape[1:]
        # per layer [B*H, S, D] views of the cache (merging batch and heads for bmm)
        self.keys = [cache.k[i].view(b * h, s, d) for i in range(cfg.n_layer)]
        self.values = [cache.v[i].view(b * h, s, d) for i in range(cfg.n_layer)]
        self._causal: dict[int, Tensor] = {}  # T -> [T, T] additive mask among new tokens

    def __call__(self, idx: Tensor) -> Tensor:  # [B, T] -> [B, T, C]
        model, cfg = self.model, self.cfg
        B, T = idx.shape  # noqa: N806
        pos = self.cache.length
        if pos + T > cfg.block_size:
            raise ValueError(f"sequence of {pos + T} tokens exceeds block_size "
                             f"{cfg.block_size}")
        x = F.embedding(idx, model.tok_emb.weight).view(B * T, cfg.n_embd)  # [B*T, C]
        if model.pos_emb is not None:
            x = x + model.pos_emb.weight[pos : pos + T].repeat(B, 1)
            rope = None
        else:  # factors [T, 1, 1, D], broadcast over [B, T, 2, H, D]
            rope = (model.rope_full[0, pos : pos + T, None, None],
                    model.rope_full[1, pos : pos + T, None, None])
        for i, layer in enumerate(self.layers):
            x = self._block(i, layer, x, rope, pos, T)
        self.cache.advance(T)
        x = F.layer_norm(x, x.shape[-1:], model.ln_f.weight, model.ln_f.bias, self.eps)
        return x.view(B, T, cfg.n_embd)

    def _block(self, i: int, w: _Layer, x: Tensor, rope: tuple[Tensor, Tensor] | None,
               pos: int, T: int) -> Tensor:  # noqa: N803  [B*T, C] -> [B*T, C]
        BT, C = x.shape  # noqa: N806
        B, H, D = BT // T, self.cfg.n_head, self.cfg.head_dim  # noqa: N806
        qkv = _affine(self._norm(x, w.ln1), w.qkv).view(B, T, 3, H, D)
        qk = qkv[:, :, :2] if rope is None else rotate(qkv[:, :, :2], *rope)  # [B,T,2,H,D]
        keys, values = self.keys[i], self.values[i]  # [B*H, S, D]
        keys[:, pos : pos + T] = _heads(qk[:, :, 1])
        values[:, pos : pos + T] = _heads(qkv[:, :, 2])
        n = pos + T
        att = torch.bmm(_heads(qk[:, :, 0]), keys[:, :n].transpose(1, 2))  # [B*H, T, n]
        if T > 1:  # new token j sees new tokens <= j only
            att[:, :, pos:] += self._mask(T, att)
        att = att.softmax(dim=-1)  # (the queries came pre-scaled by 1/sqrt(D))
        y = torch.bmm(att, values[:, :n])  # [B*H, T, D]
        y = y.view(B, H, T, D).transpose(1, 2).reshape(BT, C)  # [B*T, C]
        x = _affine(y, w.proj, residual=x)  # x + proj(y)
        h = F.gelu(_affine(self._norm(x, w.ln2), w.fc))  # [B*T, 4C]
        return _affine(h, w.out, residual=x)  # x + out(h)

    def _mask(self, t: int, like: Tensor) -> Tensor:
        if t not in self._causal:
            upper = torch.ones(t, t, dtype=torch.bool, device=like.device).triu(1)
            self._causal[t] = torch.zeros(t, t, dtype=like.dtype, device=like.device
                                          ).masked_fill(upper, float("-inf"))
        return self._causal[t]

    def _norm(self, x: Tensor, ln: tuple[Tensor, Tensor | None]) -> Tensor:
        return F.layer_norm(x, x.shape[-1:], ln[0], ln[1], self.eps)


def _heads(x: Tensor) -> Tensor:
    """[B, T, H, D] -> [B*H, T, D] (a view when T is 1)."""
    B, T, H, D = x.shape  # noqa: N806
    return x.transpose(1, 2).reshape(B * H, T, D)


def _wt(m: Linear) -> tuple[Tensor, Tensor | None]:
    """(W^T [in, out], bias) of ``m``: its transposed copy when it has one, else a view."""
    return (m.weight.t() if m.weight_t is None else m.weight_t), m.bias


def _scale_query(wb: tuple[Tensor, Tensor | None], c: int, scale: float
                 ) -> tuple[Tensor, Tensor | None]:
    """(W^T, b) of the fused QKV map with the query columns multiplied by ``scale``: exact
    (bit-identical scores) when ``scale`` is a power of two, as 1/sqrt(64) is."""
    wt, b = wb[0].clone(), wb[1]
    wt[:, :c] *= scale
    if b is not None:
        b = b.clone()
        b[:c] *= scale
    return wt, b


def _ln(m: nn.LayerNorm) -> tuple[Tensor, Tensor | None]:
    return m.weight, m.bias


def _affine(x: Tensor, wb: tuple[Tensor, Tensor | None], residual: Tensor | None = None
            ) -> Tensor:
    """``residual + x @ W^T + b`` for ``x`` [N, in] (one fused product where possible)."""
    wt, b = wb
    if residual is None:
        return x @ wt if b is None else torch.addmm(b, x, wt)
    y = torch.addmm(residual, x, wt)
    return y if b is None else y + b
