"""`ElectraClassifier`: an ELECTRA backbone with a classification/regression head.

The head is google-research/electra's (`finetune/classification/
classification_tasks.py`): dropout on the final hidden state of token 0
([CLS]), then one dense layer to `num_labels` logits. `num_labels=1` makes it a
regression model (STS-B), trained with squared error; losses are summed over the
batch, as the original.

    model = ElectraClassifier.from_preset("runs/pretrain", num_labels=2)
    model.compile()                      # AdamW, layer-wise lr decay 0.8
    model.fit(train_ds, validation_data=dev_ds, epochs=3)
    model.predict_texts(["a gripping, beautifully acted film"])
    model.save("classifier.keras")       # the preprocessor's vocabulary included
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from electra_keras.config import ModelConfig
from electra_keras.data.vocab import load_vocabulary
from electra_keras.finetuning.optimizer import create_finetuning_optimizer
from electra_keras.layers.dense import FusedDense
from electra_keras.layers.dropout import CounterDropout
from electra_keras.models.backbone import ElectraBackbone
from electra_keras.models.classifier_preprocessor import (
    ElectraClassifierPreprocessor,
)


@keras.saving.register_keras_serializable(package="electra_keras")
class ElectraClassifier(keras.Model):
    """Sequence (pair) classification or regression on an `ElectraBackbone`.

    Inputs are the backbone's: a dict of int `token_ids`, `segment_ids` and
    `padding_mask` of shape `[batch, seq_len]` (what
    `ElectraClassifierPreprocessor` returns). The output is float32 logits
    `[batch, num_labels]` (scores `[batch, 1]` for regression).

    Args:
        backbone: the `ElectraBackbone` (a pretrained discriminator).
        num_labels: number of classes; 1 for regression.
        dropout: dropout rate on the [CLS] representation.
        label_names: names of the classes, index = label id; defaults to
            "0" .. "num_labels-1". None for regression.
        preprocessor: an optional `ElectraClassifierPreprocessor`; it is saved
            with the model (its vocabulary as an asset) and used by
            `predict_texts`.
        label_scale: regression only: the model is trained on scores divided
            by this (STS-B: 5.0, as the original), and `predict_texts`
            multiplies its outputs back. The raw output (`predict`) is in
            training units.
        **kwargs: standard `keras.Model` arguments (`name`, ...).
    """

    def __init__(
        self,
        backbone: ElectraBackbone,
        num_labels: int,
        dropout: float = 0.1,
        label_names: Sequence[str] | None = None,
        preprocessor: ElectraClassifierPreprocessor | None = None,
        label_scale: float = 1.0,
        **kwargs: Any,
    ) -> None:
        label_scale = float(label_scale)
        if label_scale <= 0 or (num_labels != 1 and label_scale != 1.0):
            raise ValueError(
                "`label_scale` must be positive, and 1.0 unless num_labels=1; got "
                f"{label_scale}."
            )
        if not isinstance(num_labels, int) or num_labels < 1:
            raise ValueError(
                f"`num_labels` must be a positive integer, got {num_labels!r}."
            )
        if num_labels == 1:
            if label_names is not None and len(label_names) > 1:
                raise ValueError(
                    "A regression model (num_labels=1) takes no label names, got "
                    f"{list(label_names)}."
                )
            label_names = None
        elif label_names is None:
            label_names = [str(i) for i in range(num_labels)]
        else:
            label_names = [str(name) for name in label_names]
            if len(label_names) != num_labels:
                raise ValueError(
                    f"Got {len(label_names)} label names for {num_labels} labels: "
                    f"{label_names}."
                )
            if len(set(label_names)) != len(label_names):
                raise ValueError(f"Label names must be unique, got {label_names}.")

        # === Layers ===
        self.backbone = backbone
        self.output_dropout = CounterDropout(
            dropout, dtype=backbone.dtype_policy, name="output_dropout"
        )
        # The original's `tf.layers.dense(reprs, num_labels)`: Glorot uniform.
        self.output_dense = FusedDense(
            num_labels,
            kernel_initializer="glorot_uniform",
            dtype=backbone.dtype_policy,
            name="logits",
        )
        # Logits in float32 under mixed precision.
        self.output_cast = keras.layers.Activation(
            "linear", dtype="float32", name="logits_float32"
        )

        # === Functional Model ===
        inputs = {
            "token_ids": keras.Input(shape=(None,), dtype="int32", name="token_ids"),
            "segment_ids": keras.Input(
                shape=(None,), dtype="int32", name="segment_ids"
            ),
            "padding_mask": keras.Input(
                shape=(None,), dtype="int32", name="padding_mask"
            ),
        }
        sequence_output = self.backbone(inputs)
        x = self.output_dropout(sequence_output[:, 0, :])
        x = self.output_dense(x)
        outputs = self.output_cast(x)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.num_labels = num_labels
        self.dropout = dropout
        self.label_names = label_names
        self.preprocessor = preprocessor
        self.label_scale = label_scale

    @property
    def is_regression(self) -> bool:
        return self.num_labels == 1

    # === Constructors ===
    @classmethod
    def from_pretrained(
        cls,
        path: str,
        num_labels: int,
        dropout: float = 0.1,
        label_names: Sequence[str] | None = None,
        preprocessor: ElectraClassifierPreprocessor | None = None,
        reinitialize: bool = False,
        **kwargs: Any,
    ) -> ElectraClassifier:
        """A classifier on a saved discriminator (`discriminator.keras`).

        Args:
            path: a `.keras` file holding an `ElectraBackbone` (or an
                `ElectraDiscriminator` / `ElectraPretrainer`, whose backbone is used).
            num_labels: number of classes; 1 for regression.
            dropout: dropout on the [CLS] representation.
            label_names: class names (see the class docstring).
            preprocessor: an `ElectraClassifierPreprocessor`; its vocabulary
                must be the one the discriminator was pretrained with.
            reinitialize: keep only the architecture: a backbone of the same
                config with freshly initialized weights (the random-init
                baseline of a pretraining comparison).
            **kwargs: passed to the constructor.
        """
        from electra_keras.models.preset_loading import backbone_of

        # A backbone, or a model holding one: a discriminator with its head
        # (e.g. converted from Hugging Face) or a whole pretrainer.
        backbone = backbone_of(keras.saving.load_model(path, compile=False), path)
        _check_vocab_size(backbone, preprocessor)
        if reinitialize:
            backbone = ElectraBackbone.from_config(backbone.get_config())
        return cls(
            backbone,
            num_labels,
            dropout=dropout,
            label_names=label_names,
            preprocessor=preprocessor,
            **kwargs,
        )

    @classmethod
    def from_preset(
        cls,
        preset: str | os.PathLike,
        num_labels: int | None = None,
        *,
        vocabulary: Sequence[str] | str | os.PathLike | None = None,
        lowercase: bool | None = None,
        seq_len: int | None = None,
        preprocessor: ElectraClassifierPreprocessor | str | None = "auto",
        load_weights: bool = True,
        num_classes: int | None = None,
        **kwargs: Any,
    ) -> ElectraClassifier:
        """A classifier on a pretrained backbone, with a preprocessor for raw text.

        Like keras-hub's `TextClassifier.from_preset`: the backbone's weights
        come from `preset` and the head is new (randomly initialized), except
        for a saved classifier loaded without `num_labels`, which comes back
        whole. `preset` is one of:

        - a pretraining run directory (its `discriminator.keras`, vocab.txt,
          `lowercase` and `seq_len`);
        - a `.keras` file: a discriminator, backbone, pretrainer or classifier
          (a classifier's preprocessor is kept; a file in a run directory gets
          the run's vocabulary);
        - a Hugging Face ELECTRA/BERT directory (its vocab.txt and
          `tokenizer_config.json` `do_lower_case`);
        - a keras-hub `ElectraBackbone` preset directory (its tokenizer's
          vocabulary and `lowercase`);
        - a size preset name ("tiny", "small", "base", "large"): a randomly
          initialized backbone of that size; needs `vocabulary`.

            classifier = ElectraClassifier.from_preset("runs/pretrain", num_labels=2)
            classifier = ElectraClassifier.from_preset(
                "discriminator.keras", num_labels=3, vocabulary="vocab.txt"
            )

        Args:
            preset: the source (see above).
            num_labels: number of classes (1: regression). May be left out only
                for a saved classifier, to restore it with its head.
            vocabulary: a vocab.txt path or tokens, instead of the source's.
            lowercase: the tokenizer's lower-casing, instead of the source's
                (default when the source does not say: True).
            seq_len: tokens per example; default: the run's `seq_len`, else
                128 (at most the backbone's position table).
            preprocessor: "auto": built from the vocabulary (an error if there
                is none); an `ElectraClassifierPreprocessor` to use; or None
                for a classifier without one (token-id inputs only).
            load_weights: False keeps the backbone's architecture only, with
                fresh random weights (a random-init baseline).
            num_classes: keras-hub's name for `num_labels`.
            **kwargs: passed to the constructor (`dropout`, `label_names`,
                `label_scale`, `name`).

        Raises:
            PresetError: an unknown path or kind (the accepted kinds are
                listed), or no vocabulary for the preprocessor.
        """
        from electra_keras import preset_sources
        from electra_keras.models.preset_loading import load_backbone

        if num_classes is not None:
            if num_labels is not None and num_labels != num_classes:
                raise ValueError(
                    f"Got num_labels={num_labels} and num_classes={num_classes}: "
                    "pass one (they are the same argument)."
                )
            num_labels = num_classes
        source = preset_sources.resolve_source(
            preset,
            (
                preset_sources.RUN_DIRECTORY,
                preset_sources.KERAS_FILE,
                preset_sources.HF_DIRECTORY,
                preset_sources.KERAS_HUB_PRESET,
                preset_sources.SIZE_PRESET,
            ),
            "ElectraClassifier.from_preset",
        )
        saved = None
        if source.kind == preset_sources.SIZE_PRESET:
            backbone = _size_preset_backbone(source.path, vocabulary)
        else:
            backbone, loaded = load_backbone(source)
            saved = loaded if isinstance(loaded, ElectraClassifier) else None
        if num_labels is None:
            if saved is None:
                raise ValueError(
                    f"ElectraClassifier.from_preset({source.path!r}) needs "
                    "`num_labels`: only a saved classifier has a head to restore."
                )
            unchanged = (vocabulary, lowercase, seq_len) == (None, None, None)
            if load_weights and preprocessor == "auto" and unchanged and not kwargs:
                return saved
            num_labels = saved.num_labels
            kwargs.setdefault("label_names", saved.label_names)
        if not load_weights:
            backbone = ElectraBackbone.from_config(backbone.get_config())
        if isinstance(preprocessor, str):
            if preprocessor != "auto":
                raise ValueError(
                    f"`preprocessor` must be 'auto', None or a preprocessor, got "
                    f"{preprocessor!r}."
                )
            preprocessor = _preset_preprocessor(
                source, backbone, saved, vocabulary, lowercase, seq_len
            )
        _check_vocab_size(backbone, preprocessor)
        return cls(backbone, num_labels, preprocessor=preprocessor, **kwargs)

    @classmethod
    def from_model_config(
        cls,
        config: ModelConfig,
        num_labels: int,
        dropout: float | None = None,
        label_names: Sequence[str] | None = None,
        preprocessor: ElectraClassifierPreprocessor | None = None,
        **kwargs: Any,
    ) -> ElectraClassifier:
        """A randomly initialized classifier of the sizes in `config`.

        Args:
            config: the backbone's `ModelConfig` (e.g. `get_preset("tiny").model`).
            num_labels: number of classes; 1 for regression.
            dropout: head dropout; defaults to `config.dropout`.
            label_names: class names (see the class docstring).
            preprocessor: an `ElectraClassifierPreprocessor`.
            **kwargs: passed to the constructor.
        """
        backbone = ElectraBackbone(**config.backbone_kwargs())
        _check_vocab_size(backbone, preprocessor)
        return cls(
            backbone,
            num_labels,
            dropout=config.dropout if dropout is None else dropout,
            label_names=label_names,
            preprocessor=preprocessor,
            **kwargs,
        )

    # === Training ===
    def compile(
        self,
        optimizer: Any = "auto",
        loss: Any = "auto",
        metrics: Any = "auto",
        **kwargs: Any,
    ) -> None:
        """Compiles with ELECTRA's fine-tuning defaults.

        Args:
            optimizer: "auto": `create_finetuning_optimizer(self)` (AdamW,
                lr 1e-4, layer-wise decay 0.8, constant rate; pass your own
                for warm-up and decay over a known number of steps).
            loss: "auto": as the original, per-example losses summed over
                the batch (not averaged): sparse categorical cross-entropy on
                logits, or squared error for regression. With the optimizer's
                global-norm clipping at 1.0 this is the original's update.
                Under `tf.distribute` each replica sums its share and the
                gradients are summed across replicas: the global batch's sum.
            metrics: "auto": accuracy, or none for regression.
            **kwargs: passed to `keras.Model.compile`.
        """
        if optimizer == "auto":
            optimizer = create_finetuning_optimizer(self)
        if loss == "auto":
            loss = (
                keras.losses.MeanSquaredError(reduction="sum")
                if self.is_regression
                else keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True, reduction="sum"
                )
            )
        if metrics == "auto":
            metrics = (
                None
                if self.is_regression
                else [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
            )
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def compile_from_config(self, config: dict[str, Any]) -> None:
        # Keras skips this for models with their own `compile()`; ours takes
        # the same arguments, so a loaded model gets its optimizer (and state).
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    # === Inference ===
    def predict_texts(
        self,
        texts: Sequence[str] | str,
        text_pairs: Sequence[str] | str | None = None,
        batch_size: int = 32,
    ) -> np.ndarray:
        """Class probabilities (or regression scores) for raw texts.

        Args:
            texts: one string or a list of strings.
            text_pairs: the second texts of pair tasks, as many as `texts`.
            batch_size: examples per forward pass.

        Returns:
            float32 `[n, num_labels]` softmax probabilities, or `[n]` scores for
            regression (in label units: the output times `label_scale`).
        """
        if self.preprocessor is None:
            raise ValueError(
                "This classifier has no preprocessor; pass one to the constructor "
                "or call `predict()` on token ids."
            )
        if isinstance(texts, str):
            texts = [texts]
        if isinstance(text_pairs, str):
            text_pairs = [text_pairs]
        inputs = self.preprocessor.preprocess_texts(texts, text_pairs)
        if len(texts) == 0:
            return np.zeros((0,) if self.is_regression else (0, self.num_labels))
        logits = self.predict(inputs, batch_size=batch_size, verbose=0)
        logits = np.asarray(logits, dtype="float32")
        if self.is_regression:
            return logits[:, 0] * np.float32(self.label_scale)
        return keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))

    # === Config ===
    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.layers.serialize(self.backbone),
            "num_labels": self.num_labels,
            "dropout": self.dropout,
            "label_names": self.label_names,
            "label_scale": self.label_scale,
            "preprocessor": (
                None
                if self.preprocessor is None
                else keras.layers.serialize(self.preprocessor)
            ),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ElectraClassifier:
        config = dict(config)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        if config.get("preprocessor") is not None:
            config["preprocessor"] = keras.layers.deserialize(config["preprocessor"])
        return cls(**config)


def _size_preset_backbone(
    name: str, vocabulary: Sequence[str] | str | os.PathLike | None
) -> ElectraBackbone:
    """A randomly initialized backbone of a size preset, sized to the vocabulary."""
    from electra_keras.config import get_preset
    from electra_keras.preset_sources import PresetError

    if vocabulary is None:
        raise PresetError(
            f"ElectraClassifier.from_preset({name!r}) needs `vocabulary=` (a "
            "vocab.txt path or tokens) to size a new backbone."
        )
    if isinstance(vocabulary, (str, os.PathLike)):
        vocabulary = load_vocabulary(os.fspath(vocabulary))
    config = get_preset(name).model
    return ElectraBackbone(
        **dataclasses.replace(config, vocab_size=len(vocabulary)).backbone_kwargs()
    )


def _preset_preprocessor(
    source,
    backbone: ElectraBackbone,
    saved: ElectraClassifier | None,
    vocabulary: Sequence[str] | str | os.PathLike | None,
    lowercase: bool | None,
    seq_len: int | None,
) -> ElectraClassifierPreprocessor:
    """The preprocessor `from_preset` builds (or keeps, from a saved classifier)."""
    from electra_keras.preset_sources import PresetError

    kept = saved.preprocessor if saved is not None else None
    if kept is not None and vocabulary is None:
        # A saved classifier's own vocabulary comes before one beside the file.
        if lowercase is None and seq_len in (None, kept.seq_len):
            return kept
        return ElectraClassifierPreprocessor(
            kept.vocabulary,
            lowercase=kept.lowercase if lowercase is None else lowercase,
            seq_len=seq_len or kept.seq_len,
        )
    vocabulary = source.vocabulary if vocabulary is None else vocabulary
    if vocabulary is None:
        raise PresetError(
            f"Found no vocabulary with {source.path} (a {source.kind}): pass "
            "`vocabulary=` (a vocab.txt path or tokens), or `preprocessor=None` "
            "for a classifier that takes token ids only."
        )
    if lowercase is None:
        lowercase = True if source.lowercase is None else source.lowercase
    if seq_len is None:
        seq_len = min(source.seq_len or 128, backbone.max_sequence_length)
    return ElectraClassifierPreprocessor(
        vocabulary, lowercase=lowercase, seq_len=seq_len
    )


def _check_vocab_size(
    backbone: ElectraBackbone, preprocessor: ElectraClassifierPreprocessor | None
) -> None:
    if preprocessor is None or preprocessor._tokenizer is None:
        return
    if preprocessor.tokenizer.vocab_size != backbone.vocab_size:
        raise ValueError(
            f"The preprocessor's vocabulary has {preprocessor.tokenizer.vocab_size} "
            f"tokens but the backbone's embedding has {backbone.vocab_size} rows: "
            "use the vocabulary the model was pretrained with."
        )
    if preprocessor.seq_len > backbone.max_sequence_length:
        raise ValueError(
            f"The preprocessor's seq_len ({preprocessor.seq_len}) is larger than "
            f"the backbone's position table ({backbone.max_sequence_length})."
        )
