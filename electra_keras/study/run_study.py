"""`run_study`: does pretraining help downstream, at equal pretraining compute?

1. Pretrain ELECTRA for `budget` x the preset's steps on the corpus.
2. Pretrain plain MLM (BERT) on the same corpus and vocabulary for the steps
   that cost the same training FLOPs (`pretraining.flops`).
3. Fine-tune the ELECTRA discriminator, the MLM network and the same
   architecture from random init on each task, with several seeds, with the
   same fine-tuning settings.
4. Report mean and standard deviation per task and model: a table on stdout,
   `study.json` and `study.png` in the run directory.

Every finished part is reused when the study is started again with the same
settings (more tasks or seeds are allowed; anything else is refused).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence
from typing import Any

from electra_keras.config import ConfigError, PretrainingConfig, get_preset

MODELS = ("electra", "mlm", "random")
STUDY_FILE = "study.json"
CHART_FILE = "study.png"
SETTINGS_FILE = "study_settings.json"
# Settings a study directory may be resumed with changed: they add runs.
_GROWABLE_SETTINGS = ("tasks", "seeds")


@dataclasses.dataclass
class StudyResult:
    """What a study produced."""

    output_dir: str
    summary: dict[str, Any]
    table: str
    json_path: str
    chart_path: str


def study_configs(
    preset: str = "tiny", budget: float = 1.0, **changes: Any
) -> tuple[PretrainingConfig, PretrainingConfig]:
    """The ELECTRA and MLM pretraining configs of a study at equal FLOPs.

    Args:
        preset: Size preset of both models.
        budget: Multiplies the preset's `train_steps` (ELECTRA's steps).
        **changes: Config fields to change in both (`PretrainingConfig.replace`).
    """
    from electra_keras.pretraining.flops import equal_flops_steps

    if budget <= 0:
        raise ConfigError(f"`budget` must be positive, got {budget}.")
    base = get_preset(preset).replace(**changes)
    electra = _with_steps(base, max(1, round(base.train_steps * budget)))
    mlm = base.replace(electra_objective=False)
    mlm = _with_steps(mlm, equal_flops_steps(electra, mlm, electra.train_steps))
    return electra, mlm


def _with_steps(config: PretrainingConfig, steps: int) -> PretrainingConfig:
    """`steps` train steps, warm-up and epoch length scaled to match."""
    warmup = round(config.warmup_steps * steps / config.train_steps)
    return config.replace(
        train_steps=steps,
        warmup_steps=min(warmup, steps - 1) if steps > 1 else 0,
        steps_per_epoch=min(config.steps_per_epoch, steps),
    )


def run_study(
    output_dir: str = os.path.join("runs", "study"),
    budget: float = 1.0,
    tasks: Sequence[str | dict[str, Any]] = ("mr", "trec"),
    seeds: int = 3,
    preset: str = "tiny",
    corpus: Sequence[str] | None = None,
    vocab: str | None = None,
    config_changes: dict[str, Any] | None = None,
    finetune_options: dict[str, Any] | None = None,
    verbose: int = 2,
) -> StudyResult:
    """Runs the study (see the module docstring); resumes a partial one.

    Args:
        output_dir: The study directory: `electra/`, `mlm/` (pretraining runs),
            `finetune/<task>/<model>-seed<k>/`, `study.json`, `study.png`.
        budget: Pretraining steps as a multiple of the preset's `train_steps`.
        tasks: Fine-tuning task names ("mr", "trec", a GLUE task with
            `data_dir` in `finetune_options`) or dicts of `finetune` keyword
            arguments with a "name" key (e.g. a csv task).
        seeds: Fine-tuning seeds per task and model.
        preset: Size preset of the pretrained and the random-init models.
        corpus: Pretraining text files; None uses the WikiText-2 demo corpus.
        vocab: A vocab.txt; None: what `run_pretraining` picks by default.
        config_changes: Pretraining config fields changed in both runs.
        finetune_options: Keyword arguments of `finetune` for every run
            (epochs, batch_size, learning_rate, ...).
        verbose: Keras verbosity of the runs (2: one line per epoch).
    """
    from electra_keras.pretraining.flops import pretraining_flops

    if seeds < 1:
        raise ConfigError(f"`seeds` must be at least 1, got {seeds}.")
    if not tasks:
        raise ConfigError("The study needs at least one fine-tuning task.")
    started = time.time()
    output_dir = os.path.abspath(output_dir)
    changes = dict(config_changes or {})
    options = dict(finetune_options or {})
    # Checked before hours of pretraining: settings, tasks and their data.
    for key in ("epochs", "batch_size"):
        if options.get(key) is not None and options[key] <= 0:
            raise ConfigError(
                f"Fine-tuning `{key}` must be positive, got {options[key]}."
            )
    electra, _ = study_configs(preset, budget, **changes)
    _check_tasks(tasks, options)
    _check_settings(
        output_dir,
        {
            "budget": budget,
            "tasks": [t if isinstance(t, str) else dict(t) for t in tasks],
            "seeds": seeds,
            "preset": preset,
            "corpus": [os.path.abspath(c) for c in corpus] if corpus else None,
            "vocab": os.path.abspath(vocab) if vocab else None,
            "config_changes": changes,
            "finetune_options": options,
        },
    )

    electra_run = _pretrain(
        electra, os.path.join(output_dir, "electra"), corpus, vocab, verbose
    )
    # FLOPs depend on the vocabulary: count them with the one the ELECTRA run
    # resolved (`--vocab`, else the corpus's default), which MLM then uses.
    run_vocab = os.path.join(electra_run["output_dir"], "vocab.txt")
    from electra_keras.data.vocab import load_vocabulary

    changes["model.vocab_size"] = len(load_vocabulary(run_vocab))
    electra, mlm = study_configs(preset, budget, **changes)
    flops = {"electra": pretraining_flops(electra), "mlm": pretraining_flops(mlm)}
    for name, config in (("electra", electra), ("mlm", mlm)):
        per_step = flops[name]["train_per_step"]
        print(
            f"Study: {name.upper()} pretraining, {config.train_steps} steps x "
            f"{per_step / 1e9:.2f} GFLOP = {per_step * config.train_steps / 1e12:.1f} "
            f"TFLOP (training, matrix products; vocabulary "
            f"{config.model.vocab_size:,})",
            flush=True,
        )
    mlm_run = _pretrain(
        mlm, os.path.join(output_dir, "mlm"), corpus, run_vocab, verbose
    )
    pretrained = {"electra": electra_run, "mlm": mlm_run}

    scores: dict[str, dict[str, list[float]]] = {}
    metric_names: dict[str, str] = {}
    for task in tasks:
        task_kwargs = {"task": task} if isinstance(task, str) else dict(task)
        task_name = task_kwargs.pop("name", task_kwargs.get("task"))
        scores[task_name] = {}
        for model in MODELS:
            values = []
            for seed in range(seeds):
                run_dir = os.path.join(
                    output_dir, "finetune", task_name, f"{model}-seed{seed}"
                )
                metric, value = _finetune(
                    run_dir,
                    model,
                    pretrained,
                    run_vocab,
                    preset,
                    seed,
                    {**options, **task_kwargs},
                    verbose,
                )
                metric_names[task_name] = metric
                values.append(value)
                print(
                    f"Study: {task_name} {model} seed {seed}: {metric} {value:.4f}",
                    flush=True,
                )
            scores[task_name][model] = values

    from electra_keras.study import report

    summary = {
        "preset": preset,
        "budget": budget,
        "seeds": seeds,
        "pretraining": {
            name: {
                "steps": config.train_steps,
                "train_flops_per_step": flops[name]["train_per_step"],
                "train_flops": flops[name]["train_per_step"] * config.train_steps,
                "flops_by_part": flops[name],
                "eval": pretrained[name]["eval"],
                "unigram_entropy": pretrained[name]["unigram_entropy"],
                "seconds": pretrained[name]["seconds"],
                "run_dir": pretrained[name]["output_dir"],
            }
            for name, config in (("electra", electra), ("mlm", mlm))
        },
        "finetuning": {
            task: {
                "metric": metric_names[task],
                **{
                    model: report.describe(values) for model, values in by_model.items()
                },
            }
            for task, by_model in scores.items()
        },
        "seconds": time.time() - started,
    }
    summary["ordering"] = report.ordering(summary["finetuning"])
    table = report.format_table(summary)
    print(table, flush=True)
    json_path = os.path.join(output_dir, STUDY_FILE)
    with open(json_path, "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
        f.write("\n")
    chart_path = report.bar_chart(summary, os.path.join(output_dir, CHART_FILE))
    print(f"Wrote {json_path} and {chart_path}.", flush=True)
    return StudyResult(output_dir, summary, table, json_path, chart_path)


def _check_tasks(
    tasks: Sequence[str | dict[str, Any]], options: dict[str, Any]
) -> None:
    """Resolves every task and reads its examples (downloading `mr` and
    `trec`): an unknown task or missing data fails before any pretraining."""
    import inspect

    from electra_keras.finetuning.run_finetuning import resolve_task

    accepted = set(inspect.signature(resolve_task).parameters)
    for task in tasks:
        kwargs = {**options, **({"task": task} if isinstance(task, str) else task)}
        kwargs.pop("name", None)
        if "task" not in kwargs:
            raise ConfigError(f"A study task needs a 'task' key: {task!r}.")
        spec, data_dir = resolve_task(
            **{k: v for k, v in kwargs.items() if k in accepted}, verbose=0
        )
        for split in ("train", *spec.dev_splits):
            spec.load_examples(split, data_dir)


def _check_settings(output_dir: str, settings: dict[str, Any]) -> None:
    """Writes the study's settings into `output_dir`, or checks them against
    those of the study it already holds: its finished runs are reused, so
    only more tasks or seeds may differ."""
    path = os.path.join(output_dir, SETTINGS_FILE)
    settings = json.loads(json.dumps(settings))  # tuples -> lists, as saved
    if os.path.isfile(path):
        with open(path) as f:
            previous = json.load(f)
        changed = sorted(
            key
            for key in set(previous) | set(settings)
            if key not in _GROWABLE_SETTINGS and previous.get(key) != settings.get(key)
        )
        details = [
            f"{key}: {previous.get(key)!r} then, {settings.get(key)!r} now"
            for key in changed
        ]
        # A task may be added, not changed under the same name (its finished
        # runs sit in finetune/<name>/).
        before = {_task_name(t): t for t in previous.get("tasks", [])}
        for task in settings.get("tasks", []):
            name = _task_name(task)
            if name in before and before[name] != task:
                details.append(f"task {name}: {before[name]!r} then, {task!r} now")
        if details:
            details = "; ".join(details)
            raise ConfigError(
                f"{output_dir} holds a study with other settings ({details}), "
                "whose finished runs would be reused. Use another --output-dir, "
                "or delete it to start over."
            )
    elif os.path.isdir(os.path.join(output_dir, "electra")):
        raise ConfigError(
            f"{output_dir} holds runs but no {SETTINGS_FILE}: they cannot be "
            "checked against this study's settings. Use another --output-dir."
        )
    from electra_keras.data.cache import atomic_write_text

    os.makedirs(output_dir, exist_ok=True)
    atomic_write_text(path, json.dumps(settings, indent=2, sort_keys=True) + "\n")


def _task_name(task: str | dict[str, Any]) -> str:
    """A study task's name: its directory under `finetune/`."""
    return task if isinstance(task, str) else task.get("name", task.get("task"))


def _pretrain(config, run_dir, corpus, vocab, verbose) -> dict[str, Any]:
    """Runs (or reuses a finished) pretraining; returns its metrics.json content."""
    from electra_keras.training.evaluation import METRICS_FILE
    from electra_keras.training.run_pretraining import (
        DISCRIMINATOR_FILE,
        run_pretraining,
    )

    metrics_path = os.path.join(run_dir, METRICS_FILE)
    if not (
        os.path.isfile(metrics_path)
        and os.path.isfile(os.path.join(run_dir, DISCRIMINATOR_FILE))
    ):
        run_pretraining(config, run_dir, corpus=corpus, vocab=vocab, verbose=verbose)
    with open(metrics_path) as f:
        metrics = json.load(f)
    return {
        "output_dir": run_dir,
        "discriminator": os.path.join(run_dir, DISCRIMINATOR_FILE),
        "eval": metrics.get("eval", {}),
        "unigram_entropy": metrics.get("unigram_entropy"),
        "seconds": metrics.get("seconds"),
    }


def _finetune(run_dir, model, pretrained, vocab, preset, seed, kwargs, verbose):
    """One fine-tuning run (or its saved result): (metric name, dev value)."""
    from electra_keras.finetuning.run_finetuning import METRICS_FILE, finetune

    metrics_path = os.path.join(run_dir, METRICS_FILE)
    if not os.path.isfile(metrics_path):
        finetune(
            output_dir=run_dir,
            pretrained=pretrained[model]["discriminator"]
            if model != "random"
            else None,
            random_init=model == "random",
            preset=preset,
            vocab=vocab,
            seed=seed,
            verbose=verbose,
            **kwargs,
        )
    with open(metrics_path) as f:
        metrics = json.load(f)["metrics"]
    split = next(iter(metrics))
    name = next(k for k, v in metrics[split].items() if isinstance(v, (int, float)))
    return name, float(metrics[split][name])
