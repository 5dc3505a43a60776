"""Models from `from_preset` sources: the loading behind the `from_preset` methods.

`electra_keras.preset_sources` recognizes a source; this module loads what it
holds: a backbone for `ElectraClassifier.from_preset` (reusing the Hugging
Face and keras-hub conversion readers) and a pretrainer with its optimizer
state for `ElectraPretrainer.from_preset` on a run directory.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import keras

from electra_keras import preset_sources
from electra_keras.config import ModelConfig, PretrainingConfig, apply_overrides
from electra_keras.models.backbone import ElectraBackbone

# Config fields baked into a pretrainer when it is built: a run directory's
# model is rebuilt from its config.json, so these cannot be overridden there.
_BUILD_FIELDS = (
    "seq_len",
    "mask_prob",
    "mask_token_rate",
    "random_token_rate",
    "temperature",
    "electra_objective",
    "mlm_weight",
    "disc_weight",
    "seed",
)


def backbone_of(model: keras.Model, path: str) -> ElectraBackbone:
    """The `ElectraBackbone` in a loaded model (or the model itself).

    Args:
        model: an `ElectraBackbone`, or a model holding one: an
            `ElectraDiscriminator`, `ElectraMaskedLM` or `ElectraClassifier`
            (`.backbone`), or an `ElectraPretrainer` (`.discriminator`).
        path: where it was loaded from, for the message.

    Raises:
        ValueError: the model holds no `ElectraBackbone`.
    """
    if isinstance(model, ElectraBackbone):
        return model
    backbone = getattr(model, "backbone", None) or getattr(model, "discriminator", None)
    if not isinstance(backbone, ElectraBackbone):
        raise ValueError(
            f"{path} holds a {type(model).__name__}, not an ElectraBackbone, "
            "ElectraDiscriminator, ElectraClassifier or ElectraPretrainer (expected "
            "the `discriminator.keras` of a pretraining run or a converted checkpoint)."
        )
    return backbone


def load_backbone(
    source: preset_sources.PresetSource,
) -> tuple[ElectraBackbone, keras.Model | None]:
    """The pretrained backbone of a run directory, .keras file, HF or keras-hub dir.

    Args:
        source: a resolved source (not a size preset or a vocabulary).

    Returns:
        `(backbone, loaded)`: `loaded` is the whole model read from a .keras
        file (e.g. a classifier, whose preprocessor may be reused), else None.
    """
    kind = source.kind
    if kind == preset_sources.KERAS_FILE:
        loaded = keras.saving.load_model(source.path, compile=False)
        return backbone_of(loaded, source.path), loaded
    if kind == preset_sources.RUN_DIRECTORY:
        path = os.path.join(source.path, "discriminator.keras")
        if os.path.isfile(path):
            return backbone_of(keras.saving.load_model(path, compile=False), path), None
        return load_run_pretrainer(source).discriminator, None
    if kind == preset_sources.HF_DIRECTORY:
        from electra_keras.conversion.hf import convert_hf_to_keras

        backbone, _ = convert_hf_to_keras(source.path, kind="backbone")
        return backbone, None
    if kind == preset_sources.KERAS_HUB_PRESET:
        from electra_keras.conversion.keras_hub import from_keras_hub

        backbone, _ = from_keras_hub(source.path)
        return backbone, None
    raise preset_sources.PresetError(f"A {kind} holds no backbone weights.")


def run_state_file(run_dir: str) -> str | None:
    """The file with a run's latest weights and optimizer state, if any.

    `pretrainer.keras` (written at the end), else the newest
    `checkpoints/step-N.weights.h5` (written every epoch).
    """
    from electra_keras.training.callbacks import list_checkpoints

    final = os.path.join(run_dir, "pretrainer.keras")
    if os.path.isfile(final):
        return final
    checkpoints = list_checkpoints(os.path.join(run_dir, "checkpoints"))
    return checkpoints[-1] if checkpoints else None


def load_run_pretrainer(
    source: preset_sources.PresetSource,
    vocabulary: Sequence[str] | str | os.PathLike | None = None,
    overrides: dict[str, Any] | None = None,
):
    """The pretrainer of a run directory, compiled, with its optimizer state.

    The model is rebuilt from the run's config.json and vocab.txt, compiled
    with `create_optimizer(config)`, then given the weights and optimizer
    state (step count, Adam moments) of `run_state_file`, so `fit()` goes on
    with the run's schedule where it stopped.

    Args:
        source: a resolved `RUN_DIRECTORY`.
        vocabulary: must be the run's own when given (a path or tokens).
        overrides: config changes that do not change the model (learning
            rate, schedule, batch size, ...); see `apply_overrides`.

    Raises:
        PresetError: the run has no vocab.txt, no saved state, or
            `vocabulary` differs from the run's.
        ConfigError: an override would change the trained model.
    """
    from electra_keras.config import ConfigError
    from electra_keras.data.vocab import load_vocabulary, special_token_ids
    from electra_keras.models.pretrainer import ElectraPretrainer

    run_dir = source.path
    if source.vocabulary is None:
        raise preset_sources.PresetError(
            f"The pretraining run {run_dir} has no vocab.txt: it cannot be loaded."
        )
    tokens = load_vocabulary(source.vocabulary)
    if vocabulary is not None:
        given = (
            load_vocabulary(os.fspath(vocabulary))
            if isinstance(vocabulary, (str, os.PathLike))
            else list(vocabulary)
        )
        if given != tokens:
            raise preset_sources.PresetError(
                f"The run {run_dir} was pretrained with {source.vocabulary}; the "
                "vocabulary passed differs. Leave `vocabulary` out to use the run's."
            )
    overrides = dict(overrides or {})
    model_fields = {field.name for field in dataclasses.fields(ModelConfig)}
    baked = sorted(
        key
        for key in overrides
        if key in _BUILD_FIELDS or key.startswith("model.") or key in model_fields
    )
    if baked:
        raise ConfigError(
            f"Cannot override {', '.join(baked)} when continuing the run {run_dir}: "
            "they are part of the trained model. Only training settings (learning "
            "rate, schedule, batch size, ...) can change."
        )
    config = apply_overrides(PretrainingConfig.from_dict(source.run_config), overrides)
    state = run_state_file(run_dir)
    if state is None:
        raise preset_sources.PresetError(
            f"The pretraining run {run_dir} has no pretrainer.keras and no "
            "checkpoints/step-N.weights.h5 yet: nothing to load."
        )
    model = ElectraPretrainer.from_config_object(
        config, special_token_ids(tokens, source.vocabulary), name="electra_pretrainer"
    )
    model.compile()
    model.load_weights(state)
    return model
