"""Keeps TensorFlow's start-up lines out of the `electra-keras` command line.

TensorFlow 2.21 writes lines such as `WARNING: All log messages before
absl::InitializeLog() is called...`, `Could not find cuda drivers` and oneDNN
banners to file descriptor 2 while it is imported, before its own logging is
set up, so `TF_CPP_MIN_LOG_LEVEL` cannot hide them. Later C++ lines (`failed
call to cuInit`, `cpu_feature_guard`, oneDNN's DT_INT64 note) do obey it.

So, for the CLI only (a library import changes nothing), `quiet_cli_startup`
sets `TF_CPP_MIN_LOG_LEVEL=3` unless the environment already sets it, and
imports TensorFlow with descriptor 2 pointed at a temporary file; afterwards
every captured line that is not known start-up noise is written back.
`--verbose` or `ELECTRA_KERAS_VERBOSE=1` turns all of this off.
`TF_ENABLE_ONEDNN_OPTS` is never changed: it changes numerics and speed.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence

VERBOSE_ENV = "ELECTRA_KERAS_VERBOSE"
CLI_MODULES = ("electra_keras", "electra_keras.cli")
CLI_SCRIPT = "electra-keras"

# Lines TensorFlow writes at start-up that tell a user nothing actionable.
NOISE_PATTERNS = tuple(
    re.compile(pattern)
    for pattern in (
        r"All log messages before absl::InitializeLog\(\) is called",
        r"Could not find cuda drivers",
        r"failed call to cuInit",
        r"cuda_(platform|executor|diagnostics|driver)\.cc",
        r"Unable to register cu(DNN|FFT|BLAS) factory",
        r"computation placer already registered",
        r"TF-TRT Warning: Could not find TensorRT",
        r"cpu_feature_guard\.cc",
        r"This TensorFlow binary is optimized to use available CPU instructions",
        r"^To enable the following instructions: .* rebuild TensorFlow",
        r"oneDNN custom operations are on",
        r"oneDNN supports DT_\w+ only on platforms with AVX-512",
    )
)


def is_noise(line: str) -> bool:
    """Whether `line` is one of TensorFlow's known start-up lines."""
    return any(pattern.search(line) for pattern in NOISE_PATTERNS)


def verbose_requested(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> bool:
    """Whether the user asked for full logs: `--verbose` or ELECTRA_KERAS_VERBOSE.

    Args:
        argv: command-line arguments (default: `sys.argv[1:]`).
        environ: environment (default: `os.environ`).
    """
    argv = sys.argv[1:] if argv is None else argv
    environ = os.environ if environ is None else environ
    flag = environ.get(VERBOSE_ENV, "").strip().lower()
    return "--verbose" in argv or flag in ("1", "true", "yes", "on")


def launched_as_cli(
    argv: Sequence[str] | None = None, orig_argv: Sequence[str] | None = None
) -> bool:
    """Whether this process is the `electra-keras` command.

    True for the console script and for `python -m electra_keras[.cli]`.

    Args:
        argv: `sys.argv` (during `python -m`, `argv[0]` is "-m").
        orig_argv: the interpreter's own arguments, `sys.orig_argv`.
    """
    argv = sys.argv if argv is None else argv
    orig_argv = getattr(sys, "orig_argv", []) if orig_argv is None else orig_argv
    if argv and os.path.basename(argv[0]) == CLI_SCRIPT:
        return True
    if "-m" in orig_argv[:-1]:
        return orig_argv[orig_argv.index("-m") + 1] in CLI_MODULES
    return False


@contextlib.contextmanager
def filtered_stderr() -> Iterator[None]:
    """Captures file descriptor 2 and writes back what is not start-up noise.

    C++ code writes to the descriptor directly, so replacing `sys.stderr` would
    not catch it. A temporary file (not a pipe) cannot fill up and block.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            kept = [
                line for line in text.splitlines(keepends=True) if not is_noise(line)
            ]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def quiet_cli_startup() -> bool:
    """Imports TensorFlow quietly when this process is the CLI; see the module.

    Does nothing when not launched as the CLI, when verbose logs are asked
    for, or when TensorFlow is already imported.

    Returns:
        True when it imported TensorFlow quietly.
    """
    if not launched_as_cli() or verbose_requested() or "tensorflow" in sys.modules:
        return False
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with filtered_stderr():
        import tensorflow  # noqa: F401
    return True
