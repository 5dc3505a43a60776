"""Hugging Face ELECTRA checkpoints in and out.

Reads `config.json` + `model.safetensors` (or `pytorch_model.bin`) of
`ElectraModel`, `ElectraForPreTraining` or `ElectraForMaskedLM` (with or
without the `electra.` prefix), and BERT-architecture `BertModel` weights into
the backbone; writes our discriminator / generator / backbone back in the same
format. Every tensor is accounted for: mapped, or skipped with a reason; a
model variable that no tensor fills is an error, never a silent random init.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from electra_keras.config import ModelConfig
from electra_keras.conversion import layout
from electra_keras.conversion.report import (
    ConversionError,
    ConversionReport,
    assign_weights,
)

SUPPORTED_ACTIVATIONS = {
    "gelu": "gelu",
    "relu": "relu",
    "gelu_new": "gelu_approximate",
    "gelu_pytorch_tanh": "gelu_approximate",
}
_TO_HF_ACTIVATION = {"gelu": "gelu", "relu": "relu", "gelu_approximate": "gelu_new"}


# --- reading and writing checkpoints ---------------------------------------


def read_hf_checkpoint(path: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """`(config, tensors)` of a Hugging Face model directory.

    Args:
        path: Directory with `config.json` and `model.safetensors` or
            `pytorch_model.bin`.
    """
    config_path = os.path.join(path, "config.json")
    if not os.path.isfile(config_path):
        raise ConversionError(f"No config.json in {path!r}.")
    with open(config_path) as f:
        config = json.load(f)
    safetensors_path = os.path.join(path, "model.safetensors")
    bin_path = os.path.join(path, "pytorch_model.bin")
    if os.path.isfile(safetensors_path):
        from safetensors.numpy import load_file

        tensors = load_file(safetensors_path)
    elif os.path.isfile(bin_path):
        import torch

        state = torch.load(bin_path, map_location="cpu", weights_only=True)
        tensors = {k: v.float().numpy() for k, v in state.items()}
    else:
        raise ConversionError(f"No model.safetensors or pytorch_model.bin in {path!r}.")
    return config, {k: np.asarray(v, dtype=np.float32) for k, v in tensors.items()}


def model_config_from_hf(hf: dict[str, Any], report: ConversionReport) -> ModelConfig:
    """Maps an `ElectraConfig`/`BertConfig` dict onto our `ModelConfig`."""
    kind = hf.get("model_type", "electra")
    if kind not in ("electra", "bert"):
        raise ConversionError(
            f"Cannot convert model_type {kind!r}: only electra and bert."
        )
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise ConversionError(
            f"position_embedding_type {hf['position_embedding_type']!r} is not supported "
            "(only absolute position embeddings)."
        )
    activation = hf.get("hidden_act", "gelu")
    if activation not in SUPPORTED_ACTIVATIONS:
        raise ConversionError(
            f"hidden_act {activation!r} is not supported; supported: "
            f"{', '.join(SUPPORTED_ACTIVATIONS)}."
        )
    hidden = hf["hidden_size"]
    dropout = hf.get("hidden_dropout_prob", 0.1)
    attention_dropout = hf.get("attention_probs_dropout_prob", dropout)
    if attention_dropout != dropout:
        report.notices.append(
            f"attention dropout {attention_dropout} differs from hidden dropout "
            f"{dropout}; both become {dropout} (affects training only)."
        )
    return ModelConfig(
        vocab_size=hf["vocab_size"],
        num_layers=hf["num_hidden_layers"],
        num_heads=hf["num_attention_heads"],
        hidden_dim=hidden,
        intermediate_dim=hf["intermediate_size"],
        embedding_dim=hf.get("embedding_size", hidden),
        max_sequence_length=hf.get("max_position_embeddings", 512),
        num_segments=hf.get("type_vocab_size", 2),
        dropout=dropout,
        activation=SUPPORTED_ACTIVATIONS[activation],
        layer_norm_epsilon=hf.get("layer_norm_eps", 1e-12),
        initializer_range=hf.get("initializer_range", 0.02),
        generator_fraction=1.0,
    )


def hf_config_from_model(backbone, architecture: str) -> dict[str, Any]:
    """An `ElectraConfig` dict for one of our backbones."""
    return {
        "architectures": [architecture],
        "model_type": "electra",
        "vocab_size": backbone.vocab_size,
        "embedding_size": backbone.embedding_dim,
        "hidden_size": backbone.hidden_dim,
        "num_hidden_layers": backbone.num_layers,
        "num_attention_heads": backbone.num_heads,
        "intermediate_size": backbone.intermediate_dim,
        "hidden_act": _TO_HF_ACTIVATION[backbone.activation],
        "hidden_dropout_prob": backbone.dropout,
        "attention_probs_dropout_prob": backbone.dropout,
        "max_position_embeddings": backbone.max_sequence_length,
        "type_vocab_size": backbone.num_segments,
        "initializer_range": backbone.initializer_range,
        "layer_norm_eps": backbone.layer_norm_epsilon,
        "position_embedding_type": "absolute",
        "pad_token_id": 0,
        "tie_word_embeddings": True,
    }


# --- the weight map -----------------------------------------------------------

_LAYER_PARTS = {
    "query": "attention.self.query",
    "key": "attention.self.key",
    "value": "attention.self.value",
    "attention_output": "attention.output.dense",
    "attention_norm": "attention.output.LayerNorm",
    "intermediate": "intermediate.dense",
    "output": "output.dense",
    "output_norm": "output.LayerNorm",
}
_PARAM = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias"}
_HEAD_PARTS = {
    ("disc_head", "dense"): "discriminator_predictions.dense",
    ("disc_head", "logits"): "discriminator_predictions.dense_prediction",
    ("mlm_head", "dense"): "generator_predictions.dense",
    ("mlm_head", "norm"): "generator_predictions.LayerNorm",
}


def hf_name(role: tuple, prefix: str = "") -> str:
    """The Hugging Face tensor name of a weight role (see `layout`)."""
    if role == ("word_embeddings",):
        return prefix + "embeddings.word_embeddings.weight"
    if role == ("position_embeddings",):
        return prefix + "embeddings.position_embeddings.weight"
    if role == ("segment_embeddings",):
        return prefix + "embeddings.token_type_embeddings.weight"
    if role[0] == "embeddings_norm":
        return prefix + f"embeddings.LayerNorm.{_PARAM[role[1]]}"
    if role[0] == "embeddings_project":
        return prefix + f"embeddings_project.{_PARAM[role[1]]}"
    if role[0] == "layer":
        _, i, part, param = role
        return prefix + f"encoder.layer.{i}.{_LAYER_PARTS[part]}.{_PARAM[param]}"
    if role == ("mlm_head", "output_bias"):
        return "generator_lm_head.bias"
    return f"{_HEAD_PARTS[role[:2]]}.{_PARAM[role[2]]}"


def _entries(roles, prefix: str, heads: int):
    """`(variable, hf name, HF -> Keras transform, Keras -> HF transform)`."""
    out = []
    for variable, role in roles:
        is_kernel = role[-1] == "kernel"

        def to_keras(value, role=role, is_kernel=is_kernel):
            value = value.T if is_kernel else value
            return layout.attention_kernel_to_keras(value, role, heads)

        def to_hf(value, role=role, is_kernel=is_kernel):
            value = layout.keras_to_in_out(value, role)
            return value.T if is_kernel else value

        out.append((variable, hf_name(role, prefix), to_keras, to_hf))
    return out


# --- HF -> Keras ----------------------------------------------------------------


def _detect(tensors: dict[str, np.ndarray]) -> tuple[str, str]:
    """`(kind, prefix)`: kind in backbone/discriminator/generator."""
    prefix = "electra." if any(k.startswith("electra.") for k in tensors) else ""
    if not prefix and any(k.startswith("bert.") for k in tensors):
        prefix = "bert."
    if any(k.startswith("discriminator_predictions.") for k in tensors):
        return "discriminator", prefix
    if any(k.startswith("generator_predictions.") for k in tensors):
        return "generator", prefix
    return "backbone", prefix


def _assign(entries, tensors, report: ConversionReport, used: set[str]) -> None:
    keras_entries = [
        (variable, key, to_keras) for variable, key, to_keras, _ in entries
    ]
    assign_weights(keras_entries, tensors.__getitem__, tensors, report, used)


def convert_hf_to_keras(path: str, kind: str = "auto"):
    """Loads a Hugging Face ELECTRA/BERT checkpoint as one of our models.

    Args:
        path: A directory saved by `save_pretrained`.
        kind: "auto" (from the tensors), "backbone", "discriminator" or
            "generator".

    Returns:
        `(model, report)`: an `ElectraBackbone`, `ElectraDiscriminator` or
        `ElectraMaskedLM`, and a `ConversionReport`.
    """
    from electra_keras.models.backbone import ElectraBackbone
    from electra_keras.models.discriminator import ElectraDiscriminator
    from electra_keras.models.masked_lm import ElectraMaskedLM

    report = ConversionReport()
    hf_config, tensors = read_hf_checkpoint(path)
    config = model_config_from_hf(hf_config, report)
    detected, prefix = _detect(tensors)
    kind = detected if kind == "auto" else kind
    if kind not in ("backbone", "discriminator", "generator"):
        raise ConversionError(
            f"Unknown kind {kind!r}: backbone, discriminator or generator."
        )
    if kind != "backbone" and kind != detected:
        raise ConversionError(
            f"{path} holds a {detected} checkpoint, not a {kind} (no "
            f"{'discriminator_predictions' if kind == 'discriminator' else 'generator_predictions'} "
            "tensors)."
        )
    backbone = ElectraBackbone(**config.backbone_kwargs(), name=f"{kind}_backbone")
    used: set[str] = set()
    heads = backbone.num_heads
    _assign(
        _entries(layout.backbone_roles(backbone), prefix, heads), tensors, report, used
    )
    model = backbone
    if kind == "discriminator":
        model = ElectraDiscriminator(backbone)
        _assign(
            _entries(layout.discriminator_head_roles(model.head), "", heads),
            tensors,
            report,
            used,
        )
    elif kind == "generator":
        model = ElectraMaskedLM(backbone)
        _assign(
            _entries(layout.masked_lm_head_roles(model.head), "", heads),
            tensors,
            report,
            used,
        )
        tied = tensors.get("generator_lm_head.weight")
        if tied is not None:
            table = tensors[prefix + "embeddings.word_embeddings.weight"]
            if not np.array_equal(tied, table):
                raise ConversionError(
                    "generator_lm_head.weight differs from the word embeddings: an "
                    "untied output layer cannot be represented (ours is tied)."
                )
            used.add("generator_lm_head.weight")
            report.skipped["generator_lm_head.weight"] = "tied to the word embeddings"
        else:
            report.notices.append(
                "generator_lm_head.weight is tied to the word embeddings"
            )
    for key in sorted(set(tensors) - used):
        report.skipped[key] = _skip_reason(key, kind)
    unexplained = [
        k for k, why in report.skipped.items() if why.startswith("unexpected")
    ]
    if unexplained:
        raise ConversionError(
            f"Tensors with no place in the model: {', '.join(unexplained[:8])}."
        )
    return model, report


def _skip_reason(key: str, kind: str) -> str:
    if key.endswith("position_ids"):
        return "a buffer (position indices), not a weight"
    if "pooler" in key:
        return "BERT pooler: ELECTRA classifies from token 0 without a pooler"
    if key.startswith(("cls.", "bert.cls", "discriminator_predictions", "generator_")):
        return f"a head this {kind} conversion does not keep"
    return "unexpected tensor"


# --- Keras -> HF ----------------------------------------------------------------


def save_hf(model, out_dir: str) -> ConversionReport:
    """Writes one of our models as `config.json` + `model.safetensors`.

    `ElectraBackbone` -> `ElectraModel`, `ElectraDiscriminator` ->
    `ElectraForPreTraining`, `ElectraMaskedLM` -> `ElectraForMaskedLM`.

    Args:
        model: The model to write.
        out_dir: Output directory (created).
    """
    from safetensors.numpy import save_file

    from electra_keras.models.backbone import ElectraBackbone
    from electra_keras.models.discriminator import ElectraDiscriminator
    from electra_keras.models.masked_lm import ElectraMaskedLM

    report = ConversionReport()
    if isinstance(model, ElectraBackbone):
        backbone, prefix, architecture, head_roles = model, "", "ElectraModel", []
    elif isinstance(model, ElectraDiscriminator):
        backbone, prefix, architecture = (
            model.backbone,
            "electra.",
            "ElectraForPreTraining",
        )
        head_roles = layout.discriminator_head_roles(model.head)
    elif isinstance(model, ElectraMaskedLM):
        backbone, prefix, architecture = (
            model.backbone,
            "electra.",
            "ElectraForMaskedLM",
        )
        head_roles = layout.masked_lm_head_roles(model.head)
    else:
        raise ConversionError(
            f"Cannot write a {type(model).__name__}: expected an ElectraBackbone, "
            "ElectraDiscriminator or ElectraMaskedLM."
        )
    heads = backbone.num_heads
    entries = _entries(layout.backbone_roles(backbone), prefix, heads)
    entries += _entries(head_roles, "", heads)
    tensors = {}
    for variable, key, _, to_hf in entries:
        tensors[key] = np.ascontiguousarray(
            to_hf(np.asarray(variable.numpy(), np.float32))
        )
        report.mapped.append(key)
    if architecture == "ElectraForMaskedLM":
        tensors["generator_lm_head.weight"] = tensors[
            prefix + "embeddings.word_embeddings.weight"
        ].copy()
    os.makedirs(out_dir, exist_ok=True)
    save_file(
        tensors, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"}
    )
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(hf_config_from_model(backbone, architecture), f, indent=2)
    return report
