"""`electra-keras convert`: checkpoints between Hugging Face and Keras.

electra-keras convert --from hf path/to/hf_model_dir --to discriminator.keras
electra-keras convert --from hf path/to/generator_dir --to generator.keras --kind generator
electra-keras convert --from discriminator.keras --to hf out_dir/
"""

from __future__ import annotations

import argparse

FORMATS = ("hf",)


def add_parsers(subparsers) -> None:
    p = subparsers.add_parser(
        "convert",
        help="Convert checkpoints (Hugging Face <-> Keras).",
        description="Convert ELECTRA checkpoints. --from takes a format and a path "
        "(hf DIR) or a .keras file; --to takes a .keras file or a format and a path.",
    )
    p.add_argument("--from", dest="source", nargs="+", required=True, metavar="SOURCE")
    p.add_argument("--to", dest="target", nargs="+", required=True, metavar="TARGET")
    p.add_argument(
        "--kind",
        default="auto",
        choices=("auto", "backbone", "discriminator", "generator"),
        help="What to build from an HF checkpoint (default: from its tensors).",
    )
    p.set_defaults(handler=run_convert)


def _split(values: list[str], what: str) -> tuple[str, str]:
    if len(values) == 2 and values[0] in FORMATS:
        return values[0], values[1]
    if len(values) == 1 and values[0].endswith(".keras"):
        return "keras", values[0]
    if len(values) >= 1 and values[0] in ("tf1", "keras-hub"):
        raise ValueError(
            f"--{what} {values[0]}: not supported yet (Hugging Face and .keras are)."
        )
    raise ValueError(
        f"--{what} expects a format and a path ({', '.join(FORMATS)} PATH) or a .keras "
        f"file; got {' '.join(values)!r}."
    )


def run_convert(args: argparse.Namespace) -> int:
    import keras

    import electra_keras.models  # noqa: F401 (registers the model classes)
    from electra_keras.conversion.hf import convert_hf_to_keras, save_hf

    source_format, source = _split(args.source, "from")
    target_format, target = _split(args.target, "to")
    if source_format == "hf" and target_format == "keras":
        model, report = convert_hf_to_keras(source, kind=args.kind)
        model.save(target)
    elif source_format == "keras" and target_format == "hf":
        model = keras.saving.load_model(source, compile=False)
        report = save_hf(model, target)
    else:
        raise ValueError(
            f"Converting {source_format} to {target_format} is not supported."
        )
    print(report.summary())
    print(f"Wrote {target} ({type(model).__name__}).")
    return 0
