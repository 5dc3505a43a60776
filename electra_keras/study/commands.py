"""`electra-keras study`: the equal-compute pretraining study."""

from __future__ import annotations

import argparse


def add_parsers(subparsers) -> None:
    p = subparsers.add_parser(
        "study",
        help="ELECTRA vs MLM vs random init at equal pretraining FLOPs, fine-tuned.",
        description="Pretrains ELECTRA and plain MLM on the same corpus at equal "
        "training FLOPs, fine-tunes both and a random-init model on each task with "
        "several seeds, and writes a table, study.json and study.png.",
        epilog="Examples:\n"
        "  electra-keras study\n"
        "  electra-keras study --budget 4 --seeds 5 --output-dir runs/study-x4",
    )
    p.add_argument(
        "--budget",
        type=float,
        default=1.0,
        help="ELECTRA pretraining steps as a multiple of the preset's train_steps.",
    )
    p.add_argument("--tasks", nargs="+", default=["mr", "trec"], help="Tasks.")
    p.add_argument("--seeds", type=int, default=3, help="Fine-tuning seeds.")
    p.add_argument("--preset", default="tiny", help="Size preset.")
    p.add_argument(
        "--corpus", nargs="+", help="Pretraining text (default: WikiText-2)."
    )
    p.add_argument("--vocab", help="vocab.txt (default: the preset's).")
    p.add_argument("--data-dir", help="GLUE-layout directory, for GLUE tasks.")
    p.add_argument("--finetune-epochs", type=int, help="Fine-tuning epochs.")
    p.add_argument("--output-dir", default="runs/study", help="Study directory.")
    p.set_defaults(handler=_study)


def _study(args: argparse.Namespace) -> int:
    from electra_keras.study.run_study import run_study

    options = {}
    if args.finetune_epochs is not None:
        options["epochs"] = args.finetune_epochs
    if args.data_dir:
        options["data_dir"] = args.data_dir
    run_study(
        output_dir=args.output_dir,
        budget=args.budget,
        tasks=args.tasks,
        seeds=args.seeds,
        preset=args.preset,
        corpus=args.corpus,
        vocab=args.vocab,
        finetune_options=options,
    )
    return 0
