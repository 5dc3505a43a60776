"""`ElectraMaskedLM`: a backbone with the tied masked-LM head (the generator)."""

import keras
from keras_hub.layers import MaskedLMHead

from electra_keras.layers.activations import get_activation
from electra_keras.layers.embeddings import electra_initializer


@keras.saving.register_keras_serializable(package="electra_keras")
class ElectraMaskedLM(keras.Model):
    """Masked-LM logits at given positions: the counterpart of `ElectraForMaskedLM`.

    Inputs are the backbone's three plus `mask_positions` (int `[batch,
    num_slots]`); the output is `[batch, num_slots, vocab_size]` logits from
    keras-hub's `MaskedLMHead` (dense to the embedding width, gelu, LayerNorm,
    then the transposed token table plus a bias).

    Args:
        backbone: An `ElectraBackbone` (the generator's).
        head: A `MaskedLMHead` tied to `backbone.token_embedding` (new if None).
        head_activation: Activation of the head's dense layer when it is new
            ("gelu" as the original code and Hugging Face, "gelu_approximate" as keras-hub).
    """

    def __init__(self, backbone, head=None, head_activation="gelu", **kwargs):
        # === Layers ===
        self.backbone = backbone
        self.head = head or MaskedLMHead(
            token_embedding=backbone.token_embedding,
            intermediate_activation=get_activation(head_activation),
            layer_norm_epsilon=backbone.layer_norm_epsilon,
            kernel_initializer=electra_initializer(backbone.initializer_range),
            name="generator_head",
        )
        # === Functional Model ===
        inputs = {
            key: keras.Input(shape=(None,), dtype="int32", name=key)
            for key in ("token_ids", "segment_ids", "padding_mask", "mask_positions")
        }
        sequence = backbone(
            {k: inputs[k] for k in ("token_ids", "segment_ids", "padding_mask")}
        )
        logits = self.head(sequence, mask_positions=inputs["mask_positions"])
        super().__init__(inputs=inputs, outputs=logits, **kwargs)
        # === Config ===
        self.head_activation = head_activation

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "head_activation": self.head_activation,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        backbone = keras.saving.deserialize_keras_object(config.pop("backbone"))
        return cls(backbone=backbone, **config)
