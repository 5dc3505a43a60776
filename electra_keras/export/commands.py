"""`electra-keras export`: a fine-tuned classifier to a TF Serving SavedModel.

electra-keras export --model runs/ft/classifier.keras --name sentiment
# -> saved_models/sentiment/1/ (the next free version)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex

from electra_keras.serving.commands import DEFAULT_GRPC_PORT, DEFAULT_REST_PORT

EXAMPLE_TEXT = "a gripping, beautifully acted film"
EXAMPLE_PAIR = "the acting is superb"


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
    p.add_argument(
        "--fixed-length",
        dest="bucket_lengths",
        action="store_false",
        help="Pad every batch to the model's seq_len (default: to the smallest "
        "of 8, 16, 24, 32, 48, 64, 96, ... seq_len that holds the batch's longest text).",
    )
    p.add_argument(
        "--compute-dtype",
        choices=("auto", "float32", "bfloat16"),
        default="float32",
        help="Dtype of the model's matmuls: bfloat16 is faster on server CPUs "
        "with AMX or AVX512-BF16 and scores within about 1e-2 of float32; auto "
        "picks it when this machine has them.",
    )
    p.add_argument(
        "--graph",
        choices=("fused", "keras"),
        default="fused",
        help="fused (default): the forward pass in fewer, larger ops (dense "
        "layers on real tokens only, one matmul for query/key/value, token 0 "
        "only in the last layer), scores equal to float32 rounding; keras: the "
        "Keras model's own call.",
    )
    p.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    from electra_keras.export.saved_model import (
        export_classifier,
        resolve_compute_dtype,
    )
    from electra_keras.runtime_info import runtime_line

    print(runtime_line(), flush=True)
    compute_dtype, reason = resolve_compute_dtype(args.compute_dtype)
    if compute_dtype != "float32" or reason:
        print(f"Compute dtype: {compute_dtype}" + (f" ({reason})" if reason else ""))
    path = export_classifier(
        args.model,
        args.name,
        base_dir=args.base_dir,
        version=args.version,
        pair=args.pair,
        bucket_lengths=args.bucket_lengths,
        compute_dtype=compute_dtype,
        graph=args.graph,
    )
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(f"{path}/saved_model.pb", "rb") as f:
        proto.ParseFromString(f.read())
    inputs = sorted(proto.meta_graphs[0].signature_def["serving_default"].inputs)
    config_path = write_serving_config(args.base_dir, args.name)
    print(
        f"Exported {args.model} to {path} (serving_default inputs: {', '.join(inputs)})"
    )
    print(summarize_export(args.name, config_path, pair="text_pair" in inputs))
    return 0


def write_serving_config(base_dir: str, name: str) -> str:
    """Writes `<base_dir>/<name>.config`: a model config that serves `name`.

    Its base path is absolute, so the file works from any directory, with
    `electra-keras serve` and with TF Serving's `--model_config_file`.

    Returns:
        The file's path.
    """
    from electra_keras.serving.model_config import (
        ServedModelConfig,
        format_model_config,
    )

    base_path = os.path.abspath(os.path.join(base_dir, name))
    config_path = os.path.join(base_dir, f"{name}.config")
    with open(config_path, "w") as f:
        f.write(format_model_config([ServedModelConfig(name, base_path)]))
    return config_path


def summarize_export(
    name: str,
    config_path: str,
    pair: bool = False,
    rest_port: int = DEFAULT_REST_PORT,
    grpc_port: int = DEFAULT_GRPC_PORT,
) -> str:
    """How to serve the export and query it: serve, curl and client commands.

    Args:
        name: the served model name.
        config_path: a model config file that serves it.
        pair: the signatures take `text_pair` too.
        rest_port: the REST port `serve` listens on by default.
        grpc_port: the gRPC port `serve` listens on by default.
    """
    instance = {"text": EXAMPLE_TEXT}
    client_pair = ""
    if pair:
        instance["text_pair"] = EXAMPLE_PAIR
        client_pair = f" --text-pair {shlex.quote(EXAMPLE_PAIR)}"
    url = f"http://localhost:{rest_port}/v1/models/{name}"
    predict = json.dumps({"instances": [instance]})
    classify = json.dumps({"signature_name": "classify", "examples": [instance]})
    model = shlex.quote(name)
    return "\n".join(
        [
            f"Serve it (REST :{rest_port}, gRPC :{grpc_port}):",
            f"  electra-keras serve --model-config {shlex.quote(config_path)}",
            "Then query it:",
            f"  curl -s -X POST {url}:predict -d {shlex.quote(predict)}",
            f"  curl -s -X POST {url}:classify -d {shlex.quote(classify)}",
            f"  electra-keras client --rest localhost:{rest_port} --model {model} "
            f"{shlex.quote(EXAMPLE_TEXT)}{client_pair}",
        ]
    )
