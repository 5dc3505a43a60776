"""The pooling CPU allocator and the malloc arena cap: set at import, unless the
environment says no."""

import ctypes

import pytest

from electra_keras.cpu_memory import (
    ALLOCATOR_ENV,
    ARENA_ENV,
    limit_malloc_arenas,
    use_pooling_allocator,
)

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


# Threads that each allocate, then glibc's own account of its arenas
# (`malloc_info` writes one `<heap nr=...>` per arena besides the main one).
ARENA_PROBE = """
    import ctypes, ctypes.util, os, tempfile, threading
    {import_line}

    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.fopen.restype = ctypes.c_void_p
    barrier = threading.Barrier(6)
    kept = []

    def work():
        barrier.wait()
        kept.append(libc.malloc(ctypes.c_size_t(4096)))

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    path = os.path.join(tempfile.mkdtemp(), "info.xml")
    stream = libc.fopen(path.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(stream))
    libc.fclose(ctypes.c_void_p(stream))
    print("arenas", open(path).read().count("<heap nr="))
"""


def _arenas(env: dict, import_line: str) -> int:
    out = run_python(ARENA_PROBE.format(import_line=import_line), env=env)
    return int(out.strip().splitlines()[-1].split()[1])


def _glibc() -> bool:
    try:
        return hasattr(ctypes.CDLL("libc.so.6"), "gnu_get_libc_version")
    except OSError:
        return False


@pytest.mark.skipif(not _glibc(), reason="arena caps are glibc's")
def test_import_caps_malloc_arenas(monkeypatch):
    monkeypatch.delenv(ARENA_ENV, raising=False)
    # Six threads that allocate get arenas of their own without the cap.
    assert _arenas({}, "") >= 4
    assert _arenas({}, WITH_LIBRARY) <= 2
    # A cap from the environment is glibc's to apply, and the library's
    # stays out of its way.
    assert 2 < _arenas({ARENA_ENV: "4"}, WITH_LIBRARY) <= 4


class _FakeLibc:
    def __init__(self, result=1, glibc=True):
        self.calls = []
        self.result = result
        if glibc:
            self.gnu_get_libc_version = lambda: b"2.36"

    def mallopt(self, param, value):
        self.calls.append((param.value, value.value))
        return self.result


def test_arena_cap_asks_mallopt_unless_told_otherwise():
    libc = _FakeLibc()
    assert limit_malloc_arenas({}, libc=libc) == 2 and libc.calls == [(-8, 2)]
    libc = _FakeLibc()
    assert limit_malloc_arenas({ARENA_ENV: "8"}, libc=libc) is None
    assert libc.calls == []
    assert limit_malloc_arenas({}, libc=_FakeLibc(glibc=False)) is None
    assert limit_malloc_arenas({}, libc=_FakeLibc(result=0)) is None
