"""`finetune`, `evaluate` and `predict`: ELECTRA classifiers from the command line.

    electra-keras finetune --task mr                    # movie reviews, the demo
    electra-keras finetune --task trec                  # TREC question types
    electra-keras finetune --task sst2 --data-dir glue/SST-2 \\
        --pretrained runs/pretrain/discriminator.keras
    electra-keras evaluate --model runs/finetune/classifier.keras --task mrpc \\
        --data-dir glue/MRPC
    electra-keras predict --model runs/finetune/classifier.keras "a gripping film"

A fine-tuning run directory holds `classifier.keras` (with its preprocessor and
vocabulary), `metrics.json` (dev metrics) and `logs/` (TensorBoard). Every
input file is read and checked before training starts.
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

import numpy as np

from electra_keras.finetuning.metrics import compute_metrics, metric_names_for_task
from electra_keras.finetuning.tasks import (
    DOWNLOADED_TASKS,
    Example,
    Task,
    csv_task,
    get_task,
    make_classification_dataset,
    with_swapped_pairs,
)

DEFAULT_PRETRAINED = os.path.join("runs", "pretrain", "discriminator.keras")
DEFAULT_PRESET = "tiny"  # of a random model, when no preset is given
CLASSIFIER_FILE = "classifier.keras"
METRICS_FILE = "metrics.json"
# Resume checkpoints of an unfinished run, and the settings they belong to.
BACKUP_DIR = "backup"
RUN_SETTINGS_FILE = "run.json"
# Movie-review snippets are short (99% fit in 55 tokens): 64 halves the time.
# TREC questions are shorter still (at most 37 words).
DEFAULT_SEQ_LEN = {"mr": 64, "trec": 64}
# google-research/electra `configure_finetuning.py`: 10 epochs for RTE and
# STS-B, 3 for the other tasks.
DEFAULT_EPOCHS = {"rte": 10, "stsb": 10}
# Peak learning rate and layer-wise decay per model size: the paper's Table 7
# (Clark et al., 2020). `configure_finetuning.py` agrees for base (its default,
# 1e-4, 0.8) and large (5e-5, 0.9) but leaves small at the 1e-4 default; the
# paper reports ELECTRA-Small fine-tuned at 3e-4 (see docs/recipe.md).
FINETUNING_DEFAULTS = {
    "small": {"learning_rate": 3e-4, "layerwise_lr_decay": 0.8},
    "base": {"learning_rate": 1e-4, "layerwise_lr_decay": 0.8},
    "large": {"learning_rate": 5e-5, "layerwise_lr_decay": 0.9},
}


def model_size(hidden_dim: int) -> str:
    """The size ("small", "base", "large") of a backbone width (256/768/1024).

    Narrower backbones (the `tiny` preset) count as small.
    """
    if hidden_dim >= 1024:
        return "large"
    if hidden_dim >= 768:
        return "base"
    return "small"


@dataclasses.dataclass
class FinetuningResult:
    """What a fine-tuning run produced."""

    output_dir: str
    model_path: str
    metrics: dict[str, dict[str, Any]]
    history: dict[str, list[float]]
    seconds: float


def _say(message: str, verbose: int) -> None:
    if verbose:
        print(message, flush=True)


def resolve_task(
    task: str,
    data_dir: str | None = None,
    train_file: str | None = None,
    dev_file: str | None = None,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
    label_names: Sequence[str] | None = None,
    regression: bool = False,
    verbose: int = 1,
) -> tuple[Task, str | None]:
    """The task and its data directory, downloading `mr` or `trec` when needed.

    Args:
        task: "mr", "trec", a GLUE task name, or "csv".
        data_dir: GLUE-layout directory (GLUE tasks).
        train_file: csv task training file.
        dev_file: csv task evaluation file.
        text_column: csv task text column.
        text_pair_column: csv task second-text column.
        label_column: csv task label column.
        label_names: csv task classes (default: from the training file).
        regression: csv task with float labels.
        verbose: print what happens.
    """
    if task == "csv":
        if not text_column or not label_column:
            raise ValueError("--task csv needs --text-column and --label-column.")
        return (
            csv_task(
                train_file,
                dev_file,
                text_column,
                label_column,
                text_pair_column=text_pair_column,
                label_names=label_names,
                regression=regression,
            ),
            None,
        )
    if train_file or dev_file:
        raise ValueError("--train-file/--dev-file go with --task csv.")
    if task in DOWNLOADED_TASKS:
        return DOWNLOADED_TASKS[task](verbose=bool(verbose)), None
    spec = get_task(task)
    if not data_dir:
        raise ValueError(
            f"--data-dir is required for task {task}: a directory with "
            f"{', '.join(spec.splits.values())} in GLUE layout."
        )
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"Data directory {data_dir} does not exist.")
    return spec, data_dir


def _resolve_vocabulary(
    pretrained: str | None, vocab: str | None, verbose: int
) -> tuple[str, bool]:
    """(vocab.txt path, lowercase) for a run; see `finetune`."""
    lowercase = True
    if pretrained:
        run_dir = os.path.dirname(os.path.abspath(pretrained))
        config_path = os.path.join(run_dir, "config.json")
        if os.path.isfile(config_path):
            with open(config_path) as f:
                lowercase = bool(json.load(f).get("lowercase", True))
        run_vocab = os.path.join(run_dir, "vocab.txt")
        if os.path.isfile(run_vocab):
            if vocab and os.path.abspath(vocab) != run_vocab:
                _say(
                    f"Note: using the pretraining run's vocabulary {run_vocab} "
                    f"(the model was trained with it), not --vocab {vocab}.",
                    verbose,
                )
            return run_vocab, lowercase
    if vocab:
        if not os.path.isfile(vocab):
            raise FileNotFoundError(f"Vocabulary file {vocab} does not exist.")
        return vocab, lowercase
    from electra_keras.data.vocab import download_bert_vocabulary

    _say("Vocabulary: BERT uncased (no --vocab and none next to the model).", verbose)
    return download_bert_vocabulary(), True


def _build_model(
    task: Task,
    pretrained: str | None,
    preset: str,
    vocab: str | None,
    seq_len: int,
    dropout: float,
    verbose: int,
    random_init: bool = False,
):
    from electra_keras.config import get_preset
    from electra_keras.models.classifier import ElectraClassifier
    from electra_keras.models.classifier_preprocessor import (
        ElectraClassifierPreprocessor,
    )

    explicit = pretrained is not None
    asked_random = random_init or (pretrained is None and preset is not None)
    pretrained = _default_pretrained(pretrained, preset)
    preset = preset or DEFAULT_PRESET
    if pretrained is not None and not os.path.isfile(pretrained):
        raise FileNotFoundError(
            f"Pretrained discriminator {pretrained} does not exist."
        )
    vocab_path, lowercase = _resolve_vocabulary(pretrained, vocab, verbose)
    preprocessor = ElectraClassifierPreprocessor(
        vocab_path, lowercase=lowercase, seq_len=seq_len
    )
    label_names = None if task.regression else list(task.label_names)
    if pretrained is not None:
        how = "" if explicit else " (the default pretraining output)"
        if random_init:
            how = " (its architecture only: RANDOMLY INITIALIZED weights)"
        _say(f"Backbone: {pretrained}{how}; vocabulary {vocab_path}", verbose)
        return ElectraClassifier.from_pretrained(
            pretrained,
            task.num_labels,
            dropout=dropout,
            label_names=label_names,
            preprocessor=preprocessor,
            label_scale=task.label_scale,
            reinitialize=random_init,
        )
    config = get_preset(preset).model
    config = dataclasses.replace(
        config,
        vocab_size=preprocessor.tokenizer.vocab_size,
        max_sequence_length=max(config.max_sequence_length, seq_len),
    )
    if asked_random:
        _say(
            f"Backbone: a RANDOMLY INITIALIZED {preset} model (asked for: "
            "--preset or --random-init without --pretrained).",
            verbose,
        )
    else:
        _say(
            f"NOTICE: no pretrained discriminator (--pretrained, or "
            f"{DEFAULT_PRETRAINED} from `electra-keras pretrain`): starting from "
            f"a RANDOMLY INITIALIZED {preset} model. Expect much lower scores.",
            verbose,
        )
    return ElectraClassifier.from_model_config(
        config,
        task.num_labels,
        dropout=dropout,
        label_names=label_names,
        preprocessor=preprocessor,
        label_scale=task.label_scale,
    )


def _predict_outputs(model, examples: Sequence[Example], batch_size: int) -> np.ndarray:
    unlabelled = [Example(e.text, e.text_pair) for e in examples]
    data = make_classification_dataset(unlabelled, model.preprocessor, batch_size)
    return np.asarray(model.predict(data, verbose=0), dtype="float32")


def evaluate_examples(
    model,
    examples: Sequence[Example],
    metric_names: Sequence[str],
    batch_size: int = 64,
) -> dict[str, Any]:
    """The metrics of `model` on labelled examples (+ size and majority rate).

    Args:
        model: an `ElectraClassifier` with a preprocessor.
        examples: labelled examples.
        metric_names: metrics to compute (see `metrics.METRIC_FUNCTIONS`).
        batch_size: examples per forward pass.
    """
    outputs = _predict_outputs(model, examples, batch_size)
    labels = np.array([e.label for e in examples])
    if model.is_regression:
        # Back from training units (STS-B: 0-1) to the labels' (0-5).
        predictions = outputs[:, 0] * np.float32(model.label_scale)
    else:
        predictions = outputs.argmax(axis=-1)
    notes: list[str] = []
    result: dict[str, Any] = compute_metrics(metric_names, labels, predictions, notes)
    result["num_examples"] = len(examples)
    if not model.is_regression:
        counts = np.bincount(labels.astype(int), minlength=model.num_labels)
        result["majority_class"] = model.label_names[int(counts.argmax())]
        result["majority_rate"] = float(counts.max() / len(labels))
    if notes:
        result["notes"] = notes
    return result


def _format_metrics(split: str, values: dict[str, Any]) -> str:
    """`dev: accuracy 0.9 on 16 examples (majority class '1': 0.5)`."""
    parts = [
        f"{k} {v:.4f}"
        for k, v in values.items()
        if isinstance(v, float) and k != "majority_rate"
    ]
    extra = ""
    if "majority_rate" in values:
        extra = (
            f" (majority class {values['majority_class']!r}: "
            f"{values['majority_rate']:.4f})"
        )
    return f"{split}: {', '.join(parts)} on {values['num_examples']:,} examples{extra}"


def summarize_finetuning(
    task: str,
    metrics: dict[str, dict[str, Any]],
    model_path: str,
    metrics_path: str,
    seconds: float,
) -> str:
    """The closing summary: dev metrics against the majority class, the model.

    Args:
        task: the task's name.
        metrics: split -> metrics, as `evaluate_examples` returns them.
        model_path: the saved `classifier.keras`.
        metrics_path: the written `metrics.json`.
        seconds: the run's duration.
    """
    lines = [f"Done: fine-tuned {task} in {seconds:.0f}s."]
    lines += [f"  {_format_metrics(split, v)}" for split, v in metrics.items()]
    if not metrics:
        lines.append("  No dev split: no metrics.")
    lines.append(f"  Model: {model_path} (metrics: {metrics_path})")
    name = "classifier" if task == "csv" else task
    lines.append(f"  Next: electra-keras export --model {model_path} --name {name}")
    return "\n".join(lines)


def finetune(
    task: str = "mr",
    output_dir: str = os.path.join("runs", "finetune"),
    data_dir: str | None = None,
    train_file: str | None = None,
    dev_file: str | None = None,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
    regression: bool = False,
    pretrained: str | None = None,
    preset: str | None = None,
    vocab: str | None = None,
    epochs: int | None = None,
    batch_size: int = 32,
    learning_rate: float | None = None,
    seq_len: int | None = None,
    layerwise_lr_decay: float | None = None,
    warmup_fraction: float = 0.1,
    weight_decay: float = 0.01,
    dropout: float = 0.1,
    seed: int = 0,
    verbose: int | str = "auto",
    double_unordered: bool = True,
    random_init: bool = False,
    checkpoint_every: int = 0,
) -> FinetuningResult:
    """Fine-tunes a classifier and writes `classifier.keras` and `metrics.json`.

    The backbone is `pretrained`; when not given, a random `preset` model if
    `preset` is given, else `runs/pretrain/discriminator.keras` if it
    exists, else a random `tiny` model (with a printed notice).
    `random_init` keeps that backbone's architecture and vocabulary and
    drops its weights: the baseline to compare a pretraining run with. The
    vocabulary is the `vocab.txt` next to the pretrained model, else `vocab`,
    else BERT uncased.

    Args:
        task: "mr" (default) or "trec" (both downloaded), a GLUE task, or "csv".
        output_dir: run directory.
        data_dir: GLUE-layout directory of the task.
        train_file: csv task training file.
        dev_file: csv task evaluation file.
        text_column: csv task text column.
        text_pair_column: csv task second-text column.
        label_column: csv task label column.
        regression: csv task with float labels.
        pretrained: a `discriminator.keras` (an `ElectraBackbone`).
        preset: size preset of a randomly initialized backbone; given
            without `pretrained`, the run starts from random init even where
            `runs/pretrain/discriminator.keras` exists. Default `tiny`.
        vocab: vocab.txt when the pretrained run directory has none.
        epochs: passes over the training set (default: 10 for rte and stsb,
            else 3, as the original).
        batch_size: examples per step.
        learning_rate: peak learning rate (of the head; lower layers decay).
            Default: by the backbone's size (`FINETUNING_DEFAULTS`: small
            3e-4, base 1e-4, large 5e-5).
        seq_len: tokens per example, [CLS] and [SEP]s included (default: 64
            for mr, else 128).
        layerwise_lr_decay: per-layer learning-rate decay (1.0: off).
            Default: 0.8 (small, base) or 0.9 (large).
        warmup_fraction: fraction of steps of linear warm-up.
        weight_decay: AdamW decoupled weight decay.
        dropout: dropout on the [CLS] representation.
        seed: seed of initialization, dropout and shuffling.
        verbose: 0 silent, 1 progress bar, 2 one line per epoch, "auto"
            (the default) the bar on a terminal, else one line per epoch.
        double_unordered: for tasks whose pairs are unordered (MRPC, STS-B),
            also train on each pair swapped, as the original does.
        random_init: start from random weights: a fresh backbone of the
            architecture of `pretrained` (or of the default pretraining
            output), else a random `preset` model.
        checkpoint_every: steps between resume checkpoints in
            `<output_dir>/backup` (0: one per epoch). Run again with the same
            settings, an interrupted run continues from its newest checkpoint
            and ends with the weights an uninterrupted run would have.

    Raises:
        ValueError: bad settings, or `output_dir` holds an unfinished run
            with other settings (the message names them).
    """
    import keras

    from electra_keras.finetuning.optimizer import create_finetuning_optimizer
    from electra_keras.training.progress import progress_settings

    keras_verbose, progress = progress_settings(verbose)
    if epochs is None:
        epochs = DEFAULT_EPOCHS.get(task, 3)
    if epochs <= 0 or batch_size <= 0:
        raise ValueError("`epochs` and `batch_size` must be positive.")
    if checkpoint_every < 0:
        raise ValueError(f"`checkpoint_every` must be >= 0, got {checkpoint_every}.")
    started = time.time()
    spec, data_dir = resolve_task(
        task,
        data_dir,
        train_file,
        dev_file,
        text_column,
        text_pair_column,
        label_column,
        regression=regression,
        verbose=verbose,
    )
    if "train" not in spec.splits:
        raise ValueError(f"Task {spec.name} has no training file.")
    # Read and check everything before building or training anything.
    train = spec.load_examples("train", data_dir)
    double_unordered = double_unordered and spec.double_unordered
    if double_unordered:
        train = with_swapped_pairs(train)
    dev = {split: spec.load_examples(split, data_dir) for split in spec.dev_splits}
    sizes = ", ".join(f"{s} {len(e):,}" for s, e in [("train", train), *dev.items()])
    _say(f"Task {spec.name}: {sizes} examples; labels {spec.label_names}", verbose)

    if seq_len is None:
        seq_len = DEFAULT_SEQ_LEN.get(spec.name, 128)
    keras.utils.set_random_seed(seed)
    model = _build_model(
        spec, pretrained, preset, vocab, seq_len, dropout, verbose, random_init
    )
    if seq_len > model.backbone.max_sequence_length:
        raise ValueError(
            f"--seq-len {seq_len} is larger than the backbone's position table "
            f"({model.backbone.max_sequence_length})."
        )
    defaults = FINETUNING_DEFAULTS[model_size(model.backbone.hidden_dim)]
    if learning_rate is None:
        learning_rate = defaults["learning_rate"]
    if layerwise_lr_decay is None:
        layerwise_lr_decay = defaults["layerwise_lr_decay"]
    steps_per_epoch = math.ceil(len(train) / batch_size)
    train_steps = steps_per_epoch * epochs
    backbone_file = _default_pretrained(pretrained, preset)
    # What the run resolved to (defaults filled in), and what it reads.
    settings = _run_settings(
        task=spec.name,
        data_dir=data_dir,
        train_file=train_file,
        dev_file=dev_file,
        text_column=text_column,
        text_pair_column=text_pair_column,
        label_column=label_column,
        regression=regression,
        pretrained=backbone_file,
        preset=None if backbone_file else (preset or DEFAULT_PRESET),
        vocabulary_sha256=_fingerprint(model.preprocessor.tokenizer.vocabulary),
        train_examples=len(train),
        train_sha256=_fingerprint([(e.text, e.text_pair, e.label) for e in train]),
        epochs=epochs,
        batch_size=batch_size,
        train_steps=train_steps,
        learning_rate=learning_rate,
        seq_len=seq_len,
        layerwise_lr_decay=layerwise_lr_decay,
        warmup_fraction=warmup_fraction,
        weight_decay=weight_decay,
        dropout=dropout,
        seed=seed,
        double_unordered=double_unordered,
        random_init=random_init,
    )
    backup_dir = os.path.join(output_dir, BACKUP_DIR)
    resume_step = _resume_step(backup_dir, settings)
    model.compile(
        optimizer=create_finetuning_optimizer(
            model,
            learning_rate=learning_rate,
            train_steps=train_steps,
            warmup_fraction=warmup_fraction,
            layerwise_lr_decay=layerwise_lr_decay,
            weight_decay=weight_decay,
        )
    )

    def training_data(step: int):
        # One order for the whole run, epoch after epoch, fixed by the seed:
        # a resumed run skips the batches its first `step` steps consumed.
        return make_classification_dataset(
            train,
            model.preprocessor,
            batch_size,
            shuffle=True,
            seed=seed,
            repeat=True,
            label_scale=model.label_scale,
            skip_batches=step,
        )

    validation = None
    if dev:
        first_dev = next(iter(dev.values()))
        validation = make_classification_dataset(
            first_dev, model.preprocessor, 64, label_scale=model.label_scale
        )
    os.makedirs(output_dir, exist_ok=True)
    from electra_keras.runtime_info import runtime_line

    _say(
        runtime_line(
            precision=keras.mixed_precision.global_policy().name,
            xla=bool(model.jit_compile),
        ),
        verbose,
    )
    _say(
        f"Fine-tuning {model.count_params():,} parameters: {epochs} epochs x "
        f"{steps_per_epoch} steps, batch {batch_size}, seq_len {seq_len}, lr "
        f"{learning_rate} (layer-wise decay {layerwise_lr_decay}).",
        verbose,
    )
    os.makedirs(backup_dir, exist_ok=True)
    from electra_keras.data.cache import atomic_write_text
    from electra_keras.training.resume_checkpoint import (
        ResumeCheckpoint,
        fit_segments,
        resume_batches,
    )

    atomic_write_text(
        os.path.join(backup_dir, RUN_SETTINGS_FILE),
        json.dumps(settings, indent=2, sort_keys=True) + "\n",
    )
    callbacks = [
        ResumeCheckpoint(
            backup_dir,
            every=checkpoint_every or steps_per_epoch,
            restore_step=resume_step,
            final_step=train_steps,
        ),
        keras.callbacks.TensorBoard(os.path.join(output_dir, "logs")),
        *progress,
    ]
    if resume_step:
        _say(
            f"Resuming from step {resume_step} of {train_steps} (found {backup_dir}).",
            verbose,
        )
    history: dict[str, list[float]] = {}
    resume_batch = resume_batches(backup_dir, resume_step)
    for first_epoch, skip, steps in fit_segments(resume_batch, steps_per_epoch, epochs):
        segment = model.fit(
            training_data(skip),
            validation_data=validation,
            initial_epoch=first_epoch,
            epochs=first_epoch + 1 if steps < steps_per_epoch else epochs,
            steps_per_epoch=steps,
            shuffle=False,  # `training_data` is shuffled, again each epoch.
            verbose=keras_verbose,
            callbacks=callbacks,
        )
        for key, values in segment.history.items():
            history.setdefault(key, []).extend(float(v) for v in values)
    model_path = os.path.join(output_dir, CLASSIFIER_FILE)
    model.save(model_path)
    shutil.rmtree(backup_dir, ignore_errors=True)  # the model is complete
    results = {
        split: evaluate_examples(model, examples, spec.metric_names)
        for split, examples in dev.items()
    }
    seconds = time.time() - started
    summary = {
        "task": spec.name,
        "metrics": results,
        "seconds": round(seconds, 1),
        "train_examples": len(train),
        "double_unordered": double_unordered,
        "epochs": epochs,
        "batch_size": batch_size,
        "seq_len": seq_len,
        "learning_rate": learning_rate,
        "layerwise_lr_decay": layerwise_lr_decay,
        # The backbone it started from (None: a random preset model).
        "pretrained": settings["pretrained"],
        "random_init": random_init or backbone_file is None,
        "preset": settings["preset"],
        "seed": seed,
    }
    metrics_path = os.path.join(output_dir, METRICS_FILE)
    with open(metrics_path, "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    _say(
        summarize_finetuning(spec.name, results, model_path, metrics_path, seconds),
        verbose,
    )
    return FinetuningResult(
        output_dir=output_dir,
        model_path=model_path,
        metrics=results,
        history=history,
        seconds=seconds,
    )


def _run_settings(**settings: Any) -> dict[str, Any]:
    """What makes two fine-tuning runs the same run (paths made absolute)."""
    for key in ("data_dir", "train_file", "dev_file", "pretrained"):
        if settings[key]:
            settings[key] = os.path.abspath(settings[key])
    return settings


def _default_pretrained(pretrained: str | None, preset: str | None) -> str | None:
    """The backbone file `_build_model` starts from (None: a random preset);
    with `random_init` only its architecture is used.

    `DEFAULT_PRETRAINED` when it exists and neither `pretrained` nor a
    `preset` was given: a `preset` without `pretrained` asks for a random
    model of that size.
    """
    if pretrained is None and preset is None and os.path.isfile(DEFAULT_PRETRAINED):
        return DEFAULT_PRETRAINED
    return pretrained


def _fingerprint(values: Sequence[Any]) -> str:
    """sha256 of a list of JSON-able values, in order."""
    import hashlib

    digest = hashlib.sha256()
    for value in values:
        digest.update(json.dumps(value, ensure_ascii=False, default=str).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _resume_step(backup_dir: str, settings: dict[str, Any]) -> int:
    """The step an unfinished run in `backup_dir` resumes from (0: none).

    Raises:
        ValueError: the unfinished run had other settings.
    """
    from electra_keras.training.resume_checkpoint import (
        latest_resume_step,
        list_resume_checkpoints,
    )

    settings_path = os.path.join(backup_dir, RUN_SETTINGS_FILE)
    if not os.path.isfile(settings_path):
        if list_resume_checkpoints(backup_dir):
            raise ValueError(
                f"{backup_dir} holds resume checkpoints but no {RUN_SETTINGS_FILE}: "
                "they are not a fine-tuning run's (a pretraining run directory?). "
                "Use another --output-dir; nothing was deleted."
            )
        return 0
    if not latest_resume_step(backup_dir):
        # Stopped before its first checkpoint: nothing to resume, nothing lost.
        os.remove(settings_path)
        return 0
    with open(settings_path) as f:
        previous = json.load(f)
    changed = sorted(
        key
        for key in set(previous) | set(settings)
        if previous.get(key) != settings.get(key)
    )
    if changed:
        details = ", ".join(
            f"{key}: {previous.get(key)!r} then, {settings.get(key)!r} now"
            for key in changed
        )
        raise ValueError(
            f"{os.path.dirname(backup_dir)} holds an unfinished fine-tuning run "
            f"with other settings ({details}). Run with the same settings to "
            f"resume it, use another --output-dir, or delete {backup_dir} to "
            "start over."
        )
    step = latest_resume_step(backup_dir)
    if step >= settings["train_steps"]:
        raise ValueError(
            f"{backup_dir} has a checkpoint of step {step}, past the run's "
            f"{settings['train_steps']} steps; delete it to start over."
        )
    return step


def load_classifier(path: str):
    """Loads a saved `ElectraClassifier` (with its preprocessor)."""
    import keras

    from electra_keras.models.classifier import ElectraClassifier

    if not os.path.isfile(path):
        raise FileNotFoundError(f"Model file {path} does not exist.")
    model = keras.saving.load_model(path, compile=False)
    if not isinstance(model, ElectraClassifier):
        raise ValueError(f"{path} holds a {type(model).__name__}, not a classifier.")
    if model.preprocessor is None:
        raise ValueError(f"{path} has no preprocessor; it cannot read raw text.")
    return model


def evaluate(
    model_path: str,
    task: str,
    data_dir: str | None = None,
    dev_file: str | None = None,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
    splits: Sequence[str] | None = None,
    batch_size: int = 64,
    output: str | None = None,
    verbose: int = 1,
) -> dict[str, dict[str, Any]]:
    """The task's metrics for a saved classifier, optionally written as JSON.

    Args:
        model_path: a `classifier.keras`.
        task: "mr", "trec", a GLUE task or "csv".
        data_dir: GLUE-layout directory.
        dev_file: csv task evaluation file.
        text_column: csv task text column.
        text_pair_column: csv task second-text column.
        label_column: csv task label column.
        splits: splits to evaluate (default: the task's dev splits).
        batch_size: examples per forward pass.
        output: JSON file to write the metrics to.
        verbose: print the metrics.
    """
    model = load_classifier(model_path)
    spec, data_dir = resolve_task(
        task,
        data_dir,
        None,
        dev_file,
        text_column,
        text_pair_column,
        label_column,
        label_names=model.label_names,
        regression=model.is_regression,
        verbose=verbose,
    )
    if spec.num_labels != model.num_labels:
        raise ValueError(
            f"Task {spec.name} has {spec.num_labels} label(s) but the model "
            f"predicts {model.num_labels} ({model.label_names})."
        )
    if spec.label_names and tuple(model.label_names) != tuple(spec.label_names):
        raise ValueError(
            f"The model's labels {model.label_names} are not the task's "
            f"{list(spec.label_names)}."
        )
    results = {}
    for split in splits or spec.dev_splits:
        examples = spec.load_examples(split, data_dir)
        metric_names = metric_names_for_task(spec.name, spec.regression)
        results[split] = evaluate_examples(model, examples, metric_names, batch_size)
        _say(_format_metrics(split, results[split]), verbose)
    if output:
        directory = os.path.dirname(os.path.abspath(output))
        os.makedirs(directory, exist_ok=True)
        with open(output, "w") as f:
            json.dump(
                {"task": spec.name, "model": model_path, "metrics": results},
                f,
                indent=2,
            )
            f.write("\n")
        _say(f"Wrote {output}", verbose)
    return results


def predict(
    model_path: str,
    texts: Sequence[str],
    text_pairs: Sequence[str] | None = None,
    batch_size: int = 32,
) -> list[dict[str, Any]]:
    """Predictions of a saved classifier for raw texts.

    Args:
        model_path: a `classifier.keras`.
        texts: the texts.
        text_pairs: the second texts of a pair task, as many as `texts`.
        batch_size: examples per forward pass.

    Returns:
        Per text: `{"text", "label", "scores": {label: probability}}`, or
        `{"text", "score"}` for regression.
    """
    model = load_classifier(model_path)
    if text_pairs is not None and len(text_pairs) != len(texts):
        raise ValueError(
            f"Got {len(texts)} texts but {len(text_pairs)} --text-pair values."
        )
    outputs = model.predict_texts(list(texts), text_pairs, batch_size=batch_size)
    results = []
    for i, text in enumerate(texts):
        item: dict[str, Any] = {"text": text}
        if text_pairs is not None:
            item["text_pair"] = text_pairs[i]
        if model.is_regression:
            item["score"] = float(outputs[i])
        else:
            scores = {
                n: float(p) for n, p in zip(model.label_names, outputs[i], strict=True)
            }
            item["label"] = max(scores, key=scores.get)
            item["scores"] = scores
        results.append(item)
    return results
