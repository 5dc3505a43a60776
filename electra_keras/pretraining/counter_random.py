"""Counter-based random numbers keyed by (seed, step, example index).

Masking and sampling draw their randomness from a hash of `(seed, stream,
step, global example index, element index)` instead of a stateful generator.
The numbers an example gets therefore do not depend on how the global batch
is split across replicas or hosts: a run on one device and a run under
`MirroredStrategy` with the same global batch see the same masks and samples.

Per-example keys go through three rounds of an integer avalanche mixer (the
32-bit finalizer of MurmurHash3-style hashes); each element then takes one
more round of its key xor a multiple of its index. Written in `keras.ops` on
uint32, so it runs inside XLA on any device.
"""

from keras import ops

_GOLDEN = 0x9E3779B9
_ROW = 0x85EBCA6B
_COLUMN = 0xC2B2AE35
# Sizes up to this many words keep one plain range: a constant of at most 16 KB
# under XLA. Longer ones use two ranges of about sqrt(size) words (`_column_words`).
_SHORT = 1 << 12


def _mix(x):
    """A bijective avalanche mixer on uint32 tensors."""
    x = ops.bitwise_xor(x, ops.right_shift(x, 16))
    x = ops.multiply(x, ops.convert_to_tensor(0x7FEB352D, "uint32"))
    x = ops.bitwise_xor(x, ops.right_shift(x, 15))
    x = ops.multiply(x, ops.convert_to_tensor(0x846CA68B, "uint32"))
    return ops.bitwise_xor(x, ops.right_shift(x, 16))


def _key(seed: int, stream: int, step, row_ids):
    """Per-example uint32 keys, shape `[batch]`."""
    base = (seed * _GOLDEN + stream * 0x632BE5AB + 0x5BD1E995) & 0xFFFFFFFF
    step = ops.cast(step, "uint32")
    key = _mix(ops.bitwise_xor(ops.convert_to_tensor(base, "uint32"), step))
    rows = ops.multiply(
        ops.cast(row_ids, "uint32"), ops.convert_to_tensor(_ROW, "uint32")
    )
    return _mix(_mix(ops.add(key, rows)))


def uniform(seed: int, stream: int, step, row_ids, shape):
    """Uniform floats in the open interval (0, 1).

    Args:
        seed: The run's seed (a Python int).
        stream: A small int that separates independent uses (masking, sampling).
        step: Scalar int tensor, the training step.
        row_ids: int tensor `[batch]`, each example's index in the global batch.
        shape: Static shape `(batch, ...)` of the result.

    Returns:
        float32 tensor of `shape`.
    """
    batch = shape[0]
    inner = 1
    for dim in shape[1:]:
        inner *= int(dim)
    keys = ops.reshape(_key(seed, stream, step, row_ids), (batch, 1))
    columns = _column_words(inner, ops.cast(step, "uint32"))
    bits = _mix(ops.bitwise_xor(keys, ops.reshape(columns, (1, inner))))
    return ops.reshape(bits_to_unit_float(bits), shape)


def seeded_bits(seed, size):
    """`size` uint32 words from a two-word seed, one hash per word.

    The words are `mix(key xor index * C)`, with `key` three mixer rounds of
    the seed: about ten integer ops per word that fuse into one loop, with or
    without XLA. Dropout draws its masks from here (see
    `layers.dropout.CounterDropout`).

    Args:
        seed: int tensor of shape `[2]`, e.g. a `keras.random.SeedGenerator`
            draw; each word is taken modulo 2**32.
        size: Number of words, a Python int or a scalar int tensor.

    Returns:
        uint32 tensor `[size]`.
    """
    seed = ops.cast(seed, "uint32")
    key = _mix(ops.bitwise_xor(seed[0], ops.convert_to_tensor(_GOLDEN, "uint32")))
    rows = ops.multiply(seed[1], ops.convert_to_tensor(_ROW, "uint32"))
    key = _mix(_mix(ops.add(key, rows)))
    return _mix(ops.bitwise_xor(key, _column_words(size, key)))


def _column_words(size, key):
    """`index * _COLUMN` (mod 2**32) for `index` in `[0, size)`.

    XLA's TensorFlow bridge turns a `range` into a constant of its full length,
    and folds arithmetic on constants into more constants: a plain
    `arange(size) * _COLUMN` became a `4 * size`-byte constant in every
    compiled graph, one per dropout call site (490 MB in the `small` step under
    XLA, several copies of it held while compiling). A static `size` above
    `_SHORT` is therefore written as `row * width + column`: two ranges of about
    `sqrt(size)` words each, one shifted by the run-time word `key` and the
    other back by it, so that nothing is left to fold and the sum is the same.

    Args:
        size: Number of words, a Python int or a scalar int tensor.
        key: uint32 scalar known only at run time.

    Returns:
        uint32 tensor `[size]`.
    """
    column = ops.convert_to_tensor(_COLUMN, "uint32")
    if not isinstance(size, int) or size <= _SHORT:
        return ops.multiply(ops.cast(ops.arange(size, dtype="int32"), "uint32"), column)
    width = 1 << ((size - 1).bit_length() + 1) // 2  # The power of 2 >= sqrt(size).
    height = -(-size // width)
    row_step = ops.convert_to_tensor((width * _COLUMN) & 0xFFFFFFFF, "uint32")
    rows = ops.multiply(ops.cast(ops.arange(height, dtype="int32"), "uint32"), row_step)
    columns = ops.multiply(ops.cast(ops.arange(width, dtype="int32"), "uint32"), column)
    words = ops.add(
        ops.reshape(ops.add(rows, key), (height, 1)),
        ops.reshape(ops.subtract(columns, key), (1, width)),
    )
    words = ops.reshape(words, (height * width,))
    return words if height * width == size else words[:size]


def bits_to_unit_float(bits):
    """Maps uint32 bits to float32 in the open interval (0, 1).

    Keeps the top 23 bits `k` and returns `(k + 0.5) / 2**23`. Every such value
    is exact in float32 (24 significant bits), so the extremes are `2**-24`
    and `1 - 2**-24`: never 0 or 1, whatever the bits. Taking 24 bits instead
    would need 25 significant bits at the top, and `(2**24 - 0.5) / 2**24`
    rounds to exactly 1.0 (then `gumbel` is +inf).

    Args:
        bits: uint32 tensor of any shape.

    Returns:
        float32 tensor of the same shape.
    """
    top = ops.cast(ops.right_shift(ops.cast(bits, "uint32"), 9), "float32")
    return (top + 0.5) / float(1 << 23)
