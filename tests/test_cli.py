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


def test_pretraining_summary_gives_a_verdict():
    from types import SimpleNamespace

    from electra_keras.cli import summarize_pretraining

    def result(auc, mlm, **extra):
        evals = dict(
            mlm_loss=mlm,
            mlm_accuracy=0.2,
            disc_auc=auc,
            disc_accuracy=0.9,
            disc_loss=0.3,
            disc_precision=0.6,
            disc_recall=0.3,
        )
        metrics = {
            "objective": "electra",
            "eval": evals,
            "unigram_entropy": 6.9,
            "prior_entropy": 0.41,
            "collapse": {"fired": False},
            **extra,
        }
        return SimpleNamespace(
            steps=500, seconds=60.0, metrics=metrics, discriminator_path="r/d.keras"
        )

    good = summarize_pretraining(result(auc=0.85, mlm=6.2))
    assert "Verdict: the run learned context" in good
    assert "eval discriminator AUC 0.850" in good and "unigram entropy 6.900" in good
    assert "electra-keras finetune --task mr --pretrained r/d.keras" in good
    # AUC high but the generator only learned frequencies: not learned.
    assert "NOT learned" in summarize_pretraining(result(auc=0.85, mlm=6.85))
    assert "NOT learned" in summarize_pretraining(result(auc=0.6, mlm=6.2))
    fired = summarize_pretraining(result(auc=0.5, mlm=7.0, collapse={"fired": True}))
    assert "collapse guard fired" in fired
    empty = summarize_pretraining(result(auc=0.5, mlm=7.0, eval={}))
    assert "No evaluation ran" in empty
