"""A binary BCH(127, 64) code correcting 10 bit errors, for the 64-bit watermark payload.

Bose-Chaudhuri-Hocquenghem codes (Bose & Ray-Chaudhuri 1960, Hocquenghem 1959) over
GF(2^7) with primitive polynomial x^7 + x^3 + 1; decoding by Berlekamp-Massey
(Massey 1969) and a Chien search. The code is systematic: the 64 message bits are the
top coefficients of the codeword polynomial. Pure Python: 127-bit words take well
under a millisecond.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

M = 7  #: field GF(2^M)
N = (1 << M) - 1  #: code length, 127
T = 10  #: correctable bit errors
K = 64  #: message bits
_PRIM = 0b10001001  # x^7 + x^3 + 1


class BCHDecodeError(ValueError):
    """More errors than the code can correct were detected."""


@functools.cache
def _tables() -> tuple[list[int], list[int]]:
    """exp (length 2N, for index sums without a modulo) and log tables of GF(2^7)."""
    exp, log = [0] * (2 * N), [0] * (N + 1)
    x = 1
    for i in range(N):
        exp[i] = exp[i + N] = x
        log[x] = i
        x <<= 1
        if x & (1 << M):
            x ^= _PRIM
    return exp, log


def _gf_mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    exp, log = _tables()
    return exp[log[a] + log[b]]


def _gf_inv(a: int) -> int:
    exp, log = _tables()
    return exp[(N - log[a]) % N]


def _poly2_mul(a: int, b: int) -> int:
    """Product of two GF(2) polynomials held as int bit masks (bit i = coefficient of x^i)."""
    out = 0
    while b:
        if b & 1:
            out ^= a
        a <<= 1
        b >>= 1
    return out


def _poly2_mod(a: int, m: int) -> int:
    dm = m.bit_length() - 1
    while a and a.bit_length() - 1 >= dm:
        a ^= m << (a.bit_length() - 1 - dm)
    return a


def _minimal_poly(i: int) -> int:
    """Minimal polynomial over GF(2) of alpha^i (product over its cyclotomic coset)."""
    exp, _ = _tables()
    coset, j = [], i % N
    while j not in coset:
        coset.append(j)
        j = (2 * j) % N
    poly = [1]  # GF(2^7) coefficients, lowest first
    for c in coset:
        root = exp[c]
        nxt = [0] * (len(poly) + 1)
        for d, coef in enumerate(poly):  # multiply by (x + root)
            nxt[d + 1] ^= coef
            nxt[d] ^= _gf_mul(coef, root)
        poly = nxt
    assert all(c in (0, 1) for c in poly), poly
    return sum(c << d for d, c in enumerate(poly))


@functools.cache
def generator() -> int:
    """The generator polynomial: LCM of the minimal polynomials of alpha^1..alpha^2T."""
    g, seen = 1, set()
    for i in range(1, 2 * T + 1):
        m = _minimal_poly(i)
        if m not in seen:
            seen.add(m)
            g = _poly2_mul(g, m)
    assert g.bit_length() - 1 == N - K, g.bit_length()
    return g


def encode(message: int) -> list[int]:
    """The 127 code bits (index i = coefficient of x^i) of a 64-bit ``message``."""
    if not 0 <= message < (1 << K):
        raise ValueError(f"message must be a {K}-bit unsigned integer")
    shifted = message << (N - K)
    word = shifted | _poly2_mod(shifted, generator())
    return [(word >> i) & 1 for i in range(N)]


def decode(bits: Sequence[int]) -> tuple[int, int]:
    """(message, bits corrected) from 127 received bits; :class:`BCHDecodeError` if the
    word has more errors than the code corrects (detected with high probability)."""
    if len(bits) != N:
        raise ValueError(f"expected {N} bits, got {len(bits)}")
    word = sum((int(b) & 1) << i for i, b in enumerate(bits))
    synd = _syndromes(word)
    if any(synd):
        locator = _berlekamp_massey(synd)
        positions = _chien(locator)
        if len(positions) != len(locator) - 1:
            raise BCHDecodeError(f"uncorrectable word (more than {T} bit errors)")
        for p in positions:
            word ^= 1 << p
        if any(_syndromes(word)):
            raise BCHDecodeError(f"uncorrectable word (more than {T} bit errors)")
        corrected = len(positions)
    else:
        corrected = 0
    return word >> (N - K), corrected


def _syndromes(word: int) -> list[int]:
    """S_j = r(alpha^j) for j = 1..2T."""
    exp, _ = _tables()
    ones = [i for i in range(N) if (word >> i) & 1]
    out = []
    for j in range(1, 2 * T + 1):
        s = 0
        for i in ones:
            s ^= exp[(i * j) % N]
        out.append(s)
    return out


def _berlekamp_massey(synd: list[int]) -> list[int]:
    """Error-locator polynomial Lambda (lowest coefficient first, Lambda_0 = 1)."""
    lam, prev = [1], [1]
    length, shift, prev_disc = 0, 1, 1
    for n, s in enumerate(synd):
        disc = s
        for i in range(1, length + 1):
            if i < len(lam):
                disc ^= _gf_mul(lam[i], synd[n - i])
        if disc == 0:
            shift += 1
            continue
        coef = _gf_mul(disc, _gf_inv(prev_disc))
        update = [0] * shift + [_gf_mul(coef, c) for c in prev]
        new = [a ^ b for a, b in zip(lam + [0] * (len(update) - len(lam)),
                                     update + [0] * (len(lam) - len(update)), strict=True)]
        if 2 * length <= n:
            prev, prev_disc, length, shift = lam, disc, n + 1 - length, 1
        else:
            shift += 1
        lam = new
    while len(lam) > 1 and lam[-1] == 0:
        lam.pop()
    return lam


def _chien(locator: list[int]) -> list[int]:
    """Bit positions p with Lambda(alpha^-p) = 0."""
    exp, _ = _tables()
    out = []
    for p in range(N):
        x = exp[(N - p) % N]
        acc, xp = 0, 1
        for c in locator:
            acc ^= _gf_mul(c, xp)
            xp = _gf_mul(xp, x)
        if acc == 0:
            out.append(p)
    return out
