"""Binary hash codes: the ±1 float form used by networks and the packed-bit form stored and searched.

Packing is `numpy.packbits` along the code axis with big-endian bit order: bit j of a code is
bit (7 - j % 8) of byte j // 8, and a bit is 1 where the ±1 code is +1 (value > 0).
"""

from __future__ import annotations

import numpy as np


def pack_codes(codes: np.ndarray) -> np.ndarray:
    """(N, K) array of ±1 floats, 0/1 or booleans → (N, K/8) uint8. K must be a multiple of 8."""
    codes = np.asarray(codes)
    if codes.ndim == 1:
        codes = codes[None, :]
    if codes.shape[1] % 8:
        raise ValueError(f"code length {codes.shape[1]} is not a multiple of 8")
    bits = codes > 0 if codes.dtype != np.bool_ else codes
    return np.packbits(bits, axis=1)


def unpack_codes(packed: np.ndarray, bits: int | None = None) -> np.ndarray:
    """(N, B) uint8 → (N, K) array of ±1 float32."""
    packed = np.asarray(packed, dtype=np.uint8)
    if packed.ndim == 1:
        packed = packed[None, :]
    b = np.unpackbits(packed, axis=1, count=bits)
    return b.astype(np.float32) * 2.0 - 1.0


_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def hamming_packed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances between packed codes a (Na, B) and b (Nb, B) → (Na, Nb) int32 (oracle form)."""
    a = np.atleast_2d(np.asarray(a, dtype=np.uint8))
    b = np.atleast_2d(np.asarray(b, dtype=np.uint8))
    x = np.bitwise_xor(a[:, None, :], b[None, :, :])
    return _POPCOUNT8[x].sum(axis=2, dtype=np.int32)


def hamming_pm1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances from ±1 codes: (K - <a, b>) / 2 → (Na, Nb) int32."""
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(b, dtype=np.float64))
    k = a.shape[1]
    return np.rint((k - a @ b.T) / 2.0).astype(np.int32)
