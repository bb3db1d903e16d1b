"""BCH(127, 64): every pattern of up to 10 bit errors is corrected; more are refused."""

from __future__ import annotations

import random

import pytest

from muselab.provenance import ecc


def test_generator_has_the_right_degree() -> None:
    assert ecc.generator().bit_length() - 1 == ecc.N - ecc.K == 63


@pytest.mark.parametrize("errors", [0, 1, 5, 10])
def test_corrects_up_to_t_errors(errors: int) -> None:
    rng = random.Random(errors)
    for _ in range(20):
        msg = rng.getrandbits(64)
        word = ecc.encode(msg)
        assert word[ecc.N - ecc.K :] == [(msg >> i) & 1 for i in range(64)]  # systematic
        for p in rng.sample(range(ecc.N), errors):
            word[p] ^= 1
        assert ecc.decode(word) == (msg, errors)


def test_too_many_errors_are_detected() -> None:
    rng = random.Random(1)
    refused = 0
    for _ in range(50):
        word = ecc.encode(rng.getrandbits(64))
        for p in rng.sample(range(ecc.N), 24):
            word[p] ^= 1
        try:
            ecc.decode(word)
        except ecc.BCHDecodeError:
            refused += 1
    assert refused >= 48  # a miscorrection needs a word within 10 bits of another codeword


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="64-bit"):
        ecc.encode(1 << 64)
    with pytest.raises(ValueError, match="127 bits"):
        ecc.decode([0] * 100)
