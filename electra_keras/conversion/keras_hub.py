"""keras-hub `ElectraBackbone` weights to and from our `ElectraBackbone`.

Both are built from the same Keras/keras-hub layers, so weights copy layer by
layer. Differences handled explicitly: keras-hub always uses the tanh GELU
(ours: "gelu_approximate") and adds a `pooled_dense` layer that no ELECTRA
checkpoint has (dropped when reading; left at its initialization, and
reported, when writing).
"""

from __future__ import annotations

import numpy as np

from electra_keras.conversion.report import ConversionError, ConversionReport


def _pairs(ours, theirs):
    pairs = [
        (ours.embedding.token_embedding, theirs.token_embedding),
        (ours.embedding.position_embedding, theirs.position_embedding),
        (ours.embedding.segment_embedding, theirs.segment_embedding),
        (ours.embedding.layer_norm, theirs.embeddings_layer_norm),
    ]
    if ours.embedding_projection is not None:
        pairs.append((ours.embedding_projection, theirs.embeddings_projection))
    pairs += list(zip(ours.transformer_layers, theirs.transformer_layers, strict=True))
    return pairs


def _copy(pairs, forward: bool, report: ConversionReport) -> None:
    for ours, theirs in pairs:
        source, target = (theirs, ours) if forward else (ours, theirs)
        values = source.get_weights()
        shapes = [tuple(w.shape) for w in target.weights]
        if [tuple(np.shape(v)) for v in values] != shapes:
            raise ConversionError(
                f"{source.name} does not fit {target.name}: {shapes}."
            )
        target.set_weights(values)
        report.mapped += [w.path for w in source.weights]


def from_keras_hub(backbone_or_preset) -> tuple[object, ConversionReport]:
    """Our `ElectraBackbone` from a keras-hub backbone or a local preset directory."""
    import keras_hub

    from electra_keras.models.backbone import ElectraBackbone

    theirs = backbone_or_preset
    if isinstance(theirs, str):
        theirs = keras_hub.models.ElectraBackbone.from_preset(theirs)
    report = ConversionReport()
    ours = ElectraBackbone(
        vocab_size=theirs.vocab_size,
        num_layers=theirs.num_layers,
        num_heads=theirs.num_heads,
        hidden_dim=theirs.hidden_dim,
        intermediate_dim=theirs.intermediate_dim,
        embedding_dim=theirs.embedding_dim,
        max_sequence_length=theirs.max_sequence_length,
        num_segments=theirs.num_segments,
        dropout=theirs.dropout,
        activation="gelu_approximate",
        name="discriminator",
    )
    _copy(_pairs(ours, theirs), forward=True, report=report)
    for w in theirs.pooled_dense.weights:
        report.skipped[w.path] = "keras-hub's pooler: ELECTRA classifies from token 0"
    return ours, report


def to_keras_hub(backbone) -> tuple[object, ConversionReport]:
    """A keras-hub `ElectraBackbone` with our backbone's weights.

    Raises:
        ConversionError: if the backbone's activation is not "gelu_approximate"
            (keras-hub's is fixed).
    """
    import keras_hub

    if backbone.activation != "gelu_approximate":
        raise ConversionError(
            f"keras-hub's ElectraBackbone always uses the tanh GELU; this backbone "
            f"uses {backbone.activation!r}, so its outputs would change."
        )
    theirs = keras_hub.models.ElectraBackbone(
        vocab_size=backbone.vocab_size,
        num_layers=backbone.num_layers,
        num_heads=backbone.num_heads,
        hidden_dim=backbone.hidden_dim,
        embedding_dim=backbone.embedding_dim,
        intermediate_dim=backbone.intermediate_dim,
        dropout=backbone.dropout,
        max_sequence_length=backbone.max_sequence_length,
        num_segments=backbone.num_segments,
    )
    report = ConversionReport()
    _copy(_pairs(backbone, theirs), forward=False, report=report)
    report.notices.append(
        "pooled_dense (keras-hub's pooler) is left at its random initialization: "
        "ELECTRA has no pooler; use sequence_output[:, 0] rather than pooled_output."
    )
    return theirs, report
