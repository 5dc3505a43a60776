import numpy as np

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
