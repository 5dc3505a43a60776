"""The embedding block that ELECTRA's generator and discriminator share."""

import keras
from keras_hub.layers import PositionEmbedding, ReversibleEmbedding

from electra_keras.layers.dropout import CounterDropout
from electra_keras.layers.layer_norm import FusedLayerNormalization


def electra_initializer(stddev: float = 0.02) -> keras.initializers.Initializer:
    """Truncated normal initializer used by BERT and ELECTRA."""
    return keras.initializers.TruncatedNormal(stddev=stddev)


@keras.saving.register_keras_serializable(package="electra_keras")
class ElectraEmbedding(keras.layers.Layer):
    """Token + position + segment embeddings, then LayerNorm and dropout.

    In ELECTRA the generator and the discriminator use one instance of this
    layer (the paper's "tied embeddings"): the same token, position and segment
    tables and the same LayerNorm. Projections to each network's width live in
    the backbones, not here.

    Args:
        vocab_size: Number of rows of the token table.
        embedding_dim: Width of all three tables.
        max_sequence_length: Rows of the position table.
        num_segments: Rows of the segment table.
        dropout: Dropout rate applied after the LayerNorm.
        layer_norm_epsilon: Epsilon of the LayerNorm.
        initializer_range: Stddev of the truncated-normal initializer.
    """

    def __init__(
        self,
        vocab_size,
        embedding_dim,
        max_sequence_length=512,
        num_segments=2,
        dropout=0.1,
        layer_norm_epsilon=1e-12,
        initializer_range=0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # === Layers ===
        self.token_embedding = ReversibleEmbedding(
            input_dim=vocab_size,
            output_dim=embedding_dim,
            embeddings_initializer=electra_initializer(initializer_range),
            dtype=self.dtype_policy,
            name="token_embedding",
        )
        self.position_embedding = PositionEmbedding(
            sequence_length=max_sequence_length,
            initializer=electra_initializer(initializer_range),
            dtype=self.dtype_policy,
            name="position_embedding",
        )
        self.segment_embedding = keras.layers.Embedding(
            input_dim=num_segments,
            output_dim=embedding_dim,
            embeddings_initializer=electra_initializer(initializer_range),
            dtype=self.dtype_policy,
            name="segment_embedding",
        )
        self.layer_norm = FusedLayerNormalization(
            epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm"
        )
        self.dropout_layer = CounterDropout(
            dropout, dtype=self.dtype_policy, name="dropout"
        )
        # === Config ===
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.max_sequence_length = max_sequence_length
        self.num_segments = num_segments
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range

    def build(self, token_ids_shape, segment_ids_shape=None):
        self.token_embedding.build(token_ids_shape)
        embedded_shape = tuple(token_ids_shape) + (self.embedding_dim,)
        self.position_embedding.build(embedded_shape)
        self.segment_embedding.build(token_ids_shape)
        self.layer_norm.build(embedded_shape)
        self.built = True

    def call(self, token_ids, segment_ids, training=None):
        tokens = self.token_embedding(token_ids)
        positions = self.position_embedding(tokens)
        segments = self.segment_embedding(segment_ids)
        x = self.layer_norm(tokens + positions + segments)
        return self.dropout_layer(x, training=training)

    def compute_output_shape(self, token_ids_shape, segment_ids_shape=None):
        return tuple(token_ids_shape) + (self.embedding_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocab_size": self.vocab_size,
                "embedding_dim": self.embedding_dim,
                "max_sequence_length": self.max_sequence_length,
                "num_segments": self.num_segments,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "initializer_range": self.initializer_range,
            }
        )
        return config
