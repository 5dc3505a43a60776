"""A custom `train_step`/`test_step` that XLA-compiles per replica.

Keras's `compile(jit_compile=True)` compiles the whole replicated step,
optimizer update included, which fails under `MirroredStrategy` ("Trying to
access resource ... located in device CPU:1 from device CPU:0") and under
multi-worker training (no `CollectiveGatherV2` XLA kernel). Here the model is
compiled with `jit_compile=False` and only the per-replica forward + backward
pass is a `tf.function(jit_compile=True)`. Cross-replica work (count and
gradient all-reduce, the optimizer update) stays outside XLA, where
`tf.distribute` handles it.

Exactness under distribution:
- losses are sums over the local batch divided by *global* counts (all-reduced
  before the XLA call), so summing replica gradients gives the gradient of
  the global-batch mean, whatever the split;
- gradients are all-reduced here and clipped by their *global* norm before the
  optimizer sees them (Keras would clip each replica's partial gradient);
- trackers receive global values (no division by the replica count);
- randomness is keyed by each example's global index (`counter_random`).
"""

from __future__ import annotations

import tensorflow as tf

from electra_keras.pretraining import masking
from electra_keras.training.optimizer import dense_gradients
from electra_keras.training.strategy import resolve_xla

_SCALAR_KEYS = (
    "mlm_loss_sum",
    "mlm_count",
    "mlm_correct",
    "sampled_correct",
    "disc_loss_sum",
    "disc_count",
    "disc_correct",
    "replaced_count",
)


class ReplicaXlaStepMixin:
    """Mixin for `ElectraPretrainer` providing the distributed XLA step.

    The host class implements `compute_pretraining_outputs`, `combine_losses`
    and `update_trackers`, and has `mask_prob`, `max_predictions_per_seq` and
    the special ids.
    """

    def compile(self, optimizer="adamw", xla: bool | None = None, **kwargs):
        """Like `keras.Model.compile`, with `xla` controlling the replica step.

        Args:
            optimizer: A Keras optimizer (see `training.optimizer`).
            xla: Compile the forward + backward pass with XLA. None: `--xla auto`
                (`training.strategy.resolve_xla`). `jit_compile=True/False`
                is accepted as a synonym.
            **kwargs: Passed to `keras.Model.compile` (e.g.
                `steps_per_execution`). Losses and metrics are built in.
        """
        jit = kwargs.pop("jit_compile", None)
        if xla is None:
            xla = jit if isinstance(jit, bool) else resolve_xla("auto")
        self.xla = bool(xla)
        self._replica_fns = {}
        # Sampling runs an exponential, a max and a sum over every vocabulary
        # entry of every predicted slot: elementwise work that XLA fuses into
        # a few loops, so it is compiled even when `xla` is off (on 2 CPU
        # cores at [32, 19, 30522]: 127 ms instead of 357).
        self._fused_sampler = tf.function(
            self.sample_replacements, jit_compile=True, reduce_retracing=True
        )
        super().compile(optimizer=optimizer, jit_compile=False, **kwargs)
        # Build the optimizer now, before the step is traced: a
        # LossScaleOptimizer that is not built yet scales the loss by its
        # *initial* scale as a constant, which the trace would keep forever.
        with self.distribute_strategy.scope():
            if not self.optimizer.built:
                self.optimizer.build(self.trainable_variables)

    def evaluate(self, x=None, y=None, *args, steps=None, **kwargs):
        """`keras.Model.evaluate`, refusing data that Keras 3.15 miscounts.

        On a `tf.data.Dataset` of unknown cardinality (a TFRecord file, a
        `filter`) and no `steps`, Keras 3.15 runs one extra step after the
        data ends and averages a zero into every `Mean` metric (MLM loss,
        accuracies: 1/(n+1) too low over n batches).
        """
        _check_eval_data(x, steps, "evaluate()", "steps")
        return super().evaluate(x, y, *args, steps=steps, **kwargs)

    def fit(self, *args, validation_data=None, validation_steps=None, **kwargs):
        """`keras.Model.fit`, checking `validation_data` as `evaluate` does."""
        _check_eval_data(validation_data, validation_steps, "fit()", "validation_steps")
        return super().fit(
            *args,
            validation_data=validation_data,
            validation_steps=validation_steps,
            **kwargs,
        )

    def get_compile_config(self):
        # The optimizer is saved with the weights; a loaded pretrainer is
        # compiled again by the caller (e.g. to resume with a new schedule).
        return None

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Nothing to build: every layer is built in `__init__` and the
        # optimizer in `compile()`. Keras' default builds symbolically from a
        # data batch, which fails under MultiWorkerMirroredStrategy in Keras
        # 3.15 ("Attempt to convert a value (PerReplica...)",
        # tensorflow/tensorflow#72388).
        return

    # --- per-replica compiled functions --------------------------------------

    def _replica_fn(self, training: bool):
        key = "train" if training else "test"
        if key not in getattr(self, "_replica_fns", {}):
            fn = self._grad_fn if training else self._eval_fn
            self._replica_fns[key] = tf.function(
                fn, jit_compile=getattr(self, "xla", False), reduce_retracing=True
            )
        return self._replica_fns[key]

    def _grad_fn(self, inputs, step, row_ids, mlm_count, disc_count):
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            outputs = self.compute_pretraining_outputs(
                inputs, step, row_ids, training=True
            )
            loss = self.combine_losses(outputs, mlm_count, disc_count)
            scaled = self.optimizer.scale_loss(loss)
        # Dense, so that the global norm and the cross-replica sum are the
        # summed gradient's (`optimizer.dense_gradients`).
        grads = dense_gradients(tape.gradient(scaled, variables))
        return outputs, grads

    def _eval_fn(self, inputs, step, row_ids):
        return self.compute_pretraining_outputs(inputs, step, row_ids, training=False)

    # --- cross-replica helpers ---------------------------------------------

    def _local_counts(self, inputs):
        """Predicted slots and real tokens in the local batch (cheap, no XLA)."""
        token_ids = tf.cast(inputs["token_ids"], tf.int32)
        padding_mask = tf.cast(inputs["padding_mask"], tf.int32)
        specials = (self.pad_id, self.cls_id, self.sep_id, self.mask_id)
        candidates = masking.candidate_mask(token_ids, padding_mask, specials)
        counts = masking.num_to_predict(
            padding_mask, candidates, self.mask_prob, self.max_predictions_per_seq
        )
        return tf.cast(tf.reduce_sum(counts), tf.float32), tf.reduce_sum(
            tf.cast(padding_mask, tf.float32)
        )

    @staticmethod
    def _row_ids(inputs, ctx):
        batch = inputs["token_ids"].shape[0]
        if batch is None:
            raise ValueError(
                "Pretraining needs a static batch size: batch the dataset with "
                "`drop_remainder=True` (the library's pipelines do)."
            )
        offset = tf.cast(ctx.replica_id_in_sync_group, tf.int32) * batch
        return offset + tf.range(batch, dtype=tf.int32)

    def _global_totals(self, outputs, ctx):
        keys = [k for k in _SCALAR_KEYS if k in outputs]
        local = tf.stack([tf.cast(outputs[k], tf.float32) for k in keys])
        total = ctx.all_reduce(tf.distribute.ReduceOp.SUM, local)
        return {k: total[i] for i, k in enumerate(keys)}

    def _reduce_and_clip(self, grads, ctx):
        """All-reduces gradients and clips them by their global norm.

        Keras's optimizer all-reduces (sums) again and clips per replica; the
        gradients handed to it are divided by the replica count and already
        clipped, so its sum reproduces the clipped global gradient and its own
        clipping is a no-op.
        """
        replicas = ctx.num_replicas_in_sync
        if replicas == 1:
            return grads
        grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        optimizer = self.optimizer
        inner = getattr(optimizer, "inner_optimizer", optimizer)
        clipnorm = getattr(inner, "global_clipnorm", None)
        if clipnorm:
            scale = tf.cast(getattr(optimizer, "dynamic_scale", 1.0), tf.float32)
            norm = tf.linalg.global_norm(grads) / scale
            factor = tf.minimum(1.0, clipnorm / tf.maximum(norm, 1e-12))
            grads = [g * tf.cast(factor, g.dtype) for g in grads]
        return [g / replicas for g in grads]

    # --- Keras hooks ---------------------------------------------------------

    def train_step(self, data):
        inputs = _unpack(data)
        ctx = tf.distribute.get_replica_context()
        step = tf.convert_to_tensor(self.optimizer.iterations)
        row_ids = self._row_ids(inputs, ctx)
        counts = tf.stack(self._local_counts(inputs))
        mlm_count, disc_count = tf.unstack(
            ctx.all_reduce(tf.distribute.ReduceOp.SUM, counts)
        )
        outputs, grads = self._replica_fn(training=True)(
            inputs, step, row_ids, mlm_count, disc_count
        )
        grads = self._reduce_and_clip(list(grads), ctx)
        self.optimizer.apply(grads, self.trainable_variables)
        self.update_trackers(self._global_totals(outputs, ctx), outputs)
        return self._logs()

    def test_step(self, data):
        inputs = _unpack(data)
        ctx = tf.distribute.get_replica_context()
        # A fixed "step" for evaluation: the same masks at every evaluation.
        step = tf.constant(0, tf.int64)
        row_ids = self._row_ids(inputs, ctx)
        outputs = self._replica_fn(training=False)(inputs, step, row_ids)
        self.update_trackers(self._global_totals(outputs, ctx), outputs)
        return self._logs()

    def _logs(self):
        logs = {m.name: m.result() for m in self.metrics}
        if _is_multi_worker(tf.distribute.get_strategy()):
            # Keras reduces logs with `strategy.reduce("MEAN", v, axis=0)` across
            # workers, which fails on scalars ("Invalid reduction dimension 0");
            # the trackers already hold global values, so a [1]-vector per
            # replica averages back to the same scalar.
            logs = {k: tf.reshape(v, [1]) for k, v in logs.items()}
        return logs

    def predict_step(self, data):
        return self(_unpack(data), training=False)


def _check_eval_data(data, steps, where: str, steps_name: str) -> None:
    if (
        steps is None
        and isinstance(data, tf.data.Dataset)
        and int(data.cardinality()) == tf.data.UNKNOWN_CARDINALITY
    ):
        raise ValueError(
            f"{where} got an evaluation dataset of unknown cardinality and no "
            f"`{steps_name}`: Keras 3.15 would average an extra zero step into every "
            f"mean metric. Pass `{steps_name}=N`, or give the dataset a known size "
            "(`.apply(tf.data.experimental.assert_cardinality(N))`)."
        )


def _unpack(data):
    if isinstance(data, (tuple, list)):
        data = data[0]
    if not isinstance(data, dict):
        raise TypeError(
            "Pretraining batches must be dicts with `token_ids`, `segment_ids` "
            f"and `padding_mask`; got {type(data).__name__}."
        )
    return data


def _is_multi_worker(strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        strategy.extended._in_multi_worker_mode()  # noqa: SLF001
    )
