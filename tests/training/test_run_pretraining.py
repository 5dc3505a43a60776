"""End-to-end pretraining runs: outputs, resume after a kill, bad inputs."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from electra_keras.cli import main

from conftest import REPO_ROOT, WORDS
from conftest import write_word_corpus as _write_corpus
from conftest import write_word_vocab as _write_vocab


def _args(tmp_path, *extra):
    return [
        "pretrain",
        "--corpus",
        _write_corpus(tmp_path / "corpus.txt"),
        "--vocab",
        _write_vocab(tmp_path / "vocab.txt"),
        "--output-dir",
        str(tmp_path / "run"),
        "--batch-size",
        "4",
        "--seq-len",
        "32",
        "--set",
        "model.max_sequence_length=32",
        "--num-shards",
        "2",
        # XLA's compilation is most of a step this small: these tests are
        # about outputs and resuming (test_pretraining_resume runs the default).
        "--xla",
        "off",
        *extra,
    ]


def _cli(args, timeout=600):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen(
        [sys.executable, "-m", "electra_keras.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


@pytest.mark.slow
def test_run_writes_outputs_and_resumes_after_kill(tmp_path):
    args = _args(tmp_path, "--train-steps", "40", "--steps-per-epoch", "5")
    from electra_keras.training.resume_checkpoint import latest_resume_step

    run_dir = tmp_path / "run"
    proc = _cli(args)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if latest_resume_step(run_dir / "backup") >= 10:
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.stdout.read()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved_step = latest_resume_step(run_dir / "backup")
    # By default a resume checkpoint comes at each epoch end.
    assert saved_step >= 10 and saved_step % 5 == 0
    assert not (run_dir / "discriminator.keras").exists()

    proc = _cli(args)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert f"Resuming from step {saved_step}" in out
    # 2% of this small corpus is less than one batch: no eval, said so.
    assert "NOTICE: no evaluation" in out and "No evaluation ran" in out
    assert "Done: 40 steps" in out  # the optimizer's step count continued

    # Outputs: discriminator on its own, pretrainer, TensorBoard, checkpoints.
    import electra_keras.models.pretrainer  # noqa: F401 (registers classes)

    discriminator = keras.saving.load_model(run_dir / "discriminator.keras")
    assert discriminator.__class__.__name__ == "ElectraBackbone"
    pretrainer = keras.saving.load_model(run_dir / "pretrainer.keras")
    np.testing.assert_array_equal(
        discriminator.token_embedding.embeddings.numpy(),
        pretrainer.discriminator.token_embedding.embeddings.numpy(),
    )
    assert os.listdir(run_dir / "logs")
    checkpoints = sorted(os.listdir(run_dir / "checkpoints"))
    assert checkpoints[-1] == "step-0000040.weights.h5"
    assert len(checkpoints) == 3
    assert not (run_dir / "backup").exists()  # removed once the run finished


def test_missing_corpus_is_reported_before_any_work(tmp_path, capsys):
    args = _args(tmp_path)
    args[2] = str(tmp_path / "nope.txt")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "nope.txt" in err
    assert not (tmp_path / "run").exists()


def test_empty_and_binary_corpus_files(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n\n")
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 10)
    for bad in (empty, binary):
        args = _args(tmp_path)
        args[2] = str(bad)
        assert main(args) == 2
        assert bad.name in capsys.readouterr().err


def test_vocabulary_without_special_tokens(tmp_path, capsys):
    args = _args(tmp_path)
    (tmp_path / "bad_vocab.txt").write_text("\n".join(["[PAD]", "[UNK]"] + WORDS))
    args[4] = str(tmp_path / "bad_vocab.txt")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "[CLS]" in err and "[MASK]" in err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--seq-len", "64"], "position table"),
        (["--generator-fraction", "0.1"], "generator_fraction"),
        (["--set", "model.nope=1"], "Unknown model config key"),
    ],
)
def test_bad_config_values(tmp_path, capsys, flags, message):
    assert main(_args(tmp_path) + flags) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "flags",
    [["--strategy", "horovod"], ["--preset", "huge"]],
    ids=["strategy", "preset"],
)
def test_unknown_choices_are_rejected_by_the_parser(tmp_path, capsys, flags):
    with pytest.raises(SystemExit) as exit_info:
        main(_args(tmp_path) + flags)
    assert exit_info.value.code == 2
    assert f"invalid choice: '{flags[1]}'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_resuming_with_a_different_config_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    from electra_keras.cli import build_parser, pretrain_config_from_args

    config = pretrain_config_from_args(build_parser().parse_args(_args(tmp_path)))
    (run / "config.json").write_text(config.replace(learning_rate=0.5).to_json())
    assert main(_args(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "learning_rate" in err and "different config" in err


@pytest.mark.slow
def test_eval_split_metrics_json_and_eval_mode(tmp_path, capsys):
    import tensorflow as tf

    import electra_keras.models.pretrainer  # noqa: F401 (registers classes)
    from electra_keras.data import tfrecords
    from electra_keras.training.evaluation import binary_entropy, unigram_entropy

    args = _args(tmp_path, "--train-steps", "4", "--steps-per-epoch", "2")
    args += ["--eval-fraction", "0.2", "--eval-steps", "2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    run = tmp_path / "run"
    # Every 5th packed example is held out, in its own directory.
    train_meta = json.loads((run / "data" / "metadata.json").read_text())
    eval_meta = json.loads((run / "data" / "eval" / "metadata.json").read_text())
    total = train_meta["num_examples"] + eval_meta["num_examples"]
    assert eval_meta["num_examples"] == total // 5
    assert "Unigram entropy of the eval tokens" in out
    assert "eval discriminator AUC" in out and "Verdict:" in out
    assert "electra-keras finetune --task mr --pretrained" in out

    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("disc_auc", "disc_accuracy", "mlm_loss", "mlm_accuracy"):
        assert isinstance(metrics["eval"][key], float), key
    assert len(metrics["history"]["val_mlm_loss"]) == 2  # every epoch
    batches = list(
        tfrecords.load_pretraining_dataset(
            run / "data" / "eval", 32, 4, shuffle=False, repeat=False
        ).take(2)
    )
    arrays = [{k: v.numpy() for k, v in b.items()} for b in batches]
    assert metrics["unigram_entropy"] == pytest.approx(
        unigram_entropy(arrays, (0, 2, 3, 4))
    )
    # The reported eval numbers are the eval-mode (no dropout) pass over the
    # fixed batches with the fixed step-0 masks: recompute them by hand.
    model = keras.saving.load_model(run / "pretrainer.keras", compile=False)
    mlm, fraction = [], []
    for batch in batches:
        o = model.compute_pretraining_outputs(
            batch, tf.constant(0, tf.int64), tf.range(4), training=False
        )
        mlm.append(float(o["mlm_loss_sum"] / o["mlm_count"]))
        fraction.append(float(o["replaced_count"] / o["disc_count"]))
    assert metrics["eval"]["mlm_loss"] == pytest.approx(np.mean(mlm), rel=1e-4)
    assert metrics["eval"]["replaced_fraction"] == pytest.approx(
        np.mean(fraction), rel=1e-4
    )
    assert metrics["prior_entropy"] == pytest.approx(
        binary_entropy(np.mean(fraction)), rel=1e-4
    )
    # The same pass again gives the same numbers (fixed masks, no dropout).
    again = [
        float(o["mlm_loss_sum"] / o["mlm_count"])
        for o in (
            model.compute_pretraining_outputs(
                b, tf.constant(0, tf.int64), tf.range(4), training=False
            )
            for b in batches
        )
    ]
    assert again == mlm
    assert metrics["collapse"]["fired"] in (True, False)
    # Speed over each 2-step epoch's second step; no MFU without a known GPU.
    from electra_keras.config import PretrainingConfig
    from electra_keras.pretraining.flops import pretraining_flops

    speed = metrics["throughput"]
    assert speed["steps"] == 2 and speed["device"] == "CPU" and "mfu" not in speed
    assert len(metrics["history"]["tokens_per_s"]) == 2
    config = PretrainingConfig.from_dict(json.loads((run / "config.json").read_text()))
    tokens = config.batch_size * config.seq_len
    assert speed["tokens_per_s"] == pytest.approx(2 * tokens / speed["seconds"])
    flops = pretraining_flops(config)["train_per_step"]
    assert speed["model_tflops"] == pytest.approx(
        speed["tokens_per_s"] / tokens * flops / 1e12
    )
    assert "Speed (after each epoch's first step):" in out and "tokens/s" in out
    # Where each backbone's attention goes, per layer and head, on the probe.
    from electra_keras.training.attention_probe import attention_summary

    first = {k: arrays[0][k] for k in ("token_ids", "segment_ids", "padding_mask")}
    expected = attention_summary(model.discriminator, first, (2, 3))
    saved = metrics["attention"]["discriminator"]
    assert [len(layer) for layer in saved] == [len(layer) for layer in expected]
    for saved_layer, expected_layer in zip(saved, expected, strict=True):
        for got, want in zip(saved_layer, expected_layer, strict=True):
            assert got == pytest.approx(want, rel=1e-4, abs=1e-6)
    assert len(metrics["attention"]["generator"]) == model.generator.num_layers
    assert "Discriminator attention: entropy" in out
