"""Decoding: the one-token decoder, and speculative decoding with a draft."""

from __future__ import annotations

import pytest
import torch

from muselab.models.decoding import Decoder, Sampler
from tests.models.test_transformer import tiny


@pytest.mark.parametrize(("rope", "bias", "head_dim"), [(True, False, 16), (False, True, 16),
                                                       (True, True, 8)])
def test_decoder_equals_hidden(rope: bool, bias: bool, head_dim: int) -> None:
    # the one-token fast path of generation computes what hidden() computes, token by
    # token after a prompt, on a model with every option it handles (biases, learned
    # positions, a head size whose 1/sqrt(D) is not a power of two: 1/sqrt(8))
    m = tiny(rope, bias=bias, n_head=32 // head_dim)
    for p in m.parameters():  # non-trivial biases and norms
        torch.nn.init.normal_(p, 0.0, 0.3)
    idx = torch.randint(0, 37, (2, 24))
    full = m.hidden(idx)
    with torch.inference_mode():
        cache = m.new_cache(2)
        m.hidden(idx[:, :5], cache)  # a prompt through the ordinary path
        dec = Decoder(m, cache)
        steps = torch.cat([dec(idx[:, t : t + 1]) for t in range(5, 24)], 1)  # [2, 19, C]
        assert cache.length == 24
        assert torch.allclose(steps, full[:, 5:], atol=1e-5), (steps - full[:, 5:]).abs().max()
        with pytest.raises(ValueError, match="block_size"):
            dec(idx[:, :1])


def _draft_every_third(tokens: torch.Tensor) -> int | None:
    """Guesses (last + 1) mod V, except after every third token: some guesses right
    (the tiny model repeats itself), most wrong, and some steps without a guess."""
    if tokens.shape[1] % 3 == 0:
        return None
    return (int(tokens[0, -1]) + 1) % 37


@pytest.mark.parametrize("rope", [True, False])
def test_speculative_greedy_equals_plain_greedy(rope: bool) -> None:
    # greedy keeps a guess exactly when it is the argmax, so the tokens must not change:
    # this checks the pair pass, the rollback of rejected guesses and the refill of the
    # cache past block_size (24) with a guess in it
    m = tiny(rope)
    for seed in range(3):
        prompt = torch.randint(0, 37, (1, 4), generator=torch.Generator().manual_seed(seed))
        for n in (10, 45):
            plain = m.generate(prompt, n, temperature=0.0)
            guessed = m.generate(prompt, n, temperature=0.0, draft=_draft_every_third)
            assert torch.equal(plain, guessed)
    right = m.generate(prompt, 20, temperature=0.0)  # a draft that is always right
    oracle = m.generate(prompt, 20, temperature=0.0,
                        draft=lambda t: int(right[0, t.shape[1]]))
    assert torch.equal(oracle, right)


def test_speculative_sampling_keeps_the_distribution() -> None:
    # the token from check() (keep the guess with p(guess), else draw without it) must be
    # distributed as p itself, for a likely guess, an unlikely one and an excluded one
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0, 0.0]])
    p = torch.softmax(logits, dim=1)[0]
    tokens = torch.zeros(1, 1, dtype=torch.long)
    s = Sampler(generator=torch.Generator().manual_seed(0))
    n = 20_000
    for guess in (0, 3):
        counts = torch.zeros(5)
        kept = 0
        for _ in range(n):
            ok, tok = s.check(logits, tokens, guess)
            counts[int(tok)] += 1
            kept += ok
        assert (counts / n - p).abs().max() < 0.012, (counts / n, p)
        assert abs(kept / n - float(p[guess])) < 0.012  # kept at the rate p(guess)
    top1 = Sampler(top_k=1, generator=torch.Generator().manual_seed(0))
    assert all(int(top1.check(logits, tokens, 2)[1]) == 0 for _ in range(50))  # excluded


def test_sampled_speculation_is_reproducible_and_obeys_the_mask() -> None:
    m = tiny()
    prompt = torch.zeros(1, 1, dtype=torch.long)

    def odd_only(tokens: torch.Tensor) -> torch.Tensor:
        allowed = torch.zeros(len(tokens), 37, dtype=torch.bool)
        allowed[:, 1::2] = True
        return allowed

    def run(seed: int) -> torch.Tensor:
        return m.generate(prompt, 60, top_p=0.9, logits_mask=odd_only,
                          generator=torch.Generator().manual_seed(seed),
                          draft=_draft_every_third)

    a, b = run(4), run(4)
    assert torch.equal(a, b) and a.shape == (1, 61)
    assert bool((a[0, 1:] % 2 == 1).all())
    assert not torch.equal(a, run(5))
