"""What a `from_preset` source is, and the vocabulary and casing it comes with.

`ElectraPretrainer`, `ElectraClassifier` and `ElectraTokenizer` each have a
`from_preset(source)` that accepts some of these kinds of source:

    size preset        "tiny", "small", "base" or "large" (random weights)
    run directory      a pretraining run (`electra-keras pretrain --output-dir`):
                       config.json with a "model" entry, vocab.txt,
                       pretrainer.keras / discriminator.keras / checkpoints/
    .keras file        one of our saved models (discriminator, backbone,
                       classifier, pretrainer)
    Hugging Face dir   config.json with a "model_type", model.safetensors or
                       pytorch_model.bin, usually vocab.txt and
                       tokenizer_config.json
    keras-hub preset   config.json + metadata.json (`save_to_preset`), its
                       vocabulary in assets/tokenizer/vocabulary.txt
    vocabulary file    a BERT-style vocab.txt (one token per line)

`resolve_source` tells them apart by looking at files only (nothing is
loaded), and reads the metadata that comes with each: the vocabulary file, the
lower-casing (run config.json `lowercase`, Hugging Face `do_lower_case`,
keras-hub `lowercase`) and the run's `seq_len`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from typing import Any

from electra_keras.config import PRESET_NAMES

SIZE_PRESET = "size preset"
RUN_DIRECTORY = "run directory"
KERAS_FILE = ".keras file"
HF_DIRECTORY = "Hugging Face directory"
KERAS_HUB_PRESET = "keras-hub preset"
VOCABULARY_FILE = "vocabulary file"

_DESCRIPTIONS = {
    SIZE_PRESET: f"a size preset name ({', '.join(PRESET_NAMES)})",
    RUN_DIRECTORY: "a pretraining run directory (config.json, vocab.txt, "
    "pretrainer.keras or discriminator.keras)",
    KERAS_FILE: "a .keras file (discriminator, backbone, classifier or pretrainer)",
    HF_DIRECTORY: "a Hugging Face ELECTRA/BERT directory (config.json with "
    "model_type, model.safetensors or pytorch_model.bin)",
    KERAS_HUB_PRESET: "a keras-hub preset directory (config.json, metadata.json)",
    VOCABULARY_FILE: "a vocab.txt file",
}


class PresetError(ValueError):
    """A `from_preset` source is missing, of a kind not accepted, or incomplete."""


@dataclasses.dataclass(frozen=True)
class PresetSource:
    """A recognized source and the metadata found with it.

    Attributes:
        kind: one of the kind constants of this module (e.g. `RUN_DIRECTORY`).
        path: the file or directory (for a size preset: its name).
        vocabulary: the vocabulary file that comes with it, if any.
        lowercase: its tokenizer's lower-casing, when the source says.
        seq_len: the sequence length it was trained with, when known.
        run_config: a run directory's config.json, as a dict.
    """

    kind: str
    path: str
    vocabulary: str | None = None
    lowercase: bool | None = None
    seq_len: int | None = None
    run_config: dict[str, Any] | None = None


def describe_kinds(kinds: Sequence[str]) -> str:
    """A readable list of source kinds, for error messages."""
    return "; ".join(_DESCRIPTIONS[kind] for kind in kinds)


def resolve_source(
    source: str | os.PathLike, accepted: Sequence[str], caller: str
) -> PresetSource:
    """Recognizes `source` and reads its metadata.

    Args:
        source: a size preset name, or the path of a file or directory.
        accepted: the kinds the caller can load.
        caller: how to name the caller in messages (`"ElectraClassifier.from_preset"`).

    Returns:
        A `PresetSource`.

    Raises:
        PresetError: the path does not exist, is of no known kind, or of a kind
            not in `accepted`; every message lists the accepted kinds.
    """
    path = os.fspath(source)
    accepts = f"{caller} accepts {describe_kinds(accepted)}."
    if not os.path.exists(path):
        if path in PRESET_NAMES and SIZE_PRESET in accepted:
            return PresetSource(SIZE_PRESET, path)
        raise PresetError(f"{caller}: {path!r} does not exist. {accepts}")
    found = _recognize(path)
    if found is None:
        raise PresetError(
            f"{caller}: cannot tell what {path} is (not a .keras file, and no "
            "config.json of a pretraining run, Hugging Face model or keras-hub "
            f"preset). {accepts}"
        )
    if found.kind not in accepted:
        raise PresetError(f"{caller}: {path} is a {found.kind}. {accepts}")
    return found


def _recognize(path: str) -> PresetSource | None:
    if os.path.isfile(path):
        if path.endswith(".keras"):
            return _keras_file(path)
        return PresetSource(VOCABULARY_FILE, path, vocabulary=path)
    config = _read_json(os.path.join(path, "config.json"))
    if config is None:
        return None
    if isinstance(config.get("model"), dict):
        return _run_directory(path, config)
    if "model_type" in config:
        return _hf_directory(path)
    if "class_name" in config and os.path.isfile(os.path.join(path, "metadata.json")):
        return _keras_hub_preset(path)
    return None


def _run_directory(path: str, config: dict[str, Any]) -> PresetSource:
    seq_len = config.get("seq_len")
    return PresetSource(
        RUN_DIRECTORY,
        path,
        vocabulary=_file_or_none(path, "vocab.txt"),
        lowercase=_bool_or_none(config.get("lowercase")),
        seq_len=seq_len if isinstance(seq_len, int) else None,
        run_config=config,
    )


def _keras_file(path: str) -> PresetSource:
    """A .keras file; one inside a run directory gets the run's metadata."""
    directory = os.path.dirname(os.path.abspath(path))
    config = _read_json(os.path.join(directory, "config.json")) or {}
    if isinstance(config.get("model"), dict):
        run = _run_directory(directory, config)
        return dataclasses.replace(run, kind=KERAS_FILE, path=path, run_config=None)
    return PresetSource(
        KERAS_FILE, path, vocabulary=_file_or_none(directory, "vocab.txt")
    )


def _hf_directory(path: str) -> PresetSource:
    tokenizer = _read_json(os.path.join(path, "tokenizer_config.json")) or {}
    return PresetSource(
        HF_DIRECTORY,
        path,
        vocabulary=_file_or_none(path, "vocab.txt"),
        lowercase=_bool_or_none(tokenizer.get("do_lower_case")),
    )


def _keras_hub_preset(path: str) -> PresetSource:
    tokenizer = _read_json(os.path.join(path, "tokenizer.json")) or {}
    tokenizer_config = tokenizer.get("config")
    lowercase = None
    if isinstance(tokenizer_config, dict):
        lowercase = _bool_or_none(tokenizer_config.get("lowercase"))
    return PresetSource(
        KERAS_HUB_PRESET,
        path,
        vocabulary=_file_or_none(path, "assets", "tokenizer", "vocabulary.txt"),
        lowercase=lowercase,
    )


def _read_json(path: str) -> dict[str, Any] | None:
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PresetError(f"{path} is not readable JSON: {error}") from None
    return value if isinstance(value, dict) else None


def _file_or_none(*parts: str) -> str | None:
    path = os.path.join(*parts)
    return path if os.path.isfile(path) else None


def _bool_or_none(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None
