"""`run_pretraining`: corpus -> TFRecords -> `ElectraPretrainer.fit()` -> models.

Every input is checked before any long work starts (downloads, packing,
training). A run directory holds:

    config.json          the PretrainingConfig (resuming needs the same one)
    vocab.txt            the vocabulary the run was trained with
    data/                packed TFRecord shards + metadata.json
    data/eval/           the held-out eval shard (eval corpus or eval_fraction)
    backup/              resume checkpoints (`resume_checkpoint`), every
                         `checkpoint_every` steps; removed when done
    checkpoints/         the last few `step-N.weights.h5`
    logs/                TensorBoard
    pretrainer.keras     generator + discriminator + heads, at the end
    discriminator.keras  the discriminator backbone alone, for fine-tuning
    metrics.json         final train and eval metrics, the unigram entropy of
                         the eval data, the prior's entropy, collapse events,
                         the run's speed (tokens/s, model TFLOP/s, MFU on
                         known GPUs)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from collections.abc import Sequence
from typing import Any

from electra_keras.config import CORPUS_FORMATS, ConfigError, PretrainingConfig
from electra_keras.pretraining.flops import pretraining_flops

CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.txt"
DISCRIMINATOR_FILE = "discriminator.keras"
PRETRAINER_FILE = "pretrainer.keras"

# Fields that may change when a run is resumed: they do not change the model,
# the data or the optimisation.
_RESUMABLE_FIELDS = (
    "strategy",
    "num_cpu_replicas",
    "xla",
    "steps_per_execution",
    "eval_steps",
    "stop_on_collapse",
    "checkpoint_every",
)


class RunDirectoryError(ValueError):
    """The output directory holds a run that this one cannot continue."""


@dataclasses.dataclass
class PretrainingResult:
    """What a finished run produced."""

    output_dir: str
    discriminator_path: str
    pretrainer_path: str
    history: dict[str, list[float]]
    steps: int
    seconds: float
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    metrics_path: str | None = None


def run_pretraining(
    config: PretrainingConfig,
    output_dir: str,
    corpus: Sequence[str] | None = None,
    vocab: str | None = None,
    build_vocab_size: int | None = None,
    num_shards: int = 4,
    verbose: int | str = "auto",
    eval_corpus: Sequence[str] | None = None,
) -> PretrainingResult:
    """Pretrains ELECTRA (or MLM) on a text corpus; resumes an interrupted run.

    Args:
        config: The run's config; `model.vocab_size` is set from the vocabulary.
        output_dir: The run directory (see the module docstring).
        corpus: Text files or globs; None uses the WikiText-2 demo corpus.
        vocab: A BERT-style `vocab.txt`; None with `build_vocab_size` learns one
            from the corpus, None without it uses BERT's uncased vocabulary
            (for the demo corpus: an 8k vocabulary learned from it, cached).
        build_vocab_size: Size of a WordPiece vocabulary to learn.
        num_shards: TFRecord shards to write.
        verbose: 0 silent, 1 Keras' progress bar, 2 one line per epoch, or
            "auto" (the default): the bar on a terminal, else lines.
        eval_corpus: Text files or globs for evaluation. None: the WikiText-2
            validation split with the demo corpus, else
            `config.eval_fraction` of the packed examples of `corpus`, spread
            evenly.

    Returns:
        A `PretrainingResult`.
    """
    from electra_keras.data import corpus as corpus_lib
    from electra_keras.data import tfrecords
    from electra_keras.data import vocab as vocab_lib

    start = time.time()
    output_dir = os.path.abspath(output_dir)
    # --- 1. check everything that can be checked without long work ----------
    corpus_files = None
    if corpus:
        corpus_files = corpus_lib.resolve_corpus_files(list(corpus))
    eval_files = None
    if eval_corpus:
        eval_files = corpus_lib.resolve_corpus_files(list(eval_corpus))
    if vocab is not None and build_vocab_size is not None:
        raise ConfigError(
            "Pass either a vocabulary file or a size to build one, not both."
        )
    tokens = vocab_lib.load_vocabulary(vocab) if vocab else None
    saved_vocab = os.path.join(output_dir, VOCAB_FILE)
    previous = _previous_config(output_dir)
    if previous is not None and os.path.exists(saved_vocab):
        tokens = _check_same_vocabulary(tokens, vocab_lib.load_vocabulary(saved_vocab))
    if tokens is not None:
        config = config.replace(**{"model.vocab_size": len(tokens)})
    _check_run_directory(output_dir, previous, config, tokens)

    from electra_keras.training import strategy as strategy_lib

    # The strategy must exist before TensorFlow initialises its devices.
    strategy = strategy_lib.create_strategy(config.strategy, config.num_cpu_replicas)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ConfigError(
            f"`batch_size` ({config.batch_size}) must be divisible by the number "
            f"of replicas ({replicas})."
        )
    # The saved config keeps what was asked ("auto"); the model and the
    # optimizer get the policy it resolves to on this machine.
    policy, why = strategy_lib.resolve_precision(config.mixed_precision)
    strategy_lib.set_mixed_precision(policy)
    xla, xla_why = strategy_lib.resolve_xla_with_reason(config.xla)
    from electra_keras.runtime_info import runtime_line

    print(
        runtime_line(
            precision=f"{policy} ({why})" if why else policy,
            xla=xla,
            replicas=replicas,
            xla_reason=xla_why,
        ),
        flush=True,
    )

    # --- 2. data --------------------------------------------------------------
    if corpus_files is None:
        from electra_keras.data import demo_corpus

        print("No --corpus given: using the WikiText-2 demo corpus.", flush=True)
        corpus_files = [demo_corpus.download_wikitext2(split="train")]
        if eval_files is None:
            eval_files = [demo_corpus.download_wikitext2(split="valid")]
        if tokens is None and not build_vocab_size and config.lowercase:
            tokens = vocab_lib.load_vocabulary(demo_corpus.demo_vocabulary())
    if tokens is None:
        if build_vocab_size:
            print(
                f"Learning a {build_vocab_size}-token WordPiece vocabulary...",
                flush=True,
            )
            tokens = vocab_lib.build_vocabulary(
                corpus_files, vocab_size=build_vocab_size, lowercase=config.lowercase
            )
        else:
            tokens = vocab_lib.load_vocabulary(vocab_lib.download_bert_vocabulary())
    if config.model.vocab_size != len(tokens):
        config = config.replace(**{"model.vocab_size": len(tokens)})
    _check_run_directory(output_dir, previous, config, tokens)
    os.makedirs(output_dir, exist_ok=True)
    vocab_lib.save_vocabulary(tokens, saved_vocab)
    with open(os.path.join(output_dir, CONFIG_FILE), "w") as f:
        f.write(config.to_json())

    from electra_keras.data.tokenizer import ElectraTokenizer

    tokenizer = ElectraTokenizer(tokens, lowercase=config.lowercase)
    data_dir = os.path.join(output_dir, "data")
    eval_dir = os.path.join(data_dir, "eval")
    evaluate = config.eval_steps > 0 and (eval_files or config.eval_fraction > 0)
    packing = dict(
        seq_len=config.seq_len,
        seed=config.seed,
        short_seq_prob=config.short_seq_prob,
        single_segment_prob=config.single_segment_prob,
        doc_per_line=CORPUS_FORMATS[config.corpus_format],
    )
    metadata = tfrecords.read_metadata(data_dir)
    if metadata is None:
        holdout = evaluate and not eval_files
        tfrecords.write_pretraining_tfrecords(
            corpus_files,
            tokenizer,
            data_dir,
            num_shards=num_shards,
            holdout_fraction=config.eval_fraction if holdout else 0.0,
            holdout_dir=eval_dir if holdout else None,
            **packing,
        )
    else:
        # Packed data is reused only for the files (and contents) it was
        # packed from: else a resumed run would train on the old corpus.
        tfrecords.check_packed_corpus(data_dir, corpus_files, "--corpus")
    eval_packed = tfrecords.read_metadata(eval_dir) is not None
    if evaluate and eval_files and not eval_packed:
        print("Packing the eval corpus:", flush=True)
        tfrecords.write_pretraining_tfrecords(
            eval_files, tokenizer, eval_dir, num_shards=1, **packing
        )
    elif evaluate and eval_files:
        tfrecords.check_packed_corpus(
            eval_dir, eval_files, "--eval-corpus", held_out=False
        )
    elif evaluate and eval_packed:
        tfrecords.check_packed_corpus(
            eval_dir, corpus_files, "--corpus (no --eval-corpus)", held_out=True
        )

    # --- 3. model -------------------------------------------------------------
    import keras

    from electra_keras.models.pretrainer import ElectraPretrainer
    from electra_keras.training import accelerator_peaks as peak_lib
    from electra_keras.training import evaluation
    from electra_keras.training.callbacks import PeriodicCheckpoint
    from electra_keras.training.collapse_guard import CollapseGuard
    from electra_keras.training.optimizer import create_optimizer
    from electra_keras.training.progress import progress_settings
    from electra_keras.training.resume_checkpoint import (
        ResumeCheckpoint,
        fit_segments,
        latest_resume_step,
        resume_batches,
    )
    from electra_keras.training.throughput import ThroughputMonitor

    keras.utils.set_random_seed(config.seed)
    special_ids = {
        "pad_id": tokenizer.pad_id,
        "cls_id": tokenizer.cls_id,
        "sep_id": tokenizer.sep_id,
        "mask_id": tokenizer.mask_id,
    }
    with strategy.scope():
        model = ElectraPretrainer.from_config_object(
            config, special_ids, name="electra_pretrainer"
        )
        model.compile(
            optimizer=create_optimizer(config.replace(mixed_precision=policy)),
            xla=xla,
            steps_per_execution=config.steps_per_execution,
        )

    # --- 4. train (resuming where a previous attempt stopped) -----------------
    backup_dir = os.path.join(output_dir, "backup")
    resume_step = latest_resume_step(backup_dir)
    resume_batch = resume_batches(backup_dir, resume_step)
    epochs = -(-config.train_steps // config.steps_per_epoch)

    def training_data(step: int):
        # One fixed order for the whole run; a resumed run skips what the
        # steps before it consumed (exact: see `load_pretraining_dataset`).
        return tfrecords.load_pretraining_dataset(
            data_dir,
            seq_len=config.seq_len,
            batch_size=config.batch_size,
            seed=config.seed,
            vocab_size=len(tokens),
            lowercase=config.lowercase,
            skip_batches=step,
        )

    dataset = training_data(0)
    eval_dataset, unigram = None, None
    held_out = (tfrecords.read_metadata(eval_dir) or {}).get("num_examples", 0)
    if evaluate and held_out < config.batch_size:
        evaluate = False
        print(
            f"NOTICE: no evaluation: the eval data in {eval_dir} has {held_out} "
            f"example(s), fewer than one batch ({config.batch_size}). Give an "
            "--eval-corpus or a larger --eval-fraction.",
            flush=True,
        )
    if not evaluate:
        # The guard's representation probe: the first eval batch, else this.
        probe_batch = next(iter(dataset.take(1)))
    else:
        eval_dataset, unigram, probe_batch = _eval_data(
            eval_dir, config, tokens, special_ids
        )
        print(
            f"Eval: {config.eval_steps} batches of {eval_dir} every "
            f"{config.steps_per_epoch} steps, in eval mode with fixed masks. Unigram "
            f"entropy of the eval tokens: {unigram:.3f} nats (an MLM loss near it "
            "means the generator learned frequencies, not context).",
            flush=True,
        )
    guard = CollapseGuard(
        warmup_steps=config.warmup_steps,
        probe_batch=probe_batch,
        stop=config.stop_on_collapse,
    )
    peak, device = peak_lib.run_peak_tflops(policy, replicas)
    flops_per_step = pretraining_flops(config)["train_per_step"]
    speed = ThroughputMonitor(
        tokens_per_step=config.batch_size * config.seq_len,
        flops_per_step=flops_per_step,
        peak_tflops=peak,
    )
    callbacks = [
        speed,  # first: the others see the figures it adds to the logs
        guard,
        ResumeCheckpoint(
            backup_dir,
            every=config.checkpoint_every or config.steps_per_epoch,
            restore_step=resume_step,
            final_step=epochs * config.steps_per_epoch,
        ),
        PeriodicCheckpoint(
            os.path.join(output_dir, "checkpoints"), keep=config.keep_checkpoints
        ),
        keras.callbacks.TensorBoard(
            os.path.join(output_dir, "logs"), update_freq="epoch"
        ),
    ]
    if resume_step:
        at = "" if resume_batch == resume_step else f", batch {resume_batch}"
        print(f"Resuming from step {resume_step}{at} (found {backup_dir}).", flush=True)
    print(
        f"Pretraining {_describe(config, model, flops_per_step)} for "
        f"{config.train_steps} steps.",
        flush=True,
    )
    keras_verbose, progress = progress_settings(verbose)
    history: dict[str, list[float]] = {}
    for first_epoch, skip, steps in fit_segments(
        resume_batch, config.steps_per_epoch, epochs
    ):
        if model.stop_training and history:
            break  # the collapse guard stopped the run
        segment = model.fit(
            training_data(skip),
            initial_epoch=first_epoch,
            epochs=first_epoch + 1 if steps < config.steps_per_epoch else epochs,
            steps_per_epoch=steps,
            callbacks=callbacks + progress,
            shuffle=False,
            verbose=keras_verbose,
            validation_data=eval_dataset,
        )
        for key, values in segment.history.items():
            history.setdefault(key, []).extend(float(v) for v in values)

    # --- 5. outputs -------------------------------------------------------------
    pretrainer_path = os.path.join(output_dir, PRETRAINER_FILE)
    discriminator_path = os.path.join(output_dir, DISCRIMINATOR_FILE)
    model.save(pretrainer_path)
    model.discriminator.save(discriminator_path)
    steps = int(model.optimizer.iterations.numpy())
    shutil.rmtree(backup_dir, ignore_errors=True)  # the outputs are complete
    metrics = _final_metrics(config, history, unigram, guard, steps)
    metrics["attention"] = _attention(model, probe_batch, special_ids)
    throughput = speed.summary()
    metrics["throughput"] = throughput and {**throughput, "device": device}
    metrics["seconds"] = time.time() - start
    metrics_path = evaluation.write_metrics(output_dir, metrics)
    print(
        f"Saved {discriminator_path} (for fine-tuning), {pretrainer_path} and "
        f"{metrics_path}.",
        flush=True,
    )
    return PretrainingResult(
        output_dir=output_dir,
        discriminator_path=discriminator_path,
        pretrainer_path=pretrainer_path,
        history=history,
        steps=steps,
        seconds=time.time() - start,
        metrics=metrics,
        metrics_path=metrics_path,
    )


def _attention(model, probe_batch, special_ids) -> dict[str, Any]:
    """Per backbone, per layer and head: where attention goes on the probe batch."""
    from electra_keras.training.attention_probe import attention_summary

    inputs = {k: probe_batch[k] for k in ("token_ids", "segment_ids", "padding_mask")}
    sinks = (special_ids["cls_id"], special_ids["sep_id"])
    backbones = {"discriminator": model.discriminator}
    if model.generator is not None:
        backbones["generator"] = model.generator
    try:
        return {
            name: attention_summary(backbone, inputs, sinks)
            for name, backbone in backbones.items()
        }
    except Exception as error:  # a diagnostic: never costs the run its metrics
        return {"error": f"{type(error).__name__}: {error}"}


def _eval_data(eval_dir, config, tokens, special_ids):
    """The fixed eval batches (a dataset), their unigram entropy, a probe batch."""
    import numpy as np
    import tensorflow as tf

    from electra_keras.data import tfrecords
    from electra_keras.training import evaluation

    batches = [
        {k: v.numpy() for k, v in batch.items()}
        for batch in tfrecords.load_pretraining_dataset(
            eval_dir,
            seq_len=config.seq_len,
            batch_size=config.batch_size,
            shuffle=False,
            repeat=False,
            vocab_size=len(tokens),
            lowercase=config.lowercase,
        ).take(config.eval_steps)
    ]
    # Every evaluation reads these same batches from the start, from a dataset
    # of known cardinality: Keras 3.15 `evaluate` runs one extra step on a
    # dataset of unknown cardinality (a TFRecord file) and averages a zero
    # into every `Mean` metric.
    arrays = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
    dataset = tf.data.Dataset.from_tensor_slices(arrays).batch(
        config.batch_size, drop_remainder=True
    )
    unigram = evaluation.unigram_entropy(batches, special_ids.values())
    return dataset, unigram, batches[0]


def _final_metrics(config, history, unigram, guard, steps) -> dict[str, Any]:
    from electra_keras.training import evaluation

    last = {k: v[-1] for k, v in history.items() if v}
    train = {k: v for k, v in last.items() if not k.startswith("val_")}
    evals = {k[4:]: v for k, v in last.items() if k.startswith("val_")}
    if evals:
        evals = {
            key: evals.get(key, float("nan")) for key in evaluation.EVAL_KEYS
        } | evals
    fraction = evals.get("replaced_fraction", train.get("replaced_fraction"))
    finite = fraction is not None and math.isfinite(fraction)
    return {
        "objective": "electra" if config.electra_objective else "mlm",
        "steps": steps,
        "train": train,
        "eval": evals,
        "unigram_entropy": unigram,
        "prior_entropy": evaluation.binary_entropy(fraction) if finite else None,
        "collapse": {
            "fired": guard.fired,
            "events": guard.events,
            "checks": guard.checks,
        },
        "history": history,
    }


def _previous_config(output_dir: str) -> dict[str, Any] | None:
    path = os.path.join(output_dir, CONFIG_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _check_same_vocabulary(new: list[str] | None, saved: list[str]) -> list[str]:
    if new is not None and new != saved:
        raise RunDirectoryError(
            "The output directory was trained with another vocabulary "
            f"({len(saved)} tokens); use a new --output-dir or the same vocabulary."
        )
    return saved


def _check_run_directory(
    output_dir: str,
    previous: dict[str, Any] | None,
    config: PretrainingConfig,
    tokens: list[str] | None,
) -> None:
    """Refuses to mix two different runs in one directory."""
    if previous is None:
        return
    if os.path.exists(
        os.path.join(output_dir, DISCRIMINATOR_FILE)
    ) and not os.path.isdir(os.path.join(output_dir, "backup")):
        raise RunDirectoryError(
            f"{output_dir} already holds a finished run ({DISCRIMINATOR_FILE} exists). "
            "Choose another --output-dir."
        )
    current = config.to_dict()
    if tokens is None:
        # The vocabulary size is only known later; compare everything else.
        current["model"]["vocab_size"] = previous.get("model", {}).get("vocab_size")
    differences = _diff(previous, current)
    differences = [d for d in differences if d not in _RESUMABLE_FIELDS]
    if differences:
        raise RunDirectoryError(
            f"{output_dir} holds an interrupted run with a different config; "
            f"differing keys: {', '.join(differences)}. Resume with the same settings "
            "or choose another --output-dir."
        )


def _diff(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    keys = sorted(set(old) | set(new))
    out = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _diff(a, b, prefix=f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}")
    return out


def _describe(config: PretrainingConfig, model, flops: int) -> str:
    params = sum(math.prod(v.shape) for v in model.trainable_variables)
    disc = sum(math.prod(v.shape) for v in model.discriminator.trainable_variables)
    kind = "ELECTRA" if config.electra_objective else "MLM"
    return (
        f"{kind} ({params / 1e6:.1f}M parameters, discriminator {disc / 1e6:.1f}M; "
        f"{flops / 1e9:,.1f} GFLOP a step)"
    )


def remove_run(output_dir: str) -> None:
    """Deletes a run directory (used by `--overwrite`)."""
    if os.path.isdir(output_dir):
        shutil.rmtree(output_dir)
