import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECIAL_IDS = {"pad_id": 0, "cls_id": 2, "sep_id": 3, "mask_id": 4}


def run_python(code: str, env: dict | None = None, timeout: int = 600) -> str:
    """Runs `code` in a fresh Python process; returns stdout, fails on error."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = REPO_ROOT + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"subprocess failed:\n{proc.stdout}\n{proc.stderr[-5000:]}"
        )
    return proc.stdout


def make_token_batch(num_rows=32, seq_len=16, vocab_size=60, seed=0):
    """Random [CLS] ... [SEP] rows with some padding, as numpy dicts."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, vocab_size, size=(num_rows, seq_len)).astype("int32")
    ids[:, 0] = 2
    lengths = rng.integers(seq_len // 2, seq_len + 1, size=num_rows)
    mask = (np.arange(seq_len)[None, :] < lengths[:, None]).astype("int32")
    ids[np.arange(num_rows), lengths - 1] = 3
    ids[mask == 0] = 0
    return {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": mask}


# Backbone sizes small enough for unit tests (add vocab_size).
TINY_BACKBONE = dict(
    num_layers=1,
    num_heads=2,
    hidden_dim=16,
    intermediate_dim=32,
    embedding_dim=8,
    max_sequence_length=16,
    dropout=0.0,
)


def tiny_backbone(vocab_size: int, **changes):
    """A one-layer `ElectraBackbone` for tests."""
    from electra_keras.models.backbone import ElectraBackbone

    return ElectraBackbone(vocab_size=vocab_size, **{**TINY_BACKBONE, **changes})


def spy_calls(monkeypatch, module, name: str, record=lambda *args, **kwargs: args):
    """Replaces `module.<name>` for the test by a wrapper that appends
    `record(*args, **kwargs)` to the returned list, then calls the original."""
    calls = []
    original = getattr(module, name)

    def spy(*args, **kwargs):
        calls.append(record(*args, **kwargs))
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return calls


# A pretrainer small enough for unit tests (about 20k parameters).
TINY_OVERRIDES = {
    "model.vocab_size": 60,
    "model.num_layers": 1,
    "model.hidden_dim": 16,
    "model.num_heads": 2,
    "model.intermediate_dim": 32,
    "model.embedding_dim": 8,
    "model.max_sequence_length": 16,
    "model.dropout": 0.0,
    "seq_len": 16,
    "batch_size": 8,
}


def tiny_test_config(**changes):
    from electra_keras.config import get_preset

    return get_preset("tiny").replace(**{**TINY_OVERRIDES, **changes})


@pytest.fixture
def tiny_config():
    return tiny_test_config()


@pytest.fixture(autouse=True)
def _seeded():
    import keras

    keras.utils.set_random_seed(1234)


# A small word corpus for end-to-end pretraining runs.
WORDS = (
    "the cat dog sat on mat ran fast slow red blue green house tree river "
    "bird sang song under over quickly happily morning evening light dark"
).split()


def write_word_corpus(path, num_docs=60, seed=0):
    """A corpus of random sentences over `WORDS`, blank lines between documents."""
    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(num_docs):
        sentences = [
            " ".join(rng.choice(WORDS, size=rng.integers(4, 12))) + " ."
            for _ in range(rng.integers(2, 6))
        ]
        docs.append("\n".join(sentences))
    path.write_text("\n\n".join(docs) + "\n")
    return str(path)


def write_word_vocab(path):
    """A vocabulary with the special tokens, "." and "," and `WORDS`."""
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","] + WORDS
    path.write_text("\n".join(tokens) + "\n")
    return str(path)


# === SIGKILL resume tests (pretraining and fine-tuning) ===
def start_cli(args):
    """`python -m electra_keras.cli *args` in the background, niced, output piped."""
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen(
        ["nice", "-n", "19", sys.executable, "-m", "electra_keras.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def resume_checkpoint_steps(run_dir):
    """Steps of the complete resume checkpoints in `<run_dir>/backup`."""
    from electra_keras.training.resume_checkpoint import list_resume_checkpoints

    return [step for step, _ in list_resume_checkpoints(run_dir / "backup")]


def kill_after_checkpoint(proc, run_dir, step, delay):
    """SIGKILLs `proc` `delay` s after a checkpoint of >= `step` appears.

    Returns the checkpoint steps seen before the kill.
    """
    seen = set()
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        seen.update(resume_checkpoint_steps(run_dir))
        if seen and max(seen) >= step:
            break
        time.sleep(0.01)
    time.sleep(delay)
    assert proc.poll() is None, "the run ended before the kill:\n" + proc.stdout.read()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    return seen
