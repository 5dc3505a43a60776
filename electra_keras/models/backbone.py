"""`ElectraBackbone`: embeddings, optional projection and a Transformer stack."""

import keras

from electra_keras.layers.activations import get_activation
from electra_keras.layers.dense import FusedDense
from electra_keras.layers.embeddings import ElectraEmbedding, electra_initializer
from electra_keras.layers.transformer_encoder import ElectraTransformerEncoder


@keras.saving.register_keras_serializable(package="electra_keras")
class ElectraBackbone(keras.Model):
    """The ELECTRA encoder, used for both the discriminator and the generator.

    Inputs are `token_ids`, `segment_ids` and `padding_mask` (int, shape
    `[batch, seq_len]`); the output is `sequence_output` (`[batch, seq_len,
    hidden_dim]`). There is no pooler: ELECTRA classifies from token 0.

    Layer layout (one-to-one with Hugging Face's `ElectraModel` and keras-hub's
    `ElectraBackbone`): `embedding` (token, position and segment tables,
    LayerNorm, dropout), `embedding_projection` when `embedding_dim !=
    hidden_dim`, then `transformer_layer_{i}` post-LayerNorm encoder blocks.

    Args:
        vocab_size: Size of the WordPiece vocabulary.
        num_layers: Number of Transformer layers.
        num_heads: Attention heads per layer.
        hidden_dim: Width of the Transformer.
        intermediate_dim: Width of the feed-forward layers.
        embedding_dim: Width of the embedding tables.
        max_sequence_length: Rows of the position table.
        num_segments: Rows of the segment table.
        dropout: Dropout rate everywhere.
        activation: Feed-forward activation: "gelu" (exact erf form, as the
            original ELECTRA code and Hugging Face), "gelu_approximate" (tanh,
            as keras-hub) or "relu".
        layer_norm_epsilon: Epsilon of every LayerNorm.
        initializer_range: Stddev of the truncated-normal initializer (the
            embedding projection is Glorot-uniform, as in the original).
        embedding: An existing `ElectraEmbedding` to share (the generator gets
            the discriminator's). Not serialized: `ElectraPretrainer` restores
            the sharing when it is loaded.
        dtype: Dtype policy of every layer. Serialized only when given: a
            backbone built under the global policy takes the global policy
            of the process that loads it (so `--precision` decides).
    """

    def __init__(
        self,
        vocab_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        embedding_dim=None,
        max_sequence_length=512,
        num_segments=2,
        dropout=0.1,
        activation="gelu",
        layer_norm_epsilon=1e-12,
        initializer_range=0.02,
        embedding=None,
        dtype=None,
        **kwargs,
    ):
        embedding_dim = embedding_dim or hidden_dim
        if hidden_dim % num_heads:
            raise ValueError(
                f"`hidden_dim` ({hidden_dim}) must be divisible by `num_heads` "
                f"({num_heads})."
            )
        # === Layers ===
        if embedding is None:
            embedding = ElectraEmbedding(
                vocab_size=vocab_size,
                embedding_dim=embedding_dim,
                max_sequence_length=max_sequence_length,
                num_segments=num_segments,
                dropout=dropout,
                layer_norm_epsilon=layer_norm_epsilon,
                initializer_range=initializer_range,
                dtype=dtype,
                name="embedding",
            )
        else:
            shared = (embedding.vocab_size, embedding.embedding_dim)
            if shared != (vocab_size, embedding_dim):
                raise ValueError(
                    "The shared embedding has (vocab_size, embedding_dim) = "
                    f"{shared}, but this backbone was configured with "
                    f"{(vocab_size, embedding_dim)}."
                )
        self.embedding = embedding
        self.embedding_projection = None
        if embedding_dim != hidden_dim:
            # The original's `embeddings_project` is a plain `tf.layers.dense`:
            # Glorot-uniform kernel, not the truncated normal.
            self.embedding_projection = FusedDense(
                hidden_dim,
                kernel_initializer="glorot_uniform",
                dtype=dtype,
                name="embedding_projection",
            )
        self.transformer_layers = [
            ElectraTransformerEncoder(
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                activation=get_activation(activation),
                dropout=dropout,
                layer_norm_epsilon=layer_norm_epsilon,
                kernel_initializer=electra_initializer(initializer_range),
                dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]

        # === Functional Model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        segment_ids = keras.Input(shape=(None,), dtype="int32", name="segment_ids")
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        x = self.embedding(token_ids, segment_ids)
        if self.embedding_projection is not None:
            x = self.embedding_projection(x)
        for layer in self.transformer_layers:
            x = layer(x, padding_mask=padding_mask)
        super().__init__(
            inputs={
                "token_ids": token_ids,
                "segment_ids": segment_ids,
                "padding_mask": padding_mask,
            },
            outputs=x,
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.vocab_size = vocab_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.embedding_dim = embedding_dim
        self.max_sequence_length = max_sequence_length
        self.num_segments = num_segments
        self.dropout = dropout
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range
        self._dtype_argument = dtype

    @property
    def token_embedding(self):
        """The token table (`ReversibleEmbedding`), tied to the MLM head."""
        return self.embedding.token_embedding

    def get_config(self):
        config = {
            "name": self.name,
            "trainable": self.trainable,
            "vocab_size": self.vocab_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "embedding_dim": self.embedding_dim,
            "max_sequence_length": self.max_sequence_length,
            "num_segments": self.num_segments,
            "dropout": self.dropout,
            "activation": self.activation,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "initializer_range": self.initializer_range,
        }
        if self._dtype_argument is not None:
            # Not `self.dtype_policy`: a functional model's reads float32.
            policy = keras.dtype_policies.get(self._dtype_argument)
            config["dtype"] = keras.dtype_policies.serialize(policy)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
