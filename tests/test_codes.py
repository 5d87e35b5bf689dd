"""Sign binarisation and bit packing of hash codes."""

import numpy as np
import pytest

from rsgui.codes import binarise, n_bytes, pack_codes, unpack_codes


@pytest.mark.parametrize("bits", [1, 7, 8, 16, 48, 64, 100, 128, 256])
def test_pack_unpack_round_trip(bits):
    rng = np.random.default_rng(bits)
    codes = rng.uniform(-1, 1, (13, bits)).astype(np.float32)
    packed = pack_codes(codes)
    assert packed.dtype == np.uint8
    assert packed.shape == (13, n_bytes(bits))
    back = unpack_codes(packed, bits)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, np.where(codes > 0, 1.0, -1.0))
    # a second round trip is the identity on +-1 codes
    np.testing.assert_array_equal(pack_codes(back), packed)


def test_sign_rule_and_bit_order():
    # zero and negative give 0; bits are big-endian in each byte (np.packbits order)
    codes = np.array([[0.5, 0.0, -0.1, 2.0, -3.0, 1e-9, 0.0, 0.0, 0.7]])
    packed = pack_codes(codes)
    # bits 1 0 0 1 0 1 0 0 | 1 -> 0b10010100 = 148, then 0b10000000 = 128 (padding is 0)
    np.testing.assert_array_equal(packed, [[148, 128]])


def test_bool_and_single_row_input():
    np.testing.assert_array_equal(pack_codes(np.array([True, False] * 4)), [[0b10101010]])
    assert binarise(np.array([[1, -1]])).dtype == bool


def test_unpack_refuses_wrong_width():
    with pytest.raises(ValueError, match="need 2 bytes"):
        unpack_codes(np.zeros((3, 3), np.uint8), 16)
    with pytest.raises(ValueError, match="positive"):
        n_bytes(0)
