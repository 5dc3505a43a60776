"""Exact resume: a fine-tuning run killed with SIGKILL ends as if never killed."""

import random

import keras
import numpy as np
import pytest

from conftest import kill_after_checkpoint, start_cli
from finetuning_helpers import pretrained_backbone, sst2_task_dir

# 64 examples, batch 8: 8 steps per epoch, 4 epochs.
TRAIN_STEPS, STEPS_PER_EPOCH, EVERY = 32, 8, 3


def _start(data_dir, pretrained, run_dir):
    args = ["finetune", "--task", "sst2", "--data-dir", data_dir]
    args += ["--pretrained", pretrained, "--output-dir", str(run_dir)]
    args += ["--epochs", "4", "--batch-size", "8", "--seq-len", "8"]
    args += ["--learning-rate", "3e-3", "--layerwise-lr-decay", "0.8"]
    # Dropout on: its random state must resume too.
    args += ["--dropout", "0.1", "--checkpoint-every", str(EVERY)]
    args += ["--progress", "epoch"]
    return start_cli(args)


def _final_weights(run_dir):
    import electra_keras.models.classifier  # noqa: F401 (registers classes)

    model = keras.saving.load_model(run_dir / "classifier.keras", compile=False)
    return {v.path: v.numpy() for v in model.weights}


@pytest.mark.slow
def test_killed_finetuning_resumes_to_the_uninterrupted_weights(tmp_path):
    from electra_keras.training.resume_checkpoint import latest_resume_step

    data_dir = sst2_task_dir(tmp_path / "SST-2")
    pretrained = pretrained_backbone(tmp_path / "pretrain")
    rng = random.Random()
    # Mid-epoch checkpoints (3, 6, 9, ... are never epoch ends but 24), then a
    # random delay that may land inside the next checkpoint's write.
    first = rng.choice([3, 6, 9, 12])
    second = rng.choice([s for s in range(first + EVERY, TRAIN_STEPS - EVERY, EVERY)])
    schedule = [(first, rng.uniform(0, 0.3)), (second, rng.uniform(0, 0.3))]

    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    reference = _start(data_dir, pretrained, reference_dir)  # alongside
    resumed_from = []
    proc = _start(data_dir, pretrained, killed_dir)
    for step, delay in schedule:
        seen = kill_after_checkpoint(proc, killed_dir, step, delay)
        assert all(s % EVERY == 0 for s in seen), (schedule, seen)
        resume_step = latest_resume_step(killed_dir / "backup")
        # The newest complete checkpoint survived: at most EVERY steps lost.
        assert resume_step >= max(seen), (schedule, seen, resume_step)
        assert not (killed_dir / "classifier.keras").exists()
        resumed_from.append(resume_step)
        proc = _start(data_dir, pretrained, killed_dir)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert f"Resuming from step {resumed_from[-1]} of {TRAIN_STEPS}" in out
    assert "dev: accuracy" in out
    assert not (killed_dir / "backup").exists()
    ref_out, _ = reference.communicate(timeout=600)
    assert reference.returncode == 0, ref_out

    expected, got = _final_weights(reference_dir), _final_weights(killed_dir)
    assert expected.keys() == got.keys()
    for name, value in expected.items():
        # Bit-exact on CPU: same ops, same order, same data, same dropout.
        np.testing.assert_array_equal(got[name], value, err_msg=(name, schedule))
