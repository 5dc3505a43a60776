"""`ElectraPretrainer`: generator + discriminator trained jointly.

The forward pass of one step (masking, generator, sampling, discriminator,
losses) is written in `keras.ops` here; the TensorFlow-specific step that
computes gradients with XLA per replica and reduces them across replicas is
in `electra_keras.training.replica_step`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import keras
from keras import ops
from keras_hub.layers import MaskedLMHead

from electra_keras.config import ConfigError, PretrainingConfig
from electra_keras.layers.activations import get_activation
from electra_keras.layers.dense import FusedDense
from electra_keras.layers.embeddings import electra_initializer
from electra_keras.layers.heads import DiscriminatorHead
from electra_keras.layers.subclassing import use_subclass
from electra_keras.models.backbone import ElectraBackbone
from electra_keras.pretraining import counter_random, losses, masking, sampling
from electra_keras.training.replica_step import ReplicaXlaStepMixin

# Independent random streams of one step.
_STREAM_POSITIONS, _STREAM_DECISION, _STREAM_RANDOM_IDS, _STREAM_SAMPLING = range(4)

INPUT_KEYS = ("token_ids", "segment_ids", "padding_mask")


@keras.saving.register_keras_serializable(package="electra_keras")
class ElectraPretrainer(ReplicaXlaStepMixin, keras.Model):
    """Replaced-token-detection pretraining (or plain MLM) with `fit()`.

    Each step masks the batch in-graph (dynamic masking), runs the generator
    (a small masked language model sharing the discriminator's embeddings),
    samples replacements from its softmax, and trains the
    discriminator to spot them:
    `loss = mlm_weight * mlm_loss + disc_weight * disc_loss`.

    With `electra_objective=False` the generator and the discriminator head are
    dropped and the discriminator-sized backbone is trained with MLM alone
    (BERT), on the same code path, for comparisons at equal compute.

    Args:
        discriminator: `ElectraBackbone`, the model kept after pretraining.
        generator: `ElectraBackbone` sharing `discriminator.embedding`, or None
            when `electra_objective=False`.
        pad_id, cls_id, sep_id, mask_id: Special token ids of the vocabulary.
        max_predictions_per_seq: Static number of predicted slots per example.
        mask_prob: Fraction of real tokens chosen for prediction.
        mask_token_rate: Of the chosen, fraction replaced by [MASK].
        random_token_rate: Of the chosen, fraction replaced by a random token.
        temperature: Sampling temperature of the generator's softmax.
        mlm_weight: Weight of the generator's MLM loss.
        disc_weight: Weight of the discriminator's loss (the paper's lambda).
        electra_objective: False trains plain MLM on the discriminator.
        seed: Seed of masking and sampling (see `counter_random`).
    """

    def __init__(
        self,
        discriminator,
        generator=None,
        pad_id=0,
        cls_id=2,
        sep_id=3,
        mask_id=4,
        max_predictions_per_seq=19,
        mask_prob=0.15,
        mask_token_rate=0.85,
        random_token_rate=0.0,
        temperature=1.0,
        mlm_weight=1.0,
        disc_weight=50.0,
        electra_objective=True,
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if electra_objective and generator is None:
            raise ValueError("`electra_objective=True` needs a `generator` backbone.")
        if generator is not None and generator.embedding is not discriminator.embedding:
            raise ValueError(
                "The generator must share the discriminator's embedding layer: "
                "build it with `embedding=discriminator.embedding`."
            )
        # === Layers ===
        self.discriminator = discriminator
        self.generator = generator if electra_objective else None
        mlm_backbone = self.generator or self.discriminator
        self.generator_head = MaskedLMHead(
            token_embedding=discriminator.token_embedding,
            intermediate_activation=get_activation(discriminator.activation),
            layer_norm_epsilon=discriminator.layer_norm_epsilon,
            kernel_initializer=electra_initializer(discriminator.initializer_range),
            dtype=discriminator.dtype_policy,
            name="generator_head",
        )
        self.discriminator_head = None
        if electra_objective:
            self.discriminator_head = DiscriminatorHead(
                hidden_dim=discriminator.hidden_dim,
                activation=discriminator.activation,
                initializer_range=discriminator.initializer_range,
                dtype=discriminator.dtype_policy,
                name="discriminator_head",
            )
        # Build every layer now: under tf.distribute the optimizer only knows
        # the variables that exist when it is built.
        self.generator_head.build((None, None, mlm_backbone.hidden_dim))
        # keras-hub's head builds a `keras.layers.Dense`, whose bias gradient
        # TensorFlow sums in bfloat16 under mixed precision (`FusedDense`).
        use_subclass(
            self.generator_head._intermediate_dense, keras.layers.Dense, FusedDense
        )
        if self.discriminator_head is not None:
            self.discriminator_head.build((None, None, discriminator.hidden_dim))

        # === Config ===
        self.pad_id = pad_id
        self.cls_id = cls_id
        self.sep_id = sep_id
        self.mask_id = mask_id
        self.max_predictions_per_seq = max_predictions_per_seq
        self.mask_prob = mask_prob
        self.mask_token_rate = mask_token_rate
        self.random_token_rate = random_token_rate
        self.temperature = temperature
        self.mlm_weight = mlm_weight
        self.disc_weight = disc_weight
        self.electra_objective = electra_objective
        self.seed = seed
        # The `PretrainingConfig` this model was built from, when it was (by
        # `from_preset` or `from_config_object`): `compile()` takes its
        # optimizer and schedule from it. Not saved: a run keeps config.json.
        self.pretraining_config = None
        self._create_trackers()
        self.built = True

    # --- construction -------------------------------------------------------

    @classmethod
    def from_preset(
        cls,
        preset: str | os.PathLike,
        vocabulary: Sequence[str] | str | os.PathLike | None = None,
        **overrides: Any,
    ) -> ElectraPretrainer:
        """A pretrainer of a size preset, or of a pretraining run to continue.

        From a size preset name the model is new (random weights), sized by
        `get_preset(name)` with `overrides`, its vocabulary size and special
        token ids read from `vocabulary`. From a run directory (what
        `electra-keras pretrain` writes) it is the run's model, rebuilt from
        its config.json and vocab.txt, compiled, with the weights and
        optimizer state (step count, Adam moments) of its pretrainer.keras or
        newest checkpoint: `fit()` continues the run's schedule.

        Either way `pretraining_config` holds the config, and `compile()`
        (no arguments) uses its optimizer: AdamW, warm-up and linear decay
        over `train_steps`.

            model = ElectraPretrainer.from_preset("small", vocabulary="vocab.txt")
            model = ElectraPretrainer.from_preset("tiny", vocabulary="vocab.txt",
                                                  num_layers=4, batch_size=64)
            model = ElectraPretrainer.from_preset("runs/pretrain", train_steps=2000)

        Args:
            preset: "tiny", "small", "base" or "large", or a run directory.
            vocabulary: a vocab.txt path or a list of tokens; needed with a
                size preset, and must be the run's own with a run directory.
            **overrides: config fields to change (see `apply_overrides`):
                `PretrainingConfig` fields (`batch_size`, `learning_rate`) and
                `ModelConfig` fields (`num_layers`, `dropout`). A run directory
                takes only those that leave the trained model as it is.

        Raises:
            PresetError: an unknown preset or path, no vocabulary for a size
                preset, a run with nothing saved yet.
            VocabularyError: the vocabulary lacks a special token ([PAD],
                [UNK], [CLS], [SEP], [MASK]; the message names it).
            ConfigError: an unknown or invalid override.
        """
        from electra_keras import preset_sources
        from electra_keras.config import apply_overrides, get_preset
        from electra_keras.data.vocab import (
            check_vocabulary,
            load_vocabulary,
            special_token_ids,
        )
        from electra_keras.models.preset_loading import load_run_pretrainer

        source = preset_sources.resolve_source(
            preset,
            (preset_sources.SIZE_PRESET, preset_sources.RUN_DIRECTORY),
            "ElectraPretrainer.from_preset",
        )
        if source.kind == preset_sources.RUN_DIRECTORY:
            return load_run_pretrainer(source, vocabulary, overrides)
        if vocabulary is None:
            raise preset_sources.PresetError(
                f"ElectraPretrainer.from_preset({source.path!r}) needs "
                "`vocabulary=`: a vocab.txt path or a list of tokens (BERT's "
                "uncased: `electra_keras.data.download_bert_vocabulary()`; your "
                "corpus's: `build_vocabulary(files)`)."
            )
        if isinstance(vocabulary, (str, os.PathLike)):
            name = os.fspath(vocabulary)
            tokens = load_vocabulary(name)
        else:
            name, tokens = "vocabulary", [str(token) for token in vocabulary]
            check_vocabulary(tokens, source=name)
        config = apply_overrides(get_preset(source.path), overrides)
        if config.model.vocab_size != len(tokens) and (
            "vocab_size" in overrides or "model.vocab_size" in overrides
        ):
            raise ConfigError(
                f"vocab_size={config.model.vocab_size} does not match the "
                f"{len(tokens)} tokens of {name}; leave it out (it is read from "
                "the vocabulary)."
            )
        config = config.replace(**{"model.vocab_size": len(tokens)})
        return cls.from_config_object(config, special_token_ids(tokens, name))

    @classmethod
    def from_config_object(
        cls, config: PretrainingConfig, special_ids: dict[str, int], **kwargs
    ) -> ElectraPretrainer:
        """Builds discriminator, shared-embedding generator and heads from a config.

        The model keeps `config` as `pretraining_config` (for `compile()`).

        Args:
            config: The run's `PretrainingConfig`.
            special_ids: `{"pad_id", "cls_id", "sep_id", "mask_id"}` of the vocabulary.
        """
        discriminator = ElectraBackbone(
            **config.model.backbone_kwargs(), name="discriminator"
        )
        generator = None
        if config.electra_objective:
            generator = ElectraBackbone(
                **config.model.generator().backbone_kwargs(),
                embedding=discriminator.embedding,
                name="generator",
            )
        model = cls(
            discriminator=discriminator,
            generator=generator,
            max_predictions_per_seq=config.max_predictions_per_seq,
            mask_prob=config.mask_prob,
            mask_token_rate=config.mask_token_rate,
            random_token_rate=config.random_token_rate,
            temperature=config.temperature,
            mlm_weight=config.mlm_weight,
            disc_weight=config.disc_weight,
            electra_objective=config.electra_objective,
            seed=config.seed,
            **special_ids,
            **kwargs,
        )
        model.pretraining_config = config
        return model

    # --- training -----------------------------------------------------------

    def compile(self, optimizer="auto", xla=None, **kwargs):
        """Compiles for `fit()`; see `ReplicaXlaStepMixin.compile`.

        Args:
            optimizer: "auto": `create_optimizer(self.pretraining_config)`
                (ELECTRA's AdamW, warm-up and linear decay to `train_steps`;
                the `PretrainingConfig()` defaults for a model built without
                a config), or any Keras optimizer.
            xla: XLA for the per-replica step; None: the config's `xla`
                setting (`training.strategy.resolve_xla`).
            **kwargs: passed on (e.g. `steps_per_execution`, by default the
                config's).
        """
        config = self.pretraining_config
        if isinstance(optimizer, str) and optimizer == "auto":
            from electra_keras.training.optimizer import create_optimizer

            optimizer = create_optimizer(config)
        if config is not None:
            if xla is None and "jit_compile" not in kwargs:
                from electra_keras.training.strategy import resolve_xla

                xla = resolve_xla(config.xla)
            kwargs.setdefault("steps_per_execution", config.steps_per_execution)
        super().compile(optimizer=optimizer, xla=xla, **kwargs)

    # --- metrics ------------------------------------------------------------

    def _create_trackers(self):
        mean = keras.metrics.Mean
        self.loss_tracker = mean(name="loss")
        self.mlm_loss_tracker = mean(name="mlm_loss")
        self.mlm_accuracy_tracker = mean(name="mlm_accuracy")
        self.electra_trackers = []
        if self.electra_objective:
            self.disc_loss_tracker = mean(name="disc_loss")
            self.sampled_accuracy_tracker = mean(name="sampled_accuracy")
            self.disc_accuracy_tracker = mean(name="disc_accuracy")
            self.replaced_fraction_tracker = mean(name="replaced_fraction")
            self.precision_tracker = keras.metrics.Precision(name="disc_precision")
            self.recall_tracker = keras.metrics.Recall(name="disc_recall")
            self.auc_tracker = keras.metrics.AUC(name="disc_auc")
            self.electra_trackers = [
                self.disc_loss_tracker,
                self.sampled_accuracy_tracker,
                self.disc_accuracy_tracker,
                self.replaced_fraction_tracker,
                self.precision_tracker,
                self.recall_tracker,
                self.auc_tracker,
            ]

    @property
    def metrics(self):
        # Listed here so that Keras resets them at the start of each epoch.
        return [
            self.loss_tracker,
            self.mlm_loss_tracker,
            self.mlm_accuracy_tracker,
        ] + self.electra_trackers

    # --- forward ------------------------------------------------------------

    def call(self, inputs, training=False):
        """Replaced-token logits of the discriminator for unmodified inputs.

        With `electra_objective=False`, the MLM logits at every position.
        """
        sequence = self.discriminator(_backbone_inputs(inputs), training=training)
        if self.discriminator_head is not None:
            return self.discriminator_head(sequence)
        seq_len = ops.shape(inputs["token_ids"])[1]
        positions = ops.broadcast_to(
            ops.arange(seq_len, dtype="int32")[None, :], ops.shape(inputs["token_ids"])
        )
        return self.generator_head(sequence, mask_positions=positions)

    def mask_inputs(self, token_ids, padding_mask, step, row_ids):
        """Chooses positions and builds the generator's input.

        Returns:
            dict with `masked_ids`, `positions`, `weights`, `target_ids`.
        """
        batch, seq_len = token_ids.shape
        slots = self.max_predictions_per_seq
        specials = (self.pad_id, self.cls_id, self.sep_id, self.mask_id)
        candidates = masking.candidate_mask(token_ids, padding_mask, specials)
        counts = masking.num_to_predict(padding_mask, candidates, self.mask_prob, slots)
        scores = counter_random.uniform(
            self.seed, _STREAM_POSITIONS, step, row_ids, (batch, seq_len)
        )
        positions, weights = masking.select_positions(candidates, counts, scores, slots)
        decision = counter_random.uniform(
            self.seed, _STREAM_DECISION, step, row_ids, (batch, slots)
        )
        vocab_size = self.discriminator.vocab_size
        random_ids = ops.cast(
            counter_random.uniform(
                self.seed, _STREAM_RANDOM_IDS, step, row_ids, (batch, slots)
            )
            * vocab_size,
            token_ids.dtype,
        )
        masked_ids = masking.corrupt_for_generator(
            token_ids,
            positions,
            weights,
            decision,
            ops.minimum(random_ids, vocab_size - 1),
            mask_id=self.mask_id,
            mask_token_rate=self.mask_token_rate,
            random_token_rate=self.random_token_rate,
        )
        return {
            "masked_ids": masked_ids,
            "positions": positions,
            "weights": weights,
            "target_ids": masking.gather_positions(token_ids, positions),
        }

    def sample_replacements(self, mlm_logits, step, row_ids):
        """Samples from the generator's softmax at each predicted slot.

        One counter-based uniform per slot, inverted through the softmax's
        cumulative distribution (`sampling.inverse_cdf_sample`).

        Returns:
            int32 `[batch, max_predictions_per_seq]`, no gradient.
        """
        uniforms = counter_random.uniform(
            self.seed, _STREAM_SAMPLING, step, row_ids, tuple(mlm_logits.shape[:-1])
        )
        return sampling.inverse_cdf_sample(mlm_logits, uniforms, self.temperature)

    def compute_pretraining_outputs(self, inputs, step, row_ids, training=False):
        """One step's forward pass; all results are sums over the local batch.

        Args:
            inputs: dict of `token_ids`, `segment_ids`, `padding_mask`
                (static shape `[batch, seq_len]`).
            step: Scalar int tensor seeding this step's randomness.
            row_ids: int `[batch]`, each example's index in the global batch.
            training: Whether dropout is active.

        Returns:
            dict of float32 scalars `mlm_loss_sum`, `mlm_count`, `mlm_correct`
            (and with the ELECTRA objective `sampled_correct`, `disc_loss_sum`,
            `disc_count`, `disc_correct`, `replaced_count`) plus the tensors
            `disc_probs`, `disc_labels`, `disc_weights` for threshold metrics.
        """
        token_ids = ops.cast(inputs["token_ids"], "int32")
        segment_ids = ops.cast(inputs["segment_ids"], "int32")
        padding_mask = ops.cast(inputs["padding_mask"], "int32")
        masked = self.mask_inputs(token_ids, padding_mask, step, row_ids)
        weights = masked["weights"]
        mlm_backbone = self.generator if self.electra_objective else self.discriminator
        mlm_sequence = mlm_backbone(
            {
                "token_ids": masked["masked_ids"],
                "segment_ids": segment_ids,
                "padding_mask": padding_mask,
            },
            training=training,
        )
        mlm_logits = self.generator_head(
            mlm_sequence, mask_positions=masked["positions"]
        )
        mlm_logits = ops.cast(mlm_logits, "float32")
        target_ids = masked["target_ids"]
        outputs = {
            "mlm_loss_sum": losses.masked_lm_loss_sum(mlm_logits, target_ids, weights),
            "mlm_count": ops.sum(weights),
            "mlm_correct": losses.masked_lm_correct_sum(
                mlm_logits, target_ids, weights
            ),
        }
        if not self.electra_objective:
            return outputs

        sampler = getattr(self, "_fused_sampler", None) or self.sample_replacements
        sampled = sampler(mlm_logits, step, row_ids)
        corrupted = sampling.replace_tokens(
            token_ids, masked["positions"], weights, sampled
        )
        labels = sampling.replaced_token_labels(token_ids, corrupted, padding_mask)
        disc_sequence = self.discriminator(
            {
                "token_ids": corrupted,
                "segment_ids": segment_ids,
                "padding_mask": padding_mask,
            },
            training=training,
        )
        disc_logits = ops.cast(self.discriminator_head(disc_sequence), "float32")
        token_weights = ops.cast(padding_mask, "float32")
        disc_predicted = ops.cast(ops.greater(disc_logits, 0.0), "float32")
        outputs.update(
            {
                "sampled_correct": ops.sum(
                    ops.cast(ops.equal(sampled, target_ids), "float32") * weights
                ),
                "disc_loss_sum": losses.discriminator_loss_sum(
                    disc_logits, labels, padding_mask
                ),
                "disc_count": ops.sum(token_weights),
                "disc_correct": ops.sum(
                    ops.cast(ops.equal(disc_predicted, labels), "float32")
                    * token_weights
                ),
                "replaced_count": ops.sum(labels),
                "disc_probs": ops.sigmoid(disc_logits),
                "disc_labels": labels,
                "disc_weights": token_weights,
            }
        )
        return outputs

    def combine_losses(self, sums, mlm_count, disc_count):
        """Total loss from summed parts and (global) counts."""
        loss = self.mlm_weight * sums["mlm_loss_sum"] / ops.maximum(mlm_count, 1.0)
        if self.electra_objective:
            loss = loss + self.disc_weight * sums["disc_loss_sum"] / ops.maximum(
                disc_count, 1.0
            )
        return loss

    def update_trackers(self, totals, outputs):
        """Updates trackers from globally summed statistics.

        Args:
            totals: dict of scalar sums over the *global* batch.
            outputs: this replica's `compute_pretraining_outputs` (threshold
                metrics are updated with local values and summed on read).
        """
        mlm_count = ops.maximum(totals["mlm_count"], 1.0)
        mlm_loss = totals["mlm_loss_sum"] / mlm_count
        self.mlm_loss_tracker.update_state(mlm_loss)
        self.mlm_accuracy_tracker.update_state(totals["mlm_correct"] / mlm_count)
        loss = self.mlm_weight * mlm_loss
        if self.electra_objective:
            disc_count = ops.maximum(totals["disc_count"], 1.0)
            disc_loss = totals["disc_loss_sum"] / disc_count
            loss = loss + self.disc_weight * disc_loss
            self.disc_loss_tracker.update_state(disc_loss)
            self.sampled_accuracy_tracker.update_state(
                totals["sampled_correct"] / mlm_count
            )
            self.disc_accuracy_tracker.update_state(totals["disc_correct"] / disc_count)
            self.replaced_fraction_tracker.update_state(
                totals["replaced_count"] / disc_count
            )
            for tracker in (
                self.precision_tracker,
                self.recall_tracker,
                self.auc_tracker,
            ):
                tracker.update_state(
                    outputs["disc_labels"],
                    outputs["disc_probs"],
                    sample_weight=outputs["disc_weights"],
                )
        self.loss_tracker.update_state(loss)

    # --- saving -------------------------------------------------------------

    def get_config(self):
        generator = None
        if self.generator is not None:
            generator = keras.saving.serialize_keras_object(self.generator)
        return {
            "name": self.name,
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "generator": generator,
            "pad_id": self.pad_id,
            "cls_id": self.cls_id,
            "sep_id": self.sep_id,
            "mask_id": self.mask_id,
            "max_predictions_per_seq": self.max_predictions_per_seq,
            "mask_prob": self.mask_prob,
            "mask_token_rate": self.mask_token_rate,
            "random_token_rate": self.random_token_rate,
            "temperature": self.temperature,
            "mlm_weight": self.mlm_weight,
            "disc_weight": self.disc_weight,
            "electra_objective": self.electra_objective,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        discriminator = keras.saving.deserialize_keras_object(
            config.pop("discriminator")
        )
        generator_config = config.pop("generator")
        generator = None
        if generator_config is not None:
            # Restore the shared embedding: the generator reuses the discriminator's.
            generator = ElectraBackbone(
                **generator_config["config"], embedding=discriminator.embedding
            )
        return cls(discriminator=discriminator, generator=generator, **config)


def _backbone_inputs(inputs):
    missing = [key for key in INPUT_KEYS if key not in inputs]
    if missing:
        raise KeyError(
            f"Pretraining inputs need the keys {INPUT_KEYS}; missing {missing}. "
            f"Got {sorted(inputs)}."
        )
    return {key: inputs[key] for key in INPUT_KEYS}
