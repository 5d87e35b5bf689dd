"""Binary hash codes: sign binarisation and bit packing.

Encoders emit codes in [-1, 1] (or any floats); the index stores only their signs, eight to a byte,
so a million 128-bit codes take 16 MB and Hamming distances reduce to XOR + popcount.
"""

from __future__ import annotations

import numpy as np


def binarise(codes: np.ndarray) -> np.ndarray:
    """(N, bits) bool: a bit is set where the code is strictly positive (0 and NaN give 0)."""
    codes = np.asarray(codes)
    if codes.ndim == 1:
        codes = codes[None, :]
    if codes.ndim != 2:
        raise ValueError(f"codes must be (N, bits), got shape {codes.shape}")
    if codes.dtype == np.bool_:
        return codes
    return codes > 0


def pack_codes(codes: np.ndarray) -> np.ndarray:
    """(N, bits) float or bool -> (N, ceil(bits / 8)) uint8, bit = code > 0, big-endian in each byte
    (``np.packbits`` order); the padding bits of the last byte are 0."""
    return np.packbits(binarise(codes), axis=1)


def unpack_codes(packed: np.ndarray, bits: int) -> np.ndarray:
    """(N, nbytes) uint8 -> (N, bits) float32 in {-1, +1}."""
    packed = np.asarray(packed, dtype=np.uint8)
    if packed.ndim == 1:
        packed = packed[None, :]
    if packed.shape[1] != n_bytes(bits):
        raise ValueError(
            f"{bits}-bit codes need {n_bytes(bits)} bytes per row, got {packed.shape[1]}"
        )
    b = np.unpackbits(packed, axis=1, count=bits)
    return b.astype(np.float32) * 2.0 - 1.0


def n_bytes(bits: int) -> int:
    """Bytes per packed code of ``bits`` bits."""
    if bits <= 0:
        raise ValueError(f"bits must be positive, got {bits}")
    return (int(bits) + 7) // 8
