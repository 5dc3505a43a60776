"""The `electra-keras` command line."""

import os
import subprocess
import sys

import keras
import pytest

from electra_keras.cli import build_parser, pretrain_config_from_args

from conftest import REPO_ROOT


def test_flags_map_onto_the_preset():
    args = build_parser().parse_args(
        [
            "pretrain",
            "--preset",
            "small",
            "--batch-size",
            "64",
            "--generator-fraction",
            "0.5",
            "--mlm-only",
            "--set",
            "model.dropout=0.0",
            "--set",
            "temperature=0.5",
        ]
    )
    config = pretrain_config_from_args(args)
    assert config.model.hidden_dim == 256 and config.model.num_layers == 12
    assert config.batch_size == 64
    assert config.model.generator_fraction == 0.5
    assert config.electra_objective is False
    assert config.model.dropout == 0.0
    assert config.temperature == 0.5
    assert config.learning_rate == 5e-4  # untouched preset value


def test_short_runs_get_a_proportional_warmup():
    args = build_parser().parse_args(["pretrain", "--train-steps", "20"])
    assert pretrain_config_from_args(args).warmup_steps == 2


@pytest.mark.slow
def test_default_command_smoke_run(tmp_path):
    """`electra-keras pretrain` on its built-in default, fewer steps."""
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    cmd = [sys.executable, "-m", "electra_keras.cli", "pretrain"]
    cmd += ["--train-steps", "4", "--steps-per-epoch", "2"]
    cmd += ["--output-dir", str(tmp_path / "run")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "WikiText-2 demo corpus" in out
    assert "Epoch 2/2" in out
    assert "Done: 4 steps" in out
    import electra_keras.models.backbone  # noqa: F401 (registers the class)

    discriminator = keras.saving.load_model(tmp_path / "run" / "discriminator.keras")
    assert discriminator.vocab_size == 30522  # BERT uncased vocabulary
    assert discriminator.hidden_dim == 128  # the tiny preset
