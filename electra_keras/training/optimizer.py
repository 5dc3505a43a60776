"""The pretraining optimizer: AdamW with ELECTRA's schedule, decay and clipping.

Follows google-research/electra's `create_optimizer`: Adam with beta_1 0.9,
beta_2 0.999, epsilon 1e-6, decoupled weight decay (`lr * weight_decay * var`,
applied to the pre-update value) that skips LayerNorm and bias variables, and
gradient clipping by global norm 1.0. Notes on matching the original:

- Like the original (and unlike Keras `AdamW`), Adam's moments get no bias
  correction (`ElectraAdamW(bias_correction=False)`, the default here); with
  correction, early updates would be smaller by `sqrt(1 - 0.999**t) /
  (1 - 0.9**t)` (0.32 at step 1). `amsgrad` is not supported without it.
- Under `tf.distribute`, Keras alone would clip each replica's partial
  gradient before the cross-replica sum. `ElectraPretrainer`'s step
  (`training.replica_step`) all-reduces and clips by the global norm first,
  so clipping acts on the global gradient, as on one device.

How Keras 3.15 chooses the variables to decay: `exclude_from_weight_decay(
var_names=...)` joins the strings into one regular expression and
`re.search`es it in the variable's name. With the TensorFlow backend that name
is the `tf.Variable`'s: the full path plus ":0" (`encoder/layer_0/
self_attention_layer_norm/gamma:0`). Under `tf.distribute` the check is made
on a replica's copy, whose name may be `dense/bias/replica_1:0` (Keras caches
the answer per mirrored variable, so the first copy seen decides). The
patterns below therefore match the last path component only (so a layer whose
*name* contains "bias" or "beta" keeps decay on its kernel) and allow the
replica and ":N" suffixes, so that the answer is the same for every copy.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from electra_keras.config import PretrainingConfig
from electra_keras.training.schedules import WarmupLinearDecay

_SUFFIX = r"(?:/replica_\d+)?(?::\d+)?$"

# Variables named like these get no weight decay: every bias (`bias` of Dense
# and EinsumDense, `output_bias` of keras-hub's MaskedLMHead) and the LayerNorm
# scale and offset (`gamma`, `beta`). Kernels and embedding tables are decayed.
WEIGHT_DECAY_EXCLUDE_PATTERNS = (
    r"(?:^|/)[^/]*bias" + _SUFFIX,
    r"(?:^|/)(?:gamma|beta)" + _SUFFIX,
)


def dense_gradients(grads: Sequence[Any]) -> list[Any]:
    """`grads` with every `tf.IndexedSlices` (the gradient of a gather) summed
    into a dense tensor; None and dense gradients pass through.

    The norm of an `IndexedSlices`' values is not its gradient's norm when an
    index repeats (a segment id, a frequent token): 4,096 rows of the two
    segment ids hold one gradient row each per token. The Adam update reads
    the whole table anyway, so the dense sum costs no extra pass over it.
    """
    return [
        tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads
    ]


@functools.cache
def _adam_kernel(beta_1: float, beta_2: float, epsilon: float, decay: float | None):
    """ELECTRA's Adam update of one variable as one XLA kernel.

    Op by op, the update is about fifteen TensorFlow kernels per variable,
    each a pass over the variable's size (and, for the embedding table, its
    4M elements); fused it is one pass. Returns `(m, v, variable)` updated.
    """

    @tf.function(jit_compile=True, autograph=False)
    def kernel(gradient, variable, m, v, learning_rate):
        m = m + (gradient - m) * (1 - beta_1)
        v = v + (tf.square(gradient) - v) * (1 - beta_2)
        if decay:
            variable = variable - variable * decay * learning_rate
        variable = variable - learning_rate * m / (tf.sqrt(v) + epsilon)
        return m, v, variable

    return kernel


@keras.saving.register_keras_serializable(package="electra_keras")
class ElectraAdamW(keras.optimizers.AdamW):
    """Keras `AdamW` that keeps its weight-decay exclusions in its config.

    Keras' `exclude_from_weight_decay()` is not part of `get_config()`, so an
    optimizer restored from a saved model would decay every variable. This
    subclass takes the patterns as a constructor argument and saves them.

    Args:
        *args: Positional arguments of `keras.optimizers.AdamW`.
        weight_decay_exclude: Regular expressions `re.search`ed in variable
            names (see the module docstring); matching variables get no decay.
        **kwargs: Keyword arguments of `keras.optimizers.AdamW`.
    """

    def __init__(
        self,
        *args: Any,
        weight_decay_exclude: Sequence[str] = WEIGHT_DECAY_EXCLUDE_PATTERNS,
        bias_correction: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.weight_decay_exclude = tuple(weight_decay_exclude)
        self.bias_correction = bias_correction
        self.exclude_from_weight_decay(var_names=list(self.weight_decay_exclude))

    @property
    def fused_update(self) -> bool:
        """Whether `update_step` runs the fused kernel, which also applies the
        weight decay (with the learning rate it is given): true without bias
        correction; Keras' own `AdamW` update otherwise."""
        return not self.bias_correction

    def _apply_weight_decay(self, variables):
        if not self.fused_update:
            super()._apply_weight_decay(variables)

    def update_step(self, gradient, variable, learning_rate):
        if not self.fused_update:
            return super().update_step(gradient, variable, learning_rate)
        # ELECTRA's AdamWeightDecayOptimizer: Adam moments without bias
        # correction, `var -= lr * m / (sqrt(v) + epsilon)`, after Keras'
        # decoupled decay `var -= var * weight_decay * lr`; one fused kernel.
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        decay = self.weight_decay if self._use_weight_decay(variable) else None
        kernel = _adam_kernel(self.beta_1, self.beta_2, self.epsilon, decay)
        new_m, new_v, new_variable = kernel(
            tf.cast(gradient, variable.dtype),
            tf.convert_to_tensor(variable),
            tf.convert_to_tensor(m),
            tf.convert_to_tensor(v),
            tf.cast(learning_rate, variable.dtype),
        )
        self.assign(m, new_m)
        self.assign(v, new_v)
        self.assign(variable, new_variable)

    def _clip_gradients(self, grads):
        # Norms of the summed gradient, as the original's (its lookups are
        # one-hot matmuls, their gradients dense): Keras' norm of a gather's
        # `IndexedSlices` counts one row per occurrence, not per table row.
        if self.clipnorm or self.global_clipnorm:
            grads = dense_gradients(grads)
        return super()._clip_gradients(grads)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["weight_decay_exclude"] = list(self.weight_decay_exclude)
        config["bias_correction"] = self.bias_correction
        return config


def create_optimizer(
    config: PretrainingConfig | None = None,
    *,
    learning_rate: float | None = None,
    warmup_steps: int | None = None,
    train_steps: int | None = None,
    weight_decay: float | None = None,
    adam_epsilon: float | None = None,
    clipnorm: float | None = None,
    mixed_precision: str | None = None,
) -> keras.optimizers.Optimizer:
    """Builds ELECTRA's AdamW optimizer with a warm-up/linear-decay schedule.

    Each keyword argument, when given, overrides the field of the same name in
    `config` (and is validated the same way).

    Args:
        config: Pretraining config; `PretrainingConfig()` defaults when None.
        learning_rate: Peak learning rate.
        warmup_steps: Linear warm-up steps.
        train_steps: Steps until the learning rate reaches 0.
        weight_decay: Decoupled weight decay rate (not applied to LayerNorm
            and bias variables, see `WEIGHT_DECAY_EXCLUDE_PATTERNS`).
        adam_epsilon: Adam's epsilon.
        clipnorm: Global-norm gradient clipping; 0 turns clipping off.
        mixed_precision: "float32", "mixed_bfloat16" or "mixed_float16"; the
            last wraps the optimizer in a dynamic `LossScaleOptimizer`. Steps
            it skips (non-finite gradients) do not advance the schedule.

    Returns:
        An `ElectraAdamW` (a `keras.optimizers.AdamW`), or a
        `keras.optimizers.LossScaleOptimizer` around one.
    """
    overrides = {
        "learning_rate": learning_rate,
        "warmup_steps": warmup_steps,
        "train_steps": train_steps,
        "weight_decay": weight_decay,
        "adam_epsilon": adam_epsilon,
        "clipnorm": clipnorm,
        "mixed_precision": mixed_precision,
    }
    config = (config or PretrainingConfig()).replace(
        **{k: v for k, v in overrides.items() if v is not None}
    )
    if config.weight_decay < 0:
        raise ValueError(f"`weight_decay` must be >= 0, got {config.weight_decay}.")
    if config.clipnorm < 0:
        raise ValueError(f"`clipnorm` must be >= 0, got {config.clipnorm}.")

    schedule = WarmupLinearDecay(
        peak_learning_rate=config.learning_rate,
        warmup_steps=config.warmup_steps,
        train_steps=config.train_steps,
    )
    optimizer = ElectraAdamW(
        learning_rate=schedule,
        weight_decay=config.weight_decay,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=config.adam_epsilon,
        global_clipnorm=config.clipnorm or None,
        bias_correction=config.adam_bias_correction,
    )
    if config.mixed_precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
