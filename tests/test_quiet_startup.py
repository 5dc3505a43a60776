"""The CLI hides TensorFlow's start-up lines; `--verbose` shows them."""

import os
import subprocess
import sys
import textwrap

import pytest

from electra_keras.quiet_startup import is_noise, launched_as_cli, verbose_requested

from conftest import REPO_ROOT

# What TensorFlow 2.21 prints at start-up on CPU machines (and GPU ones without
# drivers); none of it may reach a user of the CLI.
NOISE = (
    "All log messages before absl::InitializeLog()",
    "oneDNN custom operations are on",
    "Could not find cuda drivers",
    "failed call to cuInit",
    "CUDA error",
    "cpu_feature_guard",
    "This TensorFlow binary is optimized",
    "oneDNN supports DT_INT64 only on platforms with AVX-512",
    "I0000 ",
    "E0000 ",
    "W0000 ",
)

SAMPLE_NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written "
    "to STDERR",
    "I0000 00:00:1796126703.143304    3081 cudart_stub.cc:31] Could not find cuda "
    "drivers on your machine, GPU will not be used.",
    "I0000 00:00:1796126703.230363    3081 cpu_feature_guard.cc:227] This "
    "TensorFlow binary is optimized to use available CPU instructions in "
    "performance-critical operations.",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild "
    "TensorFlow with the appropriate compiler flags.",
    "E0000 00:00:1796126706.607090    3081 cuda_platform.cc:52] failed call to "
    "cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
    "I0000 00:00:1.0 1 port.cc:153] oneDNN custom operations are on. You may see "
    "slightly different numerical results due to floating-point round-off errors.",
]


def _cli_env(**extra):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    # conftest sets these for the test process; a user's shell has neither.
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    env.pop("ELECTRA_KERAS_VERBOSE", None)
    return {**env, **extra}


@pytest.mark.parametrize("line", SAMPLE_NOISE)
def test_start_up_lines_are_noise(line):
    assert is_noise(line)


@pytest.mark.parametrize(
    "line",
    [
        "UserWarning: the model was saved without an optimizer",
        "Traceback (most recent call last):",
        "electra-keras: error: Vocabulary file v.txt does not exist.",
    ],
)
def test_other_lines_are_kept(line):
    assert not is_noise(line)


def test_only_the_cli_process_is_quieted():
    assert launched_as_cli(["/venv/bin/electra-keras", "info"], ["python"])
    assert launched_as_cli(["-m", "info"], ["python", "-m", "electra_keras", "info"])
    assert launched_as_cli(["-m"], ["python", "-X", "dev", "-m", "electra_keras.cli"])
    assert not launched_as_cli(["-m"], ["python", "-m", "pytest"])
    assert not launched_as_cli(["train.py"], ["python", "train.py"])
    assert not launched_as_cli([""], ["python", "-c", "import electra_keras"])


def test_verbose_flag_or_environment():
    assert verbose_requested(["pretrain", "--verbose"], {})
    assert verbose_requested([], {"ELECTRA_KERAS_VERBOSE": "1"})
    assert not verbose_requested(["pretrain"], {"ELECTRA_KERAS_VERBOSE": "0"})
    assert not verbose_requested(["pretrain"], {})


def test_filter_drops_noise_and_keeps_the_rest_of_file_descriptor_2():
    code = textwrap.dedent(
        """
        import os, sys
        from electra_keras.quiet_startup import filtered_stderr
        with filtered_stderr():
            os.write(2, b"I0000 port.cc:153] oneDNN custom operations are on. "
                        b"marker-1\\n")
            os.write(2, b"a real problem\\n")
            print("from python", file=sys.stderr)
        print("after", file=sys.stderr)
        """
    )
    # Importing electra_keras.quiet_startup imports the package (and TF) too.
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_cli_env(TF_CPP_MIN_LOG_LEVEL="3"),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if not is_noise(line)]
    assert lines[-3:] == ["a real problem", "from python", "after"]
    assert "marker-1" not in proc.stderr


def _run_cli(*args, module="electra_keras", **env):
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        env=_cli_env(**env),
        timeout=300,
    )


@pytest.mark.parametrize("module", ["electra_keras", "electra_keras.cli"])
def test_cli_prints_no_tensorflow_start_up_lines(module):
    proc = _run_cli("info", module=module)
    assert proc.returncode == 0, proc.stderr
    for noise in NOISE:
        assert noise not in proc.stderr and noise not in proc.stdout, noise
    assert proc.stderr == ""
    first = proc.stdout.splitlines()[0]
    assert first.startswith("Runtime: ") and "cores" in first
    assert "precision float32" in first and "XLA o" in first


def test_verbose_restores_tensorflow_logs():
    """The quiet run above is quiet because of the filter, not by luck."""
    quiet = _run_cli("info")
    loud = _run_cli("info", "--verbose")
    env_loud = _run_cli("info", ELECTRA_KERAS_VERBOSE="1")
    assert quiet.stderr == ""
    assert "absl::InitializeLog" in loud.stderr
    assert "absl::InitializeLog" in env_loud.stderr
    assert loud.stdout == quiet.stdout
