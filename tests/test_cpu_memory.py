"""The pooling CPU allocator: asked for at import, unless the environment says no."""

import pytest

from electra_keras.cpu_memory import ALLOCATOR_ENV, use_pooling_allocator

from conftest import run_python

# TensorFlow keeps memory statistics only for a BFC allocator.
PROBE = """
    import tensorflow as tf
    import electra_keras  # noqa: F401 (after TensorFlow, before any op)

    tf.matmul(tf.ones([256, 256]), tf.ones([256, 256]))
    try:
        print("peak", tf.config.experimental.get_memory_info("CPU:0")["peak"])
    except ValueError:
        print("no pool")
"""


def test_environment_decides():
    environ = {}
    assert use_pooling_allocator(environ) and environ == {ALLOCATOR_ENV: "1"}
    assert not use_pooling_allocator({ALLOCATOR_ENV: "0"})
    assert use_pooling_allocator({ALLOCATOR_ENV: "true"})


@pytest.mark.parametrize("setting, pooled", [(None, True), ("0", False)])
def test_tensorflow_pools_cpu_memory_after_import(setting, pooled, monkeypatch):
    monkeypatch.delenv(ALLOCATOR_ENV, raising=False)
    env = {} if setting is None else {ALLOCATOR_ENV: setting}
    last = run_python(PROBE, env=env).strip().splitlines()[-1]
    if pooled:
        # At least the 256 KB result was allocated from the pool.
        assert last.startswith("peak") and int(last.split()[1]) >= 256 * 256 * 4
    else:
        assert last == "no pool"
