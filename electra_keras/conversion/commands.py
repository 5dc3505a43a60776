"""`electra-keras convert`: checkpoints between Hugging Face and Keras.

electra-keras convert --from hf path/to/hf_model_dir --to discriminator.keras
electra-keras convert --from hf path/to/generator_dir --to generator.keras --kind generator
electra-keras convert --from discriminator.keras --to hf out_dir/
"""

from __future__ import annotations

import argparse

FORMATS = ("hf", "tf1", "keras-hub")


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
    p.add_argument(
        "--config",
        default="small",
        help="tf1: the preset the checkpoint was trained with (heads, masking).",
    )
    p.add_argument(
        "--vocab", help="tf1: vocab.txt for the special token ids (default: BERT's)."
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
    if target_format == "keras":
        if source_format == "hf":
            model, report = convert_hf_to_keras(source, kind=args.kind)
        elif source_format == "tf1":
            model, report = _from_tf1(source, args)
        else:
            from electra_keras.conversion.keras_hub import from_keras_hub

            model, report = from_keras_hub(source)
        model.save(target)
    elif source_format == "keras":
        model = keras.saving.load_model(source, compile=False)
        if target_format == "hf":
            report = save_hf(model, target)
        elif target_format == "keras-hub":
            from electra_keras.conversion.keras_hub import to_keras_hub

            backbone = getattr(model, "backbone", model)
            theirs, report = to_keras_hub(backbone)
            theirs.save_to_preset(target)
        else:
            raise ValueError("Writing TF1 checkpoints is not supported.")
    else:
        raise ValueError(
            f"Converting {source_format} to {target_format} is not supported."
        )
    print(report.summary())
    print(f"Wrote {target} ({type(model).__name__}).")
    return 0


def _from_tf1(source: str, args: argparse.Namespace):
    from electra_keras.config import get_preset
    from electra_keras.conversion.tf1 import convert_tf1_checkpoint

    special_ids = None
    if args.vocab:
        from electra_keras.data.tokenizer import ElectraTokenizer

        tokenizer = ElectraTokenizer(args.vocab)
        special_ids = {
            "pad_id": tokenizer.pad_id,
            "cls_id": tokenizer.cls_id,
            "sep_id": tokenizer.sep_id,
            "mask_id": tokenizer.mask_id,
        }
    return convert_tf1_checkpoint(source, get_preset(args.config), special_ids)
