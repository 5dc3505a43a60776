import re

import numpy as np
import pytest
import tensorflow as tf

from electra_keras.pretraining import counter_random


def test_uniform_open_interval_and_moments():
    u = np.asarray(counter_random.uniform(0, 0, 5, np.arange(64), (64, 1000)))
    assert u.shape == (64, 1000)
    assert u.min() > 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.005
    assert abs(u.var() - 1 / 12) < 0.002
    # Neighbouring cells are uncorrelated.
    flat = u.ravel()
    assert abs(np.corrcoef(flat[:-1], flat[1:])[0, 1]) < 0.01


def test_rows_do_not_depend_on_batch_split():
    full = np.asarray(counter_random.uniform(7, 1, 3, np.arange(8), (8, 16)))
    second_half = np.asarray(counter_random.uniform(7, 1, 3, np.arange(4, 8), (4, 16)))
    np.testing.assert_array_equal(full[4:], second_half)


def test_seed_step_and_stream_change_the_numbers():
    base = np.asarray(counter_random.uniform(7, 1, 3, np.arange(4), (4, 16)))
    for args in [(8, 1, 3), (7, 2, 3), (7, 1, 4)]:
        other = np.asarray(counter_random.uniform(*args, np.arange(4), (4, 16)))
        assert not np.allclose(base, other)


def test_seeded_bits_are_uniform_and_keyed_by_both_seed_words():
    bits = np.asarray(counter_random.seeded_bits(np.array([3, 4]), 1 << 16))
    assert bits.dtype == np.uint32 and bits.shape == (1 << 16,)
    # Each of the 32 bit positions is set half of the time.
    ones = (bits[:, None] >> np.arange(32, dtype="uint32")) & 1
    assert np.abs(ones.mean(0) - 0.5).max() < 5 * np.sqrt(0.25 / bits.size)
    again = np.asarray(counter_random.seeded_bits(np.array([3, 4]), 1 << 16))
    np.testing.assert_array_equal(bits, again)
    for seed in ([4, 4], [3, 5]):
        other = np.asarray(counter_random.seeded_bits(np.array(seed), 1 << 16))
        assert (other != bits).mean() > 0.99
    # A seed word is taken modulo 2**32 (SeedGenerator states are int64).
    wrapped = np.asarray(counter_random.seeded_bits(np.array([3 + 2**32, 4]), 8))
    np.testing.assert_array_equal(wrapped, bits[:8])


# Raw bit patterns at and next to the ends of the uint32 range, and around the
# point where the kept high bits carry.
_EXTREME_BITS = np.array(
    [0, 1, 0x1FF, 0x200, 0x7FFFFFFF, 0x80000000, 0xFFFFFE00, 0xFFFFFEFF]
    + [0xFFFFFF00, 0xFFFFFF7F, 0xFFFFFF80, 0xFFFFFFFE, 0xFFFFFFFF],
    dtype="uint32",
)


def test_bits_to_unit_float_is_strictly_inside_at_the_extremes():
    u = np.asarray(counter_random.bits_to_unit_float(_EXTREME_BITS))
    assert u.dtype == np.float32
    assert (u > 0).all() and (u < 1).all()
    assert u[0] == np.float32(2.0**-24) and u[-1] == np.float32(1 - 2.0**-24)
    # The old 24-bit map, (top24 + 0.5) / 2**24 in float32, gave exactly 1.0 here.
    old = (np.float32(0xFFFFFFFF >> 8) + np.float32(0.5)) / np.float32(2**24)
    assert old == 1.0
    # Only the top 23 bits count: the low 9 bits change nothing.
    np.testing.assert_array_equal(u[0], u[2])
    assert u[3] == np.float32(1.5 * 2.0**-23)


def _mix_reference(x):
    """The avalanche mixer in numpy uint64, reduced modulo 2**32."""
    mask = 0xFFFFFFFF
    x = np.asarray(x, dtype=np.uint64) & mask
    x ^= x >> 16
    x = (x * 0x7FEB352D) & mask
    x ^= x >> 15
    x = (x * 0x846CA68B) & mask
    return x ^ (x >> 16)


def _seeded_bits_reference(seed, size):
    """Word i = mix(key xor i * 0xC2B2AE35), key three mixer rounds of the seed."""
    mask = 0xFFFFFFFF
    first, second = (int(word) & mask for word in seed)
    key = int(_mix_reference(first ^ 0x9E3779B9))
    key = int(_mix_reference(_mix_reference((key + second * 0x85EBCA6B) & mask)))
    index = np.arange(size, dtype=np.uint64)
    return _mix_reference(key ^ ((index * 0xC2B2AE35) & mask)).astype(np.uint32)


@pytest.mark.parametrize(
    "size", [1, 7, 4096, 4097, 5000, 1 << 16, 3 * 128 * 256, 1_000_003, 1 << 21]
)
def test_seeded_bits_match_the_formula_at_every_size(size):
    # Sizes above 4,096 words build the index from two short ranges (square
    # and not, exact and cut), below it from one: the words are the same.
    bits = np.asarray(counter_random.seeded_bits(np.array([3, 4]), size))
    np.testing.assert_array_equal(bits, _seeded_bits_reference([3, 4], size))


def test_compiled_bits_carry_no_constant_of_their_length():
    # XLA's TensorFlow bridge makes a range a constant of its full length; a
    # constant of `size` words per dropout call site once held 490 MB in the
    # compiled `small` step. Only short ranges may become constants.
    size = 1 << 20
    bits = tf.function(
        lambda seed: counter_random.seeded_bits(seed, size), jit_compile=True
    )
    seed = tf.constant([3, 4], "int64")
    hlo = bits.experimental_get_compiler_ir(seed)(stage="hlo")
    lengths = [
        int(np.prod([int(d) for d in dims.split(",") if d]))
        for dims in re.findall(r"\[([\d,]*)\]\S* constant\(", hlo)
    ]
    assert lengths and max(lengths) <= 4096, sorted(lengths)[-3:]
    np.testing.assert_array_equal(bits(seed), _seeded_bits_reference([3, 4], size))
    # A size the two ranges do not tile is cut to length inside XLA too.
    cut = tf.function(
        lambda seed: counter_random.seeded_bits(seed, 5000), jit_compile=True
    )
    np.testing.assert_array_equal(cut(seed), _seeded_bits_reference([3, 4], 5000))
