"""The fine-tuning optimizer: AdamW with layer-wise learning-rate decay.

ELECTRA fine-tunes with lower learning rates for lower layers (Clark et al.,
2020, Appendix B; google-research/electra `model/optimization.py`,
`_get_layer_lrs`). As there, each variable gets a depth: 0 for the embeddings
and the embedding projection, `i + 1` for Transformer layer `i`, `L + 2` for
the task head (for a backbone of `L` layers), and trains at
`lr * decay ** (L + 2 - depth)`:

    task head (and anything not in the backbone)   lr
    transformer layer i (0-based, i = 0 .. L-1)    lr * decay ** (L + 1 - i)
    embeddings and the embedding projection        lr * decay ** (L + 2)

So the top Transformer layer is already two factors of `decay` below the head
(depth `L + 1` is a pooler's, which ELECTRA's classifier does not have), and
with decay 0.8 and 12 layers the embeddings train at 0.8**14 = 0.044 of lr.

Keras 3 optimizers have one learning rate, so `LayerwiseAdamW` multiplies the
learning rate of each variable's update (Adam step and decoupled weight decay
alike, as the original's per-layer rate does) by a per-variable factor. The
factors are keyed by variable path (`variable.path`) and kept in the config.
Scaling gradients instead would do nothing: Adam's step is invariant to the
scale of the gradient.

Gradients are clipped by their global norm (1.0, as the original). Under
`tf.distribute`, Keras 3.15 would clip each replica's partial gradient before
the cross-replica sum; `LayerwiseAdamW` clips the summed gradient instead, so
several replicas clip the same gradient as one device does.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from electra_keras.training.optimizer import ElectraAdamW
from electra_keras.training.schedules import WarmupLinearDecay


def layerwise_lr_multipliers(
    model: keras.Model, layerwise_lr_decay: float
) -> dict[str, float]:
    """Learning-rate factors of a model's backbone variables, keyed by path.

    Args:
        model: an `ElectraClassifier` (anything with a `.backbone`) or an
            `ElectraBackbone`.
        layerwise_lr_decay: the decay per layer (1.0: all factors are 1).

    Returns:
        `{variable.path: factor}` for every backbone variable; variables not
        listed (the classifier head) train at the full learning rate.
    """
    if not 0.0 < layerwise_lr_decay <= 1.0:
        raise ValueError(
            f"`layerwise_lr_decay` must be in (0, 1], got {layerwise_lr_decay}."
        )
    backbone = getattr(model, "backbone", model)
    num_layers = len(backbone.transformer_layers)
    multipliers: dict[str, float] = {}
    embedding_layers = [backbone.embedding]
    if backbone.embedding_projection is not None:
        embedding_layers.append(backbone.embedding_projection)
    head_depth = num_layers + 2

    def factor(depth: int) -> float:
        return layerwise_lr_decay ** (head_depth - depth)

    for layer in embedding_layers:
        for variable in layer.weights:
            multipliers[variable.path] = factor(0)
    for index, layer in enumerate(backbone.transformer_layers):
        for variable in layer.weights:
            multipliers[variable.path] = factor(index + 1)
    paths = [v.path for v in model.weights]
    if len(set(paths)) != len(paths):
        raise ValueError(
            "The model has several variables with the same path; layer-wise "
            "learning rates are keyed by path. Give its layers unique names."
        )
    return multipliers


@keras.saving.register_keras_serializable(package="electra_keras")
class LayerwiseAdamW(ElectraAdamW):
    """`ElectraAdamW` whose learning rate is scaled per variable.

    Args:
        *args: positional arguments of `ElectraAdamW`.
        lr_multipliers: `{variable.path: factor}`; variables not listed get 1.
        **kwargs: keyword arguments of `ElectraAdamW`.
    """

    def __init__(
        self,
        *args: Any,
        lr_multipliers: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lr_multipliers = {
            str(k): float(v) for k, v in (lr_multipliers or {}).items()
        }
        self._multipliers_by_index: list[float] = []

    def build(self, var_list):
        super().build(var_list)
        self._multipliers_by_index = [
            self.lr_multipliers.get(variable.path, 1.0) for variable in var_list
        ]

    def multiplier(self, variable) -> float:
        """The factor of a variable the optimizer was built with."""
        return self._multipliers_by_index[self._get_variable_index(variable)]

    def _clip_gradients(self, grads):
        # With several replicas, clip after the all-reduce (below) instead.
        if _replicas_in_sync() > 1:
            return grads
        return super()._clip_gradients(grads)

    def _all_reduce_sum_gradients(self, grads_and_vars):
        reduced = super()._all_reduce_sum_gradients(grads_and_vars)
        if _replicas_in_sync() <= 1:
            return reduced
        present = [g for g, _ in reduced if g is not None]
        clipped = iter(super()._clip_gradients(present))
        return [(None if g is None else next(clipped), v) for g, v in reduced]

    def update_step(self, gradient, variable, learning_rate):
        factor = self.multiplier(variable)
        if factor != 1.0:
            learning_rate = learning_rate * factor
        return super().update_step(gradient, variable, learning_rate)

    def _apply_weight_decay(self, variables):
        # Keras' TF version with the per-variable factor on the learning rate.
        # The fused update decays with the learning rate `update_step` scales.
        if self.weight_decay is None or self.fused_update:
            return

        def apply(distribution, variables, **kwargs):
            for variable in variables:
                factor = self.multiplier(variable)

                def decay(value, factor=factor):
                    if self._use_weight_decay(value):
                        lr = tf.cast(self.learning_rate, value.dtype) * factor
                        wd = tf.cast(self.weight_decay, value.dtype)
                        value.assign_sub(value * wd * lr)

                if isinstance(variable, keras.Variable):
                    variable = variable.value
                distribution.extended.update(variable, decay, group=False)

        tf.__internal__.distribute.interim.maybe_merge_call(
            apply, self._distribution_strategy, variables
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["lr_multipliers"] = dict(self.lr_multipliers)
        return config


def _replicas_in_sync() -> int:
    """Replicas of the current replica context (1 outside `tf.distribute`)."""
    context = tf.distribute.get_replica_context()
    return 1 if context is None else context.num_replicas_in_sync


def create_finetuning_optimizer(
    model: keras.Model,
    learning_rate: float = 1e-4,
    train_steps: int | None = None,
    warmup_fraction: float = 0.1,
    layerwise_lr_decay: float = 0.8,
    weight_decay: float = 0.01,
    adam_epsilon: float = 1e-6,
    clipnorm: float = 1.0,
) -> LayerwiseAdamW:
    """ELECTRA's fine-tuning optimizer for `model`.

    Args:
        model: an `ElectraClassifier` (or a model with a `.backbone`).
        learning_rate: peak learning rate of the head.
        train_steps: total optimizer steps: warm-up over `warmup_fraction` of
            them, then linear decay to 0. None: a constant learning rate.
        warmup_fraction: fraction of `train_steps` spent warming up.
        layerwise_lr_decay: per-layer decay of the learning rate (see the
            module docstring); 1.0 turns it off.
        weight_decay: decoupled weight decay (not on LayerNorm or biases).
        adam_epsilon: Adam's epsilon.
        clipnorm: global-norm gradient clipping; 0 turns it off.

    Returns:
        A `LayerwiseAdamW` (Adam without bias correction, as ELECTRA).
    """
    if learning_rate <= 0:
        raise ValueError(f"`learning_rate` must be positive, got {learning_rate}.")
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(f"`warmup_fraction` must be in [0, 1), got {warmup_fraction}.")
    if weight_decay < 0 or clipnorm < 0:
        raise ValueError("`weight_decay` and `clipnorm` must be >= 0.")
    schedule: Any = learning_rate
    if train_steps is not None:
        if train_steps <= 0:
            raise ValueError(f"`train_steps` must be positive, got {train_steps}.")
        schedule = WarmupLinearDecay(
            peak_learning_rate=learning_rate,
            warmup_steps=int(warmup_fraction * train_steps),
            train_steps=train_steps,
        )
    return LayerwiseAdamW(
        learning_rate=schedule,
        weight_decay=weight_decay,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=adam_epsilon,
        global_clipnorm=clipnorm or None,
        lr_multipliers=layerwise_lr_multipliers(model, layerwise_lr_decay),
    )
