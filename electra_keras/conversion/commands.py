"""`electra-keras convert`: checkpoints between Hugging Face, TF1, keras-hub and Keras.

electra-keras convert --from hf path/to/hf_model_dir --to discriminator.keras
electra-keras convert --from hf path/to/generator_dir --to generator.keras --kind generator
electra-keras convert --from tf1 electra_small/model.ckpt --config small --to pretrainer.keras
electra-keras convert --from keras-hub path/to/preset_dir --to discriminator.keras
electra-keras convert --from discriminator.keras --to hf out_dir/
electra-keras convert --from discriminator.keras --to keras-hub preset_dir/
"""

from __future__ import annotations

import argparse
import os

FORMATS = ("hf", "tf1", "keras-hub")

# (source format, target format); "keras" is a .keras file.
SUPPORTED = {
    ("hf", "keras"),
    ("tf1", "keras"),
    ("keras-hub", "keras"),
    ("keras", "hf"),
    ("keras", "keras-hub"),
}

FORMATS_HELP = """\
Formats (--from SOURCE / --to TARGET):
  hf DIR          Hugging Face directory: config.json + model.safetensors (or
                  pytorch_model.bin) of ElectraModel, ElectraForPreTraining,
                  ElectraForMaskedLM or BertModel. Read into a .keras file
                  (--kind), or written from one.
  tf1 CKPT        original google-research/electra TF1 checkpoint prefix
                  (e.g. electra_small/model.ckpt); read only, into an
                  ElectraPretrainer (--config, --vocab).
  keras-hub DIR   keras-hub ElectraBackbone preset directory; read into a
                  .keras file, or written from one.
  FILE.keras      one of our saved models: the target of hf, tf1 and
                  keras-hub, or the source for hf and keras-hub.

Examples:
  electra-keras convert --from hf path/to/hf_model_dir --to discriminator.keras
  electra-keras convert --from tf1 electra_small/model.ckpt --config small --to pretrainer.keras
  electra-keras convert --from keras-hub path/to/preset_dir --to discriminator.keras
  electra-keras convert --from discriminator.keras --to hf out_dir/
  electra-keras convert --from discriminator.keras --to keras-hub preset_dir/"""


def add_parsers(subparsers) -> None:
    p = subparsers.add_parser(
        "convert",
        help="Convert checkpoints (Hugging Face, TF1, keras-hub <-> Keras).",
        description="Convert ELECTRA checkpoints. --from takes a format and a path "
        "(e.g. hf DIR) or a .keras file; --to takes a .keras file or a format and "
        "a path. Every converter reports what it mapped and skipped.",
        epilog=FORMATS_HELP,
    )
    p.add_argument(
        "--from",
        dest="source",
        nargs="+",
        required=True,
        metavar="SOURCE",
        help="hf DIR, tf1 CKPT, keras-hub DIR or FILE.keras.",
    )
    p.add_argument(
        "--to",
        dest="target",
        nargs="+",
        required=True,
        metavar="TARGET",
        help="FILE.keras, hf DIR or keras-hub DIR.",
    )
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
    if len(values) == 1 and values[0] in FORMATS:
        raise ValueError(f"--{what} {values[0]} needs a path: {values[0]} PATH.")
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
    if (source_format, target_format) not in SUPPORTED:
        if target_format == "tf1":
            raise ValueError("Writing TF1 checkpoints is not supported.")
        raise ValueError(
            f"Converting {source_format} to {target_format} is not supported "
            "(see `electra-keras convert --help`)."
        )
    # A TF1 checkpoint is a prefix (model.ckpt.index, .data-*): its reader checks.
    if source_format != "tf1" and not os.path.exists(source):
        raise FileNotFoundError(
            f"--from {' '.join(args.source)}: {source} does not exist."
        )
    if target_format == "keras":
        if source_format == "hf":
            model, report = convert_hf_to_keras(source, kind=args.kind)
        elif source_format == "tf1":
            model, report = _from_tf1(source, args)
        else:
            from electra_keras.conversion.keras_hub import from_keras_hub

            model, report = from_keras_hub(source)
        model.save(target)
    else:
        model = keras.saving.load_model(source, compile=False)
        if target_format == "hf":
            report = save_hf(model, target)
        else:
            from electra_keras.conversion.keras_hub import to_keras_hub

            backbone = getattr(model, "backbone", model)
            theirs, report = to_keras_hub(backbone)
            theirs.save_to_preset(target)
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
