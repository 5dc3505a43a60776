"""The pooling CPU allocator: asked for at import, unless the environment says no."""

from electra_keras.cpu_memory import ALLOCATOR_ENV, use_pooling_allocator

from conftest import run_python

# TensorFlow keeps memory statistics only for a pooling (BFC) allocator.
PROBE = """
    import tensorflow as tf
    {import_line}

    tf.matmul(tf.ones([256, 256]), tf.ones([256, 256]))
    try:
        print("peak", tf.config.experimental.get_memory_info("CPU:0")["peak"])
    except ValueError:
        print("no pool")
"""
# After TensorFlow, before any op.
WITH_LIBRARY = "import electra_keras  # noqa: F401"


def _probe(env: dict, import_line: str) -> str:
    code = PROBE.format(import_line=import_line)
    return run_python(code, env=env).strip().splitlines()[-1]


def test_environment_decides():
    environ = {}
    assert use_pooling_allocator(environ) and environ == {ALLOCATOR_ENV: "1"}
    assert not use_pooling_allocator({ALLOCATOR_ENV: "0"})
    assert use_pooling_allocator({ALLOCATOR_ENV: "true"})


def test_tensorflow_pools_cpu_memory_after_import(monkeypatch):
    monkeypatch.delenv(ALLOCATOR_ENV, raising=False)
    last = _probe({}, WITH_LIBRARY)
    # At least the 256 KB result was allocated from the pool.
    assert last.startswith("peak") and int(last.split()[1]) >= 256 * 256 * 4


def test_environment_setting_keeps_tensorflows_default(monkeypatch):
    # TensorFlow's own default depends on the CPU (builds with oneDNN on pool
    # already): with the variable set, importing the library changes nothing.
    monkeypatch.delenv(ALLOCATOR_ENV, raising=False)
    env = {ALLOCATOR_ENV: "0"}
    with_library = _probe(env, WITH_LIBRARY)
    without = _probe(env, "")
    assert with_library.split()[0] == without.split()[0]
