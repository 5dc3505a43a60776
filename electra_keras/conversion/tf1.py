"""Original google-research/electra TF1 checkpoints -> `ElectraPretrainer`.

Variable names follow the original code: `electra/embeddings/...` (shared by
the generator), `electra/embeddings_project`, `electra/encoder/layer_N/...`,
`generator/embeddings_project`, `generator/encoder/layer_N/...`,
`generator_predictions/...` and `discriminator_predictions/...`. Optimizer
slots (`adam_m`, `adam_v`) and `global_step` are skipped silently; every other
variable must be mapped, and every model weight filled. The converted model
uses the exact (erf) GELU, as the original `modeling.gelu` does.
"""

from __future__ import annotations

from typing import Any

from electra_keras.config import ModelConfig, PretrainingConfig
from electra_keras.conversion import layout
from electra_keras.conversion.report import (
    ConversionError,
    ConversionReport,
    assign_weights,
)

_LAYER_PARTS = {
    "query": "attention/self/query",
    "key": "attention/self/key",
    "value": "attention/self/value",
    "attention_output": "attention/output/dense",
    "attention_norm": "attention/output/LayerNorm",
    "intermediate": "intermediate/dense",
    "output": "output/dense",
    "output_norm": "output/LayerNorm",
}
_HEAD_PARTS = {
    ("disc_head", "dense"): "discriminator_predictions/dense",
    ("disc_head", "logits"): "discriminator_predictions/dense_1",
    ("mlm_head", "dense"): "generator_predictions/dense",
    ("mlm_head", "norm"): "generator_predictions/LayerNorm",
}
# BERT uncased ids of [PAD], [CLS], [SEP], [MASK]: the original release's vocab.
BERT_SPECIAL_IDS = {"pad_id": 0, "cls_id": 101, "sep_id": 102, "mask_id": 103}


def tf1_name(role: tuple, scope: str) -> str:
    """The original variable name of a weight role; `scope` is electra/generator."""
    if role == ("word_embeddings",):
        return "electra/embeddings/word_embeddings"
    if role == ("position_embeddings",):
        return "electra/embeddings/position_embeddings"
    if role == ("segment_embeddings",):
        return "electra/embeddings/token_type_embeddings"
    if role[0] == "embeddings_norm":
        return f"electra/embeddings/LayerNorm/{role[1]}"
    if role[0] == "embeddings_project":
        return f"{scope}/embeddings_project/{role[1]}"
    if role[0] == "layer":
        _, i, part, param = role
        return f"{scope}/encoder/layer_{i}/{_LAYER_PARTS[part]}/{param}"
    if role == ("mlm_head", "output_bias"):
        return "generator_predictions/output_bias"
    return f"{_HEAD_PARTS[role[:2]]}/{role[2]}"


def _is_optimizer_state(name: str) -> bool:
    return (
        name == "global_step"
        or name.endswith(("/adam_m", "/adam_v"))
        or "/Adam" in name
    )


def config_from_tf1(
    shapes: dict[str, list[int]], base: PretrainingConfig, num_heads: int | None = None
) -> PretrainingConfig:
    """Sizes read off the checkpoint's shapes; heads and depth from `base`."""
    vocab, embedding = shapes["electra/embeddings/word_embeddings"]
    positions = shapes["electra/embeddings/position_embeddings"][0]
    segments = shapes["electra/embeddings/token_type_embeddings"][0]
    layers = len(
        {n.split("/")[2] for n in shapes if n.startswith("electra/encoder/layer_")}
    )
    hidden = shapes["electra/encoder/layer_0/attention/self/query/kernel"][1]
    ffn = shapes["electra/encoder/layer_0/intermediate/dense/kernel"][1]
    gen_key = "generator/encoder/layer_0/attention/self/query/kernel"
    if gen_key not in shapes:
        raise ConversionError(
            "No generator/encoder variables: only checkpoints with a separate, "
            "smaller generator sharing the embeddings are supported."
        )
    fraction = shapes[gen_key][1] / hidden
    model = ModelConfig(
        vocab_size=vocab,
        num_layers=layers,
        num_heads=num_heads or base.model.num_heads,
        hidden_dim=hidden,
        intermediate_dim=ffn,
        embedding_dim=embedding,
        max_sequence_length=positions,
        num_segments=segments,
        # The original `modeling.gelu` is the exact (erf) form.
        activation="gelu",
        generator_fraction=fraction,
    )
    return base.replace(**{f"model.{k}": v for k, v in model.__dict__.items()})


def convert_tf1_checkpoint(
    checkpoint: str,
    base: PretrainingConfig,
    special_ids: dict[str, int] | None = None,
) -> tuple[Any, ConversionReport]:
    """Loads an original ELECTRA checkpoint into an `ElectraPretrainer`.

    Args:
        checkpoint: Checkpoint prefix (e.g. `electra_small/model.ckpt-1000000`)
            or its directory.
        base: A preset giving what shapes cannot (heads, masking settings).
        special_ids: `pad_id`, `cls_id`, `sep_id`, `mask_id` (BERT's by default).

    Returns:
        `(pretrainer, report)`.
    """
    import tensorflow as tf

    from electra_keras.models.pretrainer import ElectraPretrainer

    try:
        reader = tf.train.load_checkpoint(checkpoint)
    except (tf.errors.NotFoundError, ValueError) as error:
        raise ConversionError(
            f"Cannot read a TF checkpoint at {checkpoint!r}: {error}"
        ) from None
    shapes = reader.get_variable_to_shape_map()
    report = ConversionReport()
    config = config_from_tf1(shapes, base)
    model = ElectraPretrainer.from_config_object(
        config, special_ids or BERT_SPECIAL_IDS
    )
    entries = [
        (v, tf1_name(r, "electra"), r)
        for v, r in layout.backbone_roles(model.discriminator)
    ]
    gen_roles = [
        (v, r)
        for v, r in layout.backbone_roles(model.generator)
        if r[0] not in ("word_embeddings", "position_embeddings", "segment_embeddings")
        and r[0] != "embeddings_norm"
    ]
    entries += [(v, tf1_name(r, "generator"), r) for v, r in gen_roles]
    entries += [
        (v, tf1_name(r, ""), r)
        for v, r in layout.discriminator_head_roles(model.discriminator_head)
    ]
    entries += [
        (v, tf1_name(r, ""), r)
        for v, r in layout.masked_lm_head_roles(model.generator_head)
    ]

    used: set[str] = set()

    def to_keras(name, role):
        scope = (
            model.generator if name.startswith("generator/") else model.discriminator
        )
        return lambda value: layout.attention_kernel_to_keras(
            value, role, scope.num_heads
        )

    assign_weights(
        [(v, name, to_keras(name, role)) for v, name, role in entries],
        reader.get_tensor,
        shapes,
        report,
        used,
    )
    optimizer_state = [n for n in shapes if _is_optimizer_state(n)]
    unexplained = sorted(set(shapes) - used - set(optimizer_state))
    if unexplained:
        raise ConversionError(
            f"Variables with no place in the model: {', '.join(unexplained[:8])}."
        )
    if optimizer_state:
        report.notices.append(
            f"skipped {len(optimizer_state)} optimizer/step variables"
        )
    return model, report
