"""`ElectraDiscriminator`: backbone + replaced-token-detection head."""

import keras

from electra_keras.layers.heads import DiscriminatorHead


@keras.saving.register_keras_serializable(package="electra_keras")
class ElectraDiscriminator(keras.Model):
    """The discriminator with its head: one "replaced" logit per token.

    The counterpart of Hugging Face's `ElectraForPreTraining`. Fine-tuning uses
    `.backbone`; the head is kept for checkpoint conversion and analysis.

    Args:
        backbone: An `ElectraBackbone`.
        head: A `DiscriminatorHead` (new if None).
    """

    def __init__(self, backbone, head=None, **kwargs):
        # === Layers ===
        self.backbone = backbone
        self.head = head or DiscriminatorHead(
            hidden_dim=backbone.hidden_dim,
            activation=backbone.activation,
            initializer_range=backbone.initializer_range,
            name="discriminator_head",
        )
        # === Functional Model ===
        inputs = {
            key: keras.Input(shape=(None,), dtype="int32", name=key)
            for key in ("token_ids", "segment_ids", "padding_mask")
        }
        logits = self.head(backbone(inputs))
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "head": keras.saving.serialize_keras_object(self.head),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        backbone = keras.saving.deserialize_keras_object(config.pop("backbone"))
        head = keras.saving.deserialize_keras_object(config.pop("head"))
        return cls(backbone=backbone, head=head, **config)
