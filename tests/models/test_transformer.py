"""The shared decoder-only Transformer: shapes, causality, KV cache, sampling controls."""

from __future__ import annotations

import pytest
import torch

from muselab.errors import ConfigError, MuselabError
from muselab.models.decoding import sample_next
from muselab.models.transformer import Transformer, TransformerConfig


def tiny(rope: bool = True, **kw: object) -> Transformer:
    torch.manual_seed(0)
    args: dict[str, object] = {"vocab_size": 37, "block_size": 24, "n_layer": 2, "n_head": 2,
                               "n_embd": 32, "dropout": 0.0, "rope": rope, **kw}
    cfg = TransformerConfig(**args)  # type: ignore[arg-type]
    return Transformer(cfg).eval()


@pytest.mark.parametrize("rope", [True, False])
def test_forward_shapes_and_loss(rope: bool) -> None:
    m = tiny(rope)
    idx, targets = torch.randint(0, 37, (2, 3, 10))
    logits, loss = m(idx, targets)
    assert logits.shape == (3, 10, 37)
    assert loss is not None and torch.isfinite(loss)
    assert abs(loss.item() - torch.log(torch.tensor(37.0)).item()) < 0.5  # ~uniform at init
    assert m(idx)[1] is None


@pytest.mark.parametrize("rope", [True, False])
def test_attention_is_causal(rope: bool) -> None:
    m = tiny(rope)
    a = torch.randint(0, 37, (1, 12))
    b = a.clone()
    b[0, 8:] = (b[0, 8:] + 5) % 37  # change only the future
    la, lb = m(a)[0], m(b)[0]
    assert torch.allclose(la[:, :8], lb[:, :8], atol=1e-6)
    assert not torch.allclose(la[:, 8:], lb[:, 8:])


@pytest.mark.parametrize("rope", [True, False])
def test_kv_cache_logits_equal_uncached(rope: bool) -> None:
    m = tiny(rope)
    idx = torch.randint(0, 37, (2, 20))
    full = m(idx)[0]
    cache = m.new_cache(2)
    parts = [m(idx[:, a:b], cache=cache)[0] for a, b in ((0, 7), (7, 8), (8, 20))]
    assert cache.length == 20
    assert torch.allclose(torch.cat(parts, 1), full, atol=1e-5)


@pytest.mark.parametrize("rope", [True, False])
def test_cached_generation_equals_uncached(rope: bool) -> None:
    m = tiny(rope)
    prompt = torch.randint(0, 37, (3, 4))
    # greedy, and sampled with the same generator: identical tokens, past block_size too
    for n in (15, 40):
        a = m.generate(prompt, n, temperature=0.0)
        b = m.generate(prompt, n, temperature=0.0, use_cache=False)
        assert a.shape == (3, 4 + n)
        if n <= 20:  # within the context window the two paths compute the same thing
            assert torch.equal(a, b)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a = m.generate(prompt, 18, top_k=10, generator=g1)
    b = m.generate(prompt, 18, top_k=10, generator=g2, use_cache=False)
    assert torch.equal(a, b)


def test_weights_tied_and_untied() -> None:
    tied, untied = tiny(), tiny(tie_weights=False)
    assert tied.head is None and "head.weight" not in tied.state_dict()
    assert untied.head is not None
    assert untied.num_params() - tied.num_params() == 37 * 32


def test_same_seed_same_sample_and_mask_is_obeyed() -> None:
    m = tiny()
    prompt = torch.zeros(2, 1, dtype=torch.long)

    def even_only(tokens: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, V]
        allowed = torch.zeros(len(tokens), 37, dtype=torch.bool)
        allowed[:, ::2] = True
        return allowed

    a = m.generate(prompt, 30, logits_mask=even_only, generator=torch.Generator().manual_seed(1))
    b = m.generate(prompt, 30, logits_mask=even_only, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert bool((a[:, 1:] % 2 == 0).all())


def test_stop_token_pads_and_ends_early() -> None:
    m = tiny()

    def force_stop(tokens: torch.Tensor) -> torch.Tensor:
        allowed = torch.zeros(len(tokens), 37, dtype=torch.bool)
        allowed[:, 5 if tokens.shape[1] >= 3 else 7] = True
        return allowed

    out = m.generate(torch.zeros(2, 1, dtype=torch.long), 50, logits_mask=force_stop,
                     stop_token=5)
    assert out.tolist() == [[0, 7, 7, 5]] * 2


def test_sampling_filters() -> None:
    logits = torch.tensor([[5.0, 4.0, 1.0, 0.0, -1.0]])
    tokens = torch.zeros(1, 1, dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    draws = {int(sample_next(logits, tokens, top_k=2, generator=g)) for _ in range(200)}
    assert draws == {0, 1}
    draws = {int(sample_next(logits, tokens, top_p=0.5, generator=g)) for _ in range(100)}
    assert draws == {0}  # token 0 alone holds > 50 % of the mass
    # the repetition penalty moves the argmax away from a token already used
    pen = sample_next(torch.tensor([[2.0, 1.9]]), tokens, temperature=0.0,
                      repetition_penalty=1.5)
    assert int(pen) == 1


def test_bad_arguments_are_clear() -> None:
    m = tiny()
    with pytest.raises(ConfigError, match="n_embd"):
        TransformerConfig(vocab_size=10, n_embd=30, n_head=4)
    with pytest.raises(ConfigError, match="temperature"):
        m.generate(torch.zeros(1, 1, dtype=torch.long), 3, temperature=-1.0)
    with pytest.raises(ValueError, match="block_size"):
        m(torch.zeros(1, 30, dtype=torch.long))
    with pytest.raises(MuselabError, match="no token is allowed"):
        m.generate(torch.zeros(1, 1, dtype=torch.long), 3,
                   logits_mask=lambda t: torch.zeros(len(t), 37, dtype=torch.bool))


def test_rotate_equals_pairwise_rotation() -> None:
    """The four-op rotary embedding equals the textbook pairwise rotation, bit for bit."""
    from muselab.models.transformer import apply_rope, full_rope, rotate

    m = tiny()
    x = torch.randn(2, 2, 5, 16)  # [B, H, T, D]
    cos, sin = m.rope_cos[3:8], m.rope_sin[3:8]  # [T, D/2]
    x1, x2 = x.chunk(2, dim=-1)
    expected = torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)
    assert torch.equal(apply_rope(x, cos, sin), expected)
    assert torch.equal(rotate(x, *full_rope(cos, sin)), expected)
    assert torch.equal(m.rope_full[:, 3:8], torch.stack(full_rope(cos, sin)))


@pytest.mark.parametrize("tie", [True, False])
def test_transposed_weights_match_and_are_dropped(tie: bool) -> None:
    """Generation multiplies by transposed weight copies: same logits (to rounding), same
    greedy tokens, and nothing is left behind after the call."""
    from muselab.models.transformer import Linear

    m = tiny(tie_weights=tie)
    idx = torch.randint(0, 37, (2, 12))
    with torch.inference_mode():
        plain = m(idx)[0]
        with m._transposed_weights():
            assert all(x.weight_t is not None for x in m.modules() if isinstance(x, Linear))
            fast = m(idx)[0]
    assert torch.allclose(fast, plain, atol=1e-5)
    assert all(x.weight_t is None for x in m.modules() if isinstance(x, Linear))
    assert m.emb_t is None
    greedy = m.generate(idx[:, :3], 10, temperature=0.0)
    step = idx[:, :3]
    for _ in range(10):  # the slow way: full forward, argmax, no cache, no copies
        step = torch.cat([step, m(step)[0][:, -1].argmax(dim=1, keepdim=True)], dim=1)
    assert torch.equal(greedy, step)


def test_generate_after_training_step_uses_new_weights() -> None:
    """The transposed copies are made per call, so an update between calls is seen."""
    m = tiny()
    prompt = torch.zeros(1, 1, dtype=torch.long)
    before = m.generate(prompt, 6, temperature=0.0)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    after = m.generate(prompt, 6, temperature=0.0)
    slow = prompt
    for _ in range(6):
        slow = torch.cat([slow, m(slow)[0][:, -1].argmax(dim=1, keepdim=True)], dim=1)
    assert torch.equal(after, slow) and not torch.equal(before, after)
