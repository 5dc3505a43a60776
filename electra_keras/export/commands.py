"""`electra-keras export`: a fine-tuned classifier to a TF Serving SavedModel.

electra-keras export --model runs/ft/classifier.keras --name sentiment
# -> saved_models/sentiment/1/ (the next free version)
"""

from __future__ import annotations

import argparse


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Registers the `export` subcommand.

    Args:
        subparsers: the CLI's subparsers (from `add_subparsers`).
    """
    p = subparsers.add_parser(
        "export",
        help="Export a fine-tuned classifier as a TF Serving SavedModel.",
        description="Writes <base-dir>/<name>/<version>/ (TF Serving's layout): "
        "a SavedModel that tokenizes raw text in-graph (tensorflow-text), with "
        "signatures serving_default, classify and serving_token_ids, the "
        "vocabulary as an asset and warmup requests in assets.extra.",
        epilog="Example:\n"
        "  electra-keras export --model runs/finetune/classifier.keras "
        "--name sentiment",
    )
    p.add_argument("--model", required=True, help="The classifier's .keras file.")
    p.add_argument("--name", required=True, help="Model name (folder, served name).")
    p.add_argument(
        "--base-dir", default="saved_models", help="Folder of served models."
    )
    p.add_argument(
        "--version",
        type=int,
        help="Version number (default: one more than the highest existing).",
    )
    p.add_argument(
        "--pair",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Signatures take text_pair too (default: from the task in "
        "metrics.json beside the model, else single texts).",
    )
    p.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    from electra_keras.export.saved_model import export_classifier
    from electra_keras.runtime_info import runtime_line

    print(runtime_line(), flush=True)
    path = export_classifier(
        args.model,
        args.name,
        base_dir=args.base_dir,
        version=args.version,
        pair=args.pair,
    )
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(f"{path}/saved_model.pb", "rb") as f:
        proto.ParseFromString(f.read())
    inputs = ", ".join(
        sorted(proto.meta_graphs[0].signature_def["serving_default"].inputs)
    )
    print(f"Exported {args.model} to {path} (serving_default inputs: {inputs})")
    return 0
