"""TensorFlow's pooling (BFC) allocator for CPU memory, on by default.

TensorFlow's default CPU allocator hands every tensor to `malloc` and back.
Activations of a few MB are mapped fresh from the kernel each time, and every
step pays the page faults of touching them again. The BFC allocator (the one
TensorFlow uses for GPU memory) keeps freed blocks for reuse. On 2 AMD EPYC
cores it made the `small` pretraining step 1.21x as fast (XLA on, 2 runs
each, `benchmarks/pretraining_throughput.py --preset small`) and serving at
batch 32 1.10x, at the cost of a larger peak RSS (5.28 against 4.73 GB for
that step): the pool keeps what the busiest moment needed.

`import electra_keras` sets `TF_CPU_ALLOCATOR_USE_BFC=1` unless the
environment already sets it; TensorFlow reads it when it creates its CPU
device, at the first op, so it works after `import tensorflow` too, but not
once an op has run. `TF_CPU_ALLOCATOR_USE_BFC=0` keeps TensorFlow's default
(less memory held). The pool is capped at 64 GB unless
`TF_CPU_BFC_MEM_LIMIT_IN_MB` says otherwise.

It also caps glibc's malloc at two arenas (`limit_malloc_arenas`) unless
`MALLOC_ARENA_MAX` is set. glibc gives each thread that meets a locked arena
a new one, up to 8 per core, and an arena keeps what it once held: with
TensorFlow's thread pools, memory outside the BFC pool (graphs, kernels,
oneDNN's caches) spreads over many arenas.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import MutableMapping

ALLOCATOR_ENV = "TF_CPU_ALLOCATOR_USE_BFC"
ARENA_ENV = "MALLOC_ARENA_MAX"
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's mallopt() parameter number (malloc.h).


def use_pooling_allocator(environ: MutableMapping[str, str] | None = None) -> bool:
    """Asks TensorFlow for its BFC CPU allocator unless `environ` says otherwise.

    Args:
        environ: the environment to read and change; `os.environ` when None.

    Returns:
        Whether the pooling allocator is asked for (False when the
        environment turned it off).
    """
    environ = os.environ if environ is None else environ
    value = environ.setdefault(ALLOCATOR_ENV, "1")
    return value.strip().lower() in ("1", "true")


def limit_malloc_arenas(
    environ: MutableMapping[str, str] | None = None,
    arenas: int = MALLOC_ARENAS,
    libc: ctypes.CDLL | None = None,
) -> int | None:
    """Caps glibc's malloc arenas at `arenas` for arenas created from now on.

    Does nothing when the environment sets `MALLOC_ARENA_MAX` (glibc read it
    at start-up) or when the C library is not glibc. Arenas that threads
    created before the call stay, so this belongs before TensorFlow starts
    its thread pools (`import electra_keras` calls it first).

    Args:
        environ: the environment to read; `os.environ` when None.
        arenas: the cap.
        libc: the C library; the process's own when None.

    Returns:
        The cap set, or None when none was set.
    """
    environ = os.environ if environ is None else environ
    if ARENA_ENV in environ:
        return None
    if libc is None:
        try:
            libc = ctypes.CDLL(None)  # The process's own symbols, libc's among them.
        except OSError:
            return None
    # Only glibc has gnu_get_libc_version; musl's mallopt ignores the cap.
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return None
    if libc.mallopt(ctypes.c_int(_M_ARENA_MAX), ctypes.c_int(arenas)) != 1:
        return None
    return arenas
