"""Where each weight of our models lives, independent of any checkpoint format.

Converters name every variable by a *role* (a short tuple such as
`("layer", 3, "query", "kernel")`) and translate roles into their format's
tensor names and layouts. Keras kernels are `[in, out]`; attention projections
are keras-hub `EinsumDense` kernels `[hidden, heads, head_dim]` (query, key,
value) and `[heads, head_dim, hidden]` (output).
"""

from __future__ import annotations

from typing import Any

Role = tuple


def backbone_roles(backbone) -> list[tuple[Any, Role]]:
    """`(variable, role)` for every weight of an `ElectraBackbone`."""
    emb = backbone.embedding
    out = [
        (emb.token_embedding.embeddings, ("word_embeddings",)),
        (emb.position_embedding.position_embeddings, ("position_embeddings",)),
        (emb.segment_embedding.embeddings, ("segment_embeddings",)),
        (emb.layer_norm.gamma, ("embeddings_norm", "gamma")),
        (emb.layer_norm.beta, ("embeddings_norm", "beta")),
    ]
    if backbone.embedding_projection is not None:
        out += [
            (backbone.embedding_projection.kernel, ("embeddings_project", "kernel")),
            (backbone.embedding_projection.bias, ("embeddings_project", "bias")),
        ]
    for i, layer in enumerate(backbone.transformer_layers):
        attention = layer._self_attention_layer
        for name, dense in (
            ("query", attention._query_dense),
            ("key", attention._key_dense),
            ("value", attention._value_dense),
            ("attention_output", attention._output_dense),
        ):
            out += [
                (dense.kernel, ("layer", i, name, "kernel")),
                (dense.bias, ("layer", i, name, "bias")),
            ]
        for name, part in (
            ("attention_norm", layer._self_attention_layer_norm),
            ("output_norm", layer._feedforward_layer_norm),
        ):
            out += [
                (part.gamma, ("layer", i, name, "gamma")),
                (part.beta, ("layer", i, name, "beta")),
            ]
        for name, dense in (
            ("intermediate", layer._feedforward_intermediate_dense),
            ("output", layer._feedforward_output_dense),
        ):
            out += [
                (dense.kernel, ("layer", i, name, "kernel")),
                (dense.bias, ("layer", i, name, "bias")),
            ]
    return out


def discriminator_head_roles(head) -> list[tuple[Any, Role]]:
    return [
        (head.dense.kernel, ("disc_head", "dense", "kernel")),
        (head.dense.bias, ("disc_head", "dense", "bias")),
        (head.logits_dense.kernel, ("disc_head", "logits", "kernel")),
        (head.logits_dense.bias, ("disc_head", "logits", "bias")),
    ]


def masked_lm_head_roles(head) -> list[tuple[Any, Role]]:
    return [
        (head._intermediate_dense.kernel, ("mlm_head", "dense", "kernel")),
        (head._intermediate_dense.bias, ("mlm_head", "dense", "bias")),
        (head._intermediate_layer_norm.gamma, ("mlm_head", "norm", "gamma")),
        (head._intermediate_layer_norm.beta, ("mlm_head", "norm", "beta")),
        (head._bias, ("mlm_head", "output_bias")),
    ]


def attention_kernel_to_keras(kernel_in_out, role: Role, heads: int):
    """A `[in, out]` matrix in the EinsumDense layout its role needs."""
    if len(role) == 4 and role[0] == "layer" and role[3] == "kernel":
        hidden = kernel_in_out.shape[0]
        if role[2] in ("query", "key", "value"):
            return kernel_in_out.reshape(hidden, heads, -1)
        if role[2] == "attention_output":
            return kernel_in_out.reshape(heads, -1, kernel_in_out.shape[1])
    if len(role) == 4 and role[0] == "layer" and role[3] == "bias":
        if role[2] in ("query", "key", "value"):
            return kernel_in_out.reshape(heads, -1)
    return kernel_in_out


def keras_to_in_out(value, role: Role):
    """Inverse of `attention_kernel_to_keras`: back to `[in, out]` / flat bias."""
    if len(role) == 4 and role[0] == "layer" and role[2] in ("query", "key", "value"):
        return (
            value.reshape(value.shape[0], -1)
            if role[3] == "kernel"
            else value.reshape(-1)
        )
    if len(role) == 4 and role[0] == "layer" and role[2] == "attention_output":
        return value.reshape(-1, value.shape[-1]) if role[3] == "kernel" else value
    return value
