"""A Numba kernel that writes a mesh as a JSON array of fixed-point numbers in one call.

Why: the hands file writes 2 x 5208 numbers per two-hand frame; Python's ``%`` formatting of
them cost ~4 ms CPU of a frame whose whole budget is 33 ms on two cores. Here each number is
``k = rint(x * 1e5)`` (``np.round(x, 5)``'s arithmetic) written as an integer with the point
put in by hand: sign, integer part, ".", five digits, no "-0.00000". For ``|x| < LIMIT``
(``|k| < 1e14``, exact in a float64) the double ``k / 1e5`` is within 1e-7 of ``k / 10**5``,
so ``"%.5f" % np.round(x, 5)`` prints exactly these digits: the text is byte for byte the one
``realtime.io.hands_file`` wrote before (``tests/test_fixed_point_kernels.py`` checks it).

The kernel is ``@njit(nogil=True, cache=True)`` like ``realtime.stream.pack_kernels``: it
releases the GIL while it runs, so stage threads that wake meanwhile are not held up (the
reason the ``%`` path formatted in chunks), and it is compiled once per installation, loaded
from numba's on-disk cache afterwards (:func:`warmup`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Decimals of every number (the hands file's precision: 10 micrometres).
DECIMALS = 5
#: Magnitudes from here on (and NaN, inf) are not written by the kernel: the caller falls back.
LIMIT = 1e9
_SCALE = float(10**DECIMALS)  # exact; np.round(x, 5) multiplies by it, rints and divides
_UNIT = 10**DECIMALS
_COMMA, _SPACE, _OPEN, _CLOSE, _MINUS, _POINT, _ZERO = 44, 32, 91, 93, 45, 46, 48


@njit(nogil=True, cache=True)
def fixed_point_json(flat, per_row):
    """``flat`` (N,) float64 as JSON text (ASCII bytes, uint8): ``[x, x, ...]`` when
    ``per_row`` is 0, else rows of ``per_row`` numbers ``[[x, x], [x, x]]``; every number with
    five decimals. Returns an empty array when a value is not finite or ``|x| >= LIMIT``
    (nothing written: the caller takes the general path)."""
    n = flat.shape[0]
    for i in range(n):
        x = flat[i]
        if not (abs(x) < LIMIT):  # also NaN
            return np.empty(0, np.uint8)
    # per number: sign, 9 integer digits, ".", 5 digits, ", ", and "[" "]" of its row
    out = np.empty(24 * n + 2, np.uint8)
    digits = np.empty(20, np.uint8)
    o = 0
    out[o] = _OPEN
    o += 1
    for i in range(n):
        if i > 0 and per_row > 0 and i % per_row == 0:  # "], [" between rows
            out[o] = _CLOSE
            out[o + 1] = _COMMA
            out[o + 2] = _SPACE
            out[o + 3] = _OPEN
            o += 4
        elif i > 0:
            out[o] = _COMMA
            out[o + 1] = _SPACE
            o += 2
        elif per_row > 0:
            out[o] = _OPEN
            o += 1
        k = np.int64(np.rint(flat[i] * _SCALE))
        if k < 0:
            out[o] = _MINUS
            o += 1
            k = -k
        whole = k // _UNIT
        frac = k - whole * _UNIT
        nd = 0
        while True:
            digits[nd] = _ZERO + whole % 10
            nd += 1
            whole //= 10
            if whole == 0:
                break
        for j in range(nd):
            out[o + j] = digits[nd - 1 - j]
        o += nd
        out[o] = _POINT
        o += 1
        for j in range(DECIMALS - 1, -1, -1):
            out[o + j] = _ZERO + frac % 10
            frac //= 10
        o += DECIMALS
    if per_row > 0 and n > 0:
        out[o] = _CLOSE
        o += 1
    out[o] = _CLOSE
    o += 1
    return out[:o]


def warmup() -> None:
    """Compile (or load from the on-disk cache) the kernel, so the first record pays no JIT."""
    fixed_point_json(np.zeros(3), 3)
