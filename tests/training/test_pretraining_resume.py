"""Exact resume: a pretraining run killed with SIGKILL ends as if never killed."""

import json
import random

import keras
import numpy as np
import pytest

from conftest import kill_after_checkpoint, start_cli
from conftest import write_word_corpus as _write_corpus
from conftest import write_word_vocab as _write_vocab

TRAIN_STEPS, STEPS_PER_EPOCH, EVERY = 24, 6, 2


def _start(tmp_path, run_dir):
    args = [
        "pretrain",
        "--corpus",
        _write_corpus(tmp_path / "corpus.txt"),
        "--vocab",
        _write_vocab(tmp_path / "vocab.txt"),
        "--output-dir",
        str(run_dir),
        "--batch-size",
        "4",
        "--seq-len",
        "32",
        "--set",
        "model.max_sequence_length=32",
        "--num-shards",
        "2",
        "--train-steps",
        str(TRAIN_STEPS),
        "--steps-per-epoch",
        str(STEPS_PER_EPOCH),
        "--checkpoint-every",
        str(EVERY),
        # Evaluation at each epoch end, the interrupted one's included.
        "--eval-fraction",
        "0.2",
        "--eval-steps",
        "1",
    ]
    return start_cli(args)


def _final_weights(run_dir):
    import electra_keras.models.pretrainer  # noqa: F401 (registers classes)

    model = keras.saving.load_model(run_dir / "pretrainer.keras", compile=False)
    return {v.path: v.numpy() for v in model.weights}


@pytest.mark.slow
def test_killed_runs_resume_to_the_uninterrupted_weights(tmp_path):
    from electra_keras.training.resume_checkpoint import latest_resume_step

    rng = random.Random()
    # Two kills: after a random mid-epoch checkpoint (+ a random delay, which
    # may land inside the next checkpoint's write), then a later one.
    first = rng.choice([s for s in range(EVERY, 12, EVERY) if s % STEPS_PER_EPOCH])
    second = rng.choice(range(first + EVERY, TRAIN_STEPS - EVERY, EVERY))
    schedule = [(first, rng.uniform(0, 0.6)), (second, rng.uniform(0, 0.6))]

    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    reference = _start(tmp_path, reference_dir)  # runs alongside the others
    resumed_from = []
    proc = _start(tmp_path, killed_dir)
    for step, delay in schedule:
        seen = kill_after_checkpoint(proc, killed_dir, step, delay)
        # Checkpoints came every EVERY steps, and the newest complete one
        # survived the kill: at most one interval of work is lost.
        assert all(s % EVERY == 0 for s in seen), (schedule, seen)
        resume_step = latest_resume_step(killed_dir / "backup")
        assert resume_step >= max(seen), (schedule, seen, resume_step)
        assert not (killed_dir / "pretrainer.keras").exists()
        resumed_from.append(resume_step)
        proc = _start(tmp_path, killed_dir)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert f"Resuming from step {resumed_from[-1]}" in out, (schedule, out)
    assert f"Done: {TRAIN_STEPS} steps" in out
    assert not (killed_dir / "backup").exists()
    ref_out, _ = reference.communicate(timeout=600)
    assert reference.returncode == 0, ref_out

    evals = [
        json.loads((d / "metrics.json").read_text())["eval"]
        for d in (reference_dir, killed_dir)
    ]
    assert evals[0] and evals[0] == evals[1]
    expected, got = _final_weights(reference_dir), _final_weights(killed_dir)
    assert expected.keys() == got.keys()
    for path in expected:
        # Bit-exact: same data order, same masks, same dropout, same updates.
        np.testing.assert_array_equal(
            got[path], expected[path], err_msg=f"{path} {schedule} {resumed_from}"
        )
