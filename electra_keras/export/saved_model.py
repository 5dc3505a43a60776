"""Export a fine-tuned `ElectraClassifier` as a TF Serving SavedModel.

    electra-keras export --model runs/ft/classifier.keras --name sentiment
    # -> saved_models/sentiment/1/  (the next free version)

The graph takes raw UTF-8 text and does everything TF Serving needs: it
replaces invalid UTF-8 with U+FFFD, tokenizes with tensorflow-text's
`BertTokenizer` over `assets/vocab.txt` (a `TextFileInitializer` on a tracked
asset, not a constant), packs `[CLS] A [SEP] (B [SEP])`, cut to the model's
`seq_len` exactly as `ElectraClassifierPreprocessor` does, runs the classifier
and returns scores and label names. A batch is padded only to the smallest of
a few lengths (`length_buckets`: 8, 16, 24, 32, 48, 64, 96, ... up to `seq_len`) that holds
its longest text, not to `seq_len`: short requests cost what they need, and
the few shapes keep the graph's kernels warm (`bucket_lengths=False` pads
every batch to `seq_len`). Padding is masked, so the scores do not depend on
it, and outside attention the default graph (`ClassifierGraph`) computes no
padding rows at all. Signatures:

- `serving_default`: `text` (and `text_pair` for pair tasks), tf.string
  `[batch]` -> `scores` float32 `[batch, num_labels]` (softmax probabilities;
  for regression the predicted value, in the labels' units: STS-B 0-5), `label_ids` int64 `[batch]` (argmax; 0
  for regression), `labels` tf.string `[batch]` (label name of `label_ids`).
- `classify`: `inputs`, tf.string `[batch]` serialized `tf.Example`s with a
  bytes feature `text` (and `text_pair`) -> `classes` tf.string
  `[batch, num_labels]` (every label name, in label-id order) and `scores`
  float32 `[batch, num_labels]`: TF Serving's classification shape.
- `serving_token_ids`: `token_ids`, `segment_ids`, `padding_mask` int32
  `[batch, length]` (length <= the backbone's `max_sequence_length`) ->
  the same outputs as `serving_default`, for callers who tokenize themselves.

The directory follows TF Serving's layout: `<base_dir>/<name>/<version>/` with
`saved_model.pb`, `variables/`, `assets/vocab.txt` and
`assets.extra/tf_serving_warmup_requests`. A version is written under a
hidden temporary name and renamed into place at the end, so a server polling
`<base_dir>/<name>` never sees half a model.

The model runs as `ClassifierGraph` (`inference_graph.py`): the same
forward pass from the same weights in fewer, larger ops (dense layers on
the real tokens only, no padding rows; one matmul for query, key and value;
token 0 only in the last layer), scores
equal to the Keras model's to float32 rounding. `graph="keras"` exports the
Keras model's own call instead.

`compute_dtype="bfloat16"` runs the model's matmuls in bfloat16 (kernels
saved in bfloat16; LayerNorm, softmax, scores and the outputs in float32).
That is faster only on a server CPU with native bf16 (AMX or AVX512-BF16;
`resolve_compute_dtype("auto")` checks the exporting machine) and changes
scores by about 1e-2.

Only core TensorFlow ops and four tensorflow-text ops (`SERVING_TF_TEXT_OPS`,
all linked into TF Serving) appear in the graph; `tests/export` checks this.
Loading needs `import tensorflow_text` first (it registers those ops).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from electra_keras.data.tokenizer import ElectraTokenizer
from electra_keras.export.inference_graph import ClassifierGraph
from electra_keras.export.warmup import (
    DEFAULT_WARMUP_TEXTS,
    WARMUP_FILENAME,
    make_warmup_requests,
    write_warmup_requests,
)
from electra_keras.models.classifier_preprocessor import truncated_pair_lengths
from electra_keras.serving.model_config import parse_version_directory

# tensorflow-text ops the exported graph uses: `normalize_text` and the
# BertTokenizer split and WordPiece, all in the `ops_lib` that TF Serving
# links. (FastBertTokenizer's ops are not: some server releases lack
# FastBertNormalize, tensorflow/serving#2064.)
SERVING_TF_TEXT_OPS = (
    "NormalizeUTF8",
    "RegexSplitWithOffsets",
    "WordpieceTokenizeWithOffsets",
)
VOCAB_ASSET = "vocab.txt"
PREDICT_SIGNATURE = "serving_default"
CLASSIFY_SIGNATURE = "classify"
TOKEN_IDS_SIGNATURE = "serving_token_ids"
# TF2 writes every signature as a predict signature; TF Serving's Classify API
# expects this method name when its signature method-name check is on.
CLASSIFY_METHOD_NAME = "tensorflow/serving/classify"
# Unicode's replacement character, written for every invalid UTF-8 sequence.
REPLACEMENT_CHAR = 0xFFFD

COMPUTE_DTYPES = ("auto", "float32", "bfloat16")
# "fused": `ClassifierGraph` (fused attention projections, 2-D matmuls, token 0
# only in the last layer); "keras": the Keras model's own call.
GRAPHS = ("fused", "keras")


def next_version(base_dir: str | os.PathLike, name: str) -> int:
    """The version after the highest existing one under `base_dir/name` (1 if none).

    Only all-digit directory names count, as for TF Serving.

    Args:
        base_dir: the directory that holds one folder per model name.
        name: the model name.
    """
    model_dir = os.path.join(os.fspath(base_dir), name)
    return max(_version_folders(model_dir), default=0) + 1


def _version_folders(model_dir: str) -> dict[int, str]:
    """Version -> folder name of the version folders in `model_dir` (`0001`
    is version 1, as for TF Serving; ASCII digits only)."""
    if not os.path.isdir(model_dir):
        return {}
    folders = {}
    for entry in sorted(os.listdir(model_dir)):
        version = parse_version_directory(entry)
        if version is not None and os.path.isdir(os.path.join(model_dir, entry)):
            folders[version] = entry
    return folders


def clean_text(text: tf.Tensor) -> tf.Tensor:
    """Replaces invalid UTF-8 in each string with U+FFFD (core op UnicodeTranscode).

    Args:
        text: tf.string tensor of any shape.
    """
    return tf.strings.unicode_transcode(
        text,
        input_encoding="UTF-8",
        output_encoding="UTF-8",
        errors="replace",
        replacement_char=REPLACEMENT_CHAR,
        replace_control_characters=False,
    )


class _ServingTokenizer:
    """`ElectraTokenizer` whose table reads the vocabulary asset file.

    The same class (and so the same normalization and splitting) as training,
    but the lookup table reads `vocab_path` through a `TextFileInitializer`,
    so the vocabulary is saved as the asset `assets/vocab.txt` rather than as
    a constant in the graph.
    """

    def __init__(self, vocab_path: str, vocabulary: list[str], lowercase: bool) -> None:
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                vocab_path,
                key_dtype=tf.string,
                key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
                value_dtype=tf.int64,
                value_index=tf.lookup.TextFileIndex.LINE_NUMBER,
            ),
            default_value=vocabulary.index("[UNK]"),
        )
        self.tokenizer = ElectraTokenizer(
            vocabulary, lowercase, lookup_table=self.table
        )

    def tokenize(self, text: tf.Tensor) -> tf.RaggedTensor:
        """int32 ids, ragged `[batch, None]`."""
        return self.tokenizer.tokenize(clean_text(text))


def _keep_first(ragged: tf.RaggedTensor, lengths: tf.Tensor) -> tf.RaggedTensor:
    keep = tf.ragged.range(ragged.row_lengths()) < tf.expand_dims(lengths, 1)
    return tf.ragged.boolean_mask(ragged, keep)


def length_buckets(seq_len: int, smallest: int = 8) -> tuple[int, ...]:
    """Padded lengths for serving, each at most 1.5x the one before it.

    1 to 4 times `smallest`, then 1.5x and 2x each power of two above, then
    `seq_len`: `length_buckets(128)` is `(8, 16, 24, 32, 48, 64, 96, 128)`,
    `length_buckets(100)` is `(8, 16, 24, 32, 48, 64, 96, 100)`. A batch pads
    by less than half its longest text (under a fifth on average for the
    4-30 token sentences of `benchmarks/serving_throughput.py`, against a
    third with powers of two from 16).
    """
    if seq_len < 1:
        raise ValueError(f"`seq_len` must be positive, got {seq_len}.")
    buckets = [smallest * i for i in (1, 2, 3, 4)]
    power = 4 * smallest
    while power < seq_len:
        buckets += [power * 3 // 2, power * 2]
        power *= 2
    return tuple(b for b in buckets if b < seq_len) + (seq_len,)


def pack_inputs(
    first: tf.RaggedTensor,
    second: tf.RaggedTensor | None,
    seq_len: int,
    cls_id: int,
    sep_id: int,
    pad_id: int,
    buckets: Sequence[int] | None = None,
) -> dict[str, tf.Tensor]:
    """`[CLS] A [SEP] (B [SEP])`, cut to `seq_len` and padded, in core TF ops.

    The same packing as `ElectraClassifierPreprocessor.call` (single texts keep
    their first `seq_len - 2` tokens; pairs are cut longest-first by
    `truncated_pair_lengths`), without tensorflow-text's trimmer ops, which TF
    Serving does not link.

    Args:
        first: int32 ids of the first texts, ragged `[batch, None]`.
        second: int32 ids of the second texts, or None.
        seq_len: the longest packed length; texts are cut to fit it.
        cls_id: id of [CLS].
        sep_id: id of [SEP].
        pad_id: id written at padded positions.
        buckets: increasing padded lengths, the last `seq_len`: the batch is
            padded to the first that holds its longest packed row. None: to
            `seq_len`.

    Returns:
        `token_ids`, `segment_ids`, `padding_mask`: int32 `[batch, length]`,
        `length` being `seq_len` or the chosen bucket.
    """
    if second is None:
        segments = [first[:, : seq_len - 2]]
    else:
        kept_a, kept_b = truncated_pair_lengths(
            first.row_lengths(), second.row_lengths(), seq_len - 3
        )
        segments = [_keep_first(first, kept_a), _keep_first(second, kept_b)]
    batch = first.nrows()
    column = tf.stack([batch, tf.constant(1, tf.int64)])
    cls = tf.RaggedTensor.from_tensor(tf.fill(column, tf.constant(cls_id, tf.int32)))
    sep = tf.RaggedTensor.from_tensor(tf.fill(column, tf.constant(sep_id, tf.int32)))
    pieces = [cls]
    segment_pieces = [tf.zeros_like(cls)]
    for index, segment in enumerate(segments):
        pieces += [segment, sep]
        segment_pieces += [tf.ones_like(segment) * index, tf.ones_like(sep) * index]
    token_ids = tf.concat(pieces, axis=1)
    segment_ids = tf.concat(segment_pieces, axis=1)
    length = tf.constant(seq_len, tf.int64)
    if buckets is not None:
        if list(buckets) != sorted(set(buckets)) or buckets[-1] != seq_len:
            raise ValueError(
                f"`buckets` must increase and end at seq_len {seq_len}, got "
                f"{list(buckets)}."
            )
        sizes = tf.constant(list(buckets), tf.int64)
        longest = tf.reduce_max(token_ids.row_lengths())
        index = tf.searchsorted(sizes, tf.reshape(longest, [1]), side="left")[0]
        length = tf.gather(sizes, tf.minimum(index, len(buckets) - 1))
    shape = tf.stack([batch, length])
    return {
        "token_ids": token_ids.to_tensor(default_value=pad_id, shape=shape),
        "segment_ids": segment_ids.to_tensor(default_value=0, shape=shape),
        "padding_mask": tf.ones_like(token_ids).to_tensor(default_value=0, shape=shape),
    }


class _ServingGraph:
    """The Python functions behind the three signatures (traced by ExportArchive)."""

    def __init__(
        self,
        model: keras.Model,
        tokenizer: _ServingTokenizer,
        label_names: Sequence[str],
        pair: bool,
        bucket_lengths: bool = True,
        compute_dtype: str = "float32",
        graph: str = "fused",
    ) -> None:
        preprocessor = model.preprocessor
        self.model = model
        # What the endpoints call for logits, and what the archive saves.
        if graph == "fused":
            self.forward = ClassifierGraph(model, compute_dtype)
            self.tracked = [self.forward]
        else:
            keras_model = with_compute_dtype(model, compute_dtype)
            self.forward = lambda inputs: keras_model(inputs, training=False)
            # The model's variables (track() walks Keras layers). Not the
            # preprocessor: its table holds the vocabulary as a constant,
            # which the export must not carry.
            self.tracked = [
                layer
                for layer in keras_model.layers
                if layer is not keras_model.preprocessor and layer.weights
            ]
        self.tokenizer = tokenizer
        self.label_names = [str(label) for label in label_names]
        self.is_regression = bool(model.is_regression)
        # Regression heads train on labels divided by this (STS-B: 5); the
        # export answers in the labels' own units, as `predict_texts` does.
        self.label_scale = float(getattr(model, "label_scale", 1.0) or 1.0)
        self.pair = pair
        self.seq_len = int(preprocessor.seq_len)
        self.buckets = length_buckets(self.seq_len) if bucket_lengths else None
        vocab = preprocessor.tokenizer
        self.special_ids = {
            "cls_id": vocab.cls_id,
            "sep_id": vocab.sep_id,
            "pad_id": vocab.pad_id,
        }

    # === Shared steps ===
    def encode(self, text: tf.Tensor, text_pair: tf.Tensor | None) -> dict:
        first = self.tokenizer.tokenize(text)
        second = None if text_pair is None else self.tokenizer.tokenize(text_pair)
        return pack_inputs(
            first, second, self.seq_len, buckets=self.buckets, **self.special_ids
        )

    def head(self, inputs: dict) -> dict[str, tf.Tensor]:
        logits = tf.cast(self.forward(inputs), tf.float32)
        label_names = tf.constant(self.label_names, tf.string)
        if self.is_regression:
            scores = logits * self.label_scale
            label_ids = tf.zeros(tf.shape(logits)[:1], tf.int64)
        else:
            scores = tf.nn.softmax(logits, axis=-1)
            label_ids = tf.argmax(logits, axis=-1, output_type=tf.int64)
        return {
            "scores": scores,
            "label_ids": label_ids,
            "labels": tf.gather(label_names, label_ids),
        }

    # === Endpoints ===
    def predict_text(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        return self.head(self.encode(text, None))

    def predict_pair(self, text: tf.Tensor, text_pair: tf.Tensor) -> dict:
        return self.head(self.encode(text, text_pair))

    def predict_token_ids(
        self, token_ids: tf.Tensor, segment_ids: tf.Tensor, padding_mask: tf.Tensor
    ) -> dict[str, tf.Tensor]:
        return self.head(
            {
                "token_ids": token_ids,
                "segment_ids": segment_ids,
                "padding_mask": padding_mask,
            }
        )

    def classify(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        features = {"text": tf.io.FixedLenFeature([], tf.string)}
        if self.pair:
            features["text_pair"] = tf.io.FixedLenFeature([], tf.string)
        parsed = tf.io.parse_example(inputs, features)
        outputs = self.head(self.encode(parsed["text"], parsed.get("text_pair")))
        scores = outputs["scores"]
        classes = tf.tile(
            tf.constant([self.label_names], tf.string),
            tf.stack([tf.shape(scores)[0], 1]),
        )
        return {"classes": classes, "scores": scores}


def _string_spec(name: str) -> tf.TensorSpec:
    return tf.TensorSpec([None], tf.string, name=name)


def _int_spec(name: str) -> tf.TensorSpec:
    return tf.TensorSpec([None, None], tf.int32, name=name)


def resolve_compute_dtype(
    setting: str, flags: set[str] | None = None
) -> tuple[str, str]:
    """Turns an export's `compute_dtype` setting into "float32" or "bfloat16".

    "auto" picks bfloat16 when this machine's CPU computes it natively (AMX or
    AVX512-BF16), so it suits exports made on the kind of machine that serves.

    Args:
        setting: one of `COMPUTE_DTYPES`.
        flags: CPU flags; this machine's when None.

    Returns:
        `(dtype, reason)`, the reason a short phrase ("" for an explicit one).

    Raises:
        ValueError: an unknown setting.
    """
    from electra_keras.training.strategy import BF16_CPU_FLAGS, cpu_flags

    if setting not in COMPUTE_DTYPES:
        raise ValueError(
            f"Unknown compute dtype {setting!r}; choose one of "
            f"{', '.join(COMPUTE_DTYPES)}."
        )
    if setting != "auto":
        return setting, ""
    native = sorted(set(BF16_CPU_FLAGS) & (cpu_flags() if flags is None else flags))
    if native:
        return "bfloat16", f"auto: this CPU has {'/'.join(native)}"
    return "float32", "auto: this CPU has no native bf16"


def with_compute_dtype(model: keras.Model, compute_dtype: str) -> keras.Model:
    """`model` itself for float32, else a copy with the same weights that
    computes in `compute_dtype` (Keras' `mixed_<dtype>` policy: float32
    variables, cast where used; the classifier's logits stay float32).

    Args:
        model: an `ElectraClassifier`.
        compute_dtype: "float32" or "bfloat16".
    """
    if compute_dtype == "float32":
        return model
    if compute_dtype != "bfloat16":
        raise ValueError(f"Cannot export with compute dtype {compute_dtype!r}.")
    previous = keras.config.dtype_policy()
    # The backbone's layers take the global policy when they are built.
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        config = dict(model.get_config())
        backbone = keras.layers.deserialize(config.pop("backbone"))
        config.pop("preprocessor", None)
        # The preprocessor (vocabulary, seq_len) is shared: it has no weights
        # and its vocabulary is not part of the config.
        copy = type(model)(backbone=backbone, preprocessor=model.preprocessor, **config)
    finally:
        keras.config.set_dtype_policy(previous)
    copy.set_weights(model.get_weights())
    return copy


def _load_model(model: keras.Model | str | os.PathLike) -> keras.Model:
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not os.path.exists(path):
            raise FileNotFoundError(f"No model at {path}.")
        import electra_keras.models.classifier  # noqa: F401 (registers classes)

        return keras.saving.load_model(path, compile=False)
    return model


def _check_model(model: keras.Model) -> list[str]:
    missing = [
        attr
        for attr in ("preprocessor", "label_names", "num_labels", "is_regression")
        if not hasattr(model, attr)
    ]
    if missing:
        raise ValueError(
            f"Can only export an ElectraClassifier; {type(model).__name__} lacks "
            f"{', '.join(missing)}."
        )
    if model.preprocessor is None:
        raise ValueError(
            "The classifier has no preprocessor (vocabulary, seq_len): the "
            "export cannot tokenize text without one."
        )
    num_labels = int(model.num_labels)
    label_names = list(model.label_names or [])
    if not label_names:
        label_names = (
            ["score"] if model.is_regression else [str(i) for i in range(num_labels)]
        )
    if len(label_names) != num_labels:
        raise ValueError(
            f"The classifier has {num_labels} outputs but {len(label_names)} "
            f"label names: {label_names}."
        )
    return [str(label) for label in label_names]


def _is_pair_model(model: keras.Model, model_path: str | None) -> bool:
    """Whether the model was fine-tuned on text pairs, as far as can be told.

    A model attribute (`text_pair` / `is_pair`) wins; else the task named in
    the `metrics.json` that `electra-keras finetune` writes beside
    `classifier.keras`; else False (single texts).
    """
    for owner in (model, model.preprocessor):
        for attr in ("text_pair", "is_pair"):
            value = getattr(owner, attr, None)
            if isinstance(value, bool):
                return value
    if model_path is not None:
        summary_path = os.path.join(os.path.dirname(model_path), "metrics.json")
        try:
            with open(summary_path, encoding="utf-8") as f:
                task_name = json.load(f).get("task")
            from electra_keras.finetuning.tasks import get_task

            return bool(get_task(task_name).is_pair_task)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
    return False


def export_classifier(
    model: keras.Model | str | os.PathLike,
    name: str,
    base_dir: str | os.PathLike = "saved_models",
    version: int | None = None,
    warmup_texts: Sequence[str] | None = None,
    pair: bool | None = None,
    bucket_lengths: bool = True,
    compute_dtype: str = "float32",
    graph: str = "fused",
) -> str:
    """Writes `model` as a TF Serving SavedModel at `base_dir/name/version`.

    Args:
        model: an `ElectraClassifier` (with its preprocessor) or the path of
            one saved as `.keras`.
        name: the model name (the folder under `base_dir`, the name TF
            Serving serves it under).
        base_dir: the folder of served models (TF Serving's model base path
            is `base_dir/name`).
        version: the version number; default: one more than the highest
            existing. An existing version is never overwritten.
        warmup_texts: texts for `assets.extra/tf_serving_warmup_requests`
            (default: a few built-in sentences). For pair tasks each text is
            used as both `text` and `text_pair`.
        pair: whether the signatures take `text_pair`; default: the model's
            `text_pair` / `is_pair` attribute when it has one, else the task
            in the `metrics.json` beside a `.keras` path (as `electra-keras
            finetune` writes it), else False.
        bucket_lengths: pad each batch to the smallest of `length_buckets`
            that holds its longest text (True), or always to `seq_len`.
        compute_dtype: "float32", "bfloat16" (matmuls in bf16, for servers
            with AMX or AVX512-BF16) or "auto" (`resolve_compute_dtype`).
        graph: "fused" (default): the logits come from `ClassifierGraph`,
            the same forward pass in fewer, larger ops, with the dense layers
            on the real tokens only (no padding rows), one query/key/value
            matmul and token 0 only in the last layer; 1.13x the sentences/s
            of "keras" at batch 1 and 1.86x at batch 32 on 2 AMD EPYC Zen 4
            cores); "keras": from the Keras model's own call.

    Returns:
        The version directory written.

    Raises:
        ValueError: bad name or version, an existing version, or a model
            that is not an exportable classifier.
        FileNotFoundError: `model` is a path that does not exist.
    """
    if not name or name != os.path.basename(name) or name.startswith("."):
        raise ValueError(f"Model name {name!r} must be a plain folder name.")
    if version is None:
        version = next_version(base_dir, name)
    elif not isinstance(version, int) or version < 1:
        raise ValueError(f"Version must be a positive integer, got {version!r}.")
    model_dir = os.path.join(os.fspath(base_dir), name)
    final_dir = os.path.join(model_dir, str(version))
    existing = _version_folders(model_dir).get(version)
    if os.path.exists(final_dir) or existing is not None:
        taken = os.path.join(model_dir, existing or str(version))
        raise ValueError(
            f"{taken} already exists (version {version}); versions are never "
            "overwritten (omit --version to take the next free one)."
        )
    model_path = None
    if isinstance(model, (str, os.PathLike)):
        model_path = os.fspath(model)
    if graph not in GRAPHS:
        raise ValueError(f"Unknown graph {graph!r}; choose one of {', '.join(GRAPHS)}.")
    model = _load_model(model)
    label_names = _check_model(model)
    compute_dtype, _ = resolve_compute_dtype(compute_dtype)
    if pair is None:
        pair = _is_pair_model(model, model_path)
    texts = list(DEFAULT_WARMUP_TEXTS if warmup_texts is None else warmup_texts)

    os.makedirs(model_dir, exist_ok=True)
    # TF Serving ignores non-numeric folders: build here, then rename.
    work_dir = os.path.join(model_dir, f".tmp-{version}-{uuid.uuid4().hex[:8]}")
    try:
        with tempfile.TemporaryDirectory() as vocab_dir:
            vocab_path = os.path.join(vocab_dir, VOCAB_ASSET)
            vocabulary = model.preprocessor.tokenizer
            with open(vocab_path, "w", encoding="utf-8", newline="\n") as f:
                f.writelines(f"{token}\n" for token in vocabulary.vocabulary)
            tokenizer = _ServingTokenizer(
                vocab_path, vocabulary.vocabulary, bool(model.preprocessor.lowercase)
            )
            serving_graph = _ServingGraph(
                model,
                tokenizer,
                label_names,
                pair,
                bucket_lengths,
                compute_dtype=compute_dtype,
                graph=graph,
            )
            archive = _build_archive(serving_graph)
            archive.write_out(work_dir, verbose=False)
        _set_method_names(work_dir, {CLASSIFY_SIGNATURE: CLASSIFY_METHOD_NAME})
        extra = os.path.join(work_dir, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        requests = make_warmup_requests(
            texts, model_name=name, text_pairs=texts if pair else None
        )
        write_warmup_requests(os.path.join(extra, WARMUP_FILENAME), requests)
        os.rename(work_dir, final_dir)
    finally:
        if os.path.exists(work_dir):
            shutil.rmtree(work_dir, ignore_errors=True)
    return final_dir


def _build_archive(graph: _ServingGraph) -> Any:
    archive = keras.export.ExportArchive()
    # The weights the endpoints read, and the vocabulary table with its asset.
    for resource in graph.tracked:
        archive.track(resource)
    archive.track(graph.tokenizer.table)
    if graph.pair:
        archive.add_endpoint(
            PREDICT_SIGNATURE,
            graph.predict_pair,
            input_signature=[_string_spec("text"), _string_spec("text_pair")],
        )
    else:
        archive.add_endpoint(
            PREDICT_SIGNATURE,
            graph.predict_text,
            input_signature=[_string_spec("text")],
        )
    archive.add_endpoint(
        CLASSIFY_SIGNATURE, graph.classify, input_signature=[_string_spec("inputs")]
    )
    archive.add_endpoint(
        TOKEN_IDS_SIGNATURE,
        graph.predict_token_ids,
        input_signature=[
            _int_spec("token_ids"),
            _int_spec("segment_ids"),
            _int_spec("padding_mask"),
        ],
    )
    return archive


def _set_method_names(export_dir: str, method_names: dict[str, str]) -> None:
    """Rewrites signature method names in `saved_model.pb`, then its fingerprint."""
    from tensorflow.core.protobuf import saved_model_pb2

    pb_path = os.path.join(export_dir, "saved_model.pb")
    saved_model = saved_model_pb2.SavedModel()
    with open(pb_path, "rb") as f:
        saved_model.ParseFromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        for key, method_name in method_names.items():
            meta_graph.signature_def[key].method_name = method_name
    with open(pb_path, "wb") as f:
        f.write(saved_model.SerializeToString())
    # fingerprint.pb hashes saved_model.pb: write it again (or drop it: it is
    # optional, and a stale one would misidentify the model).
    try:
        from tensorflow.python.saved_model import fingerprinting_utils

        fingerprinting_utils.write_fingerprint(export_dir)
    except (ImportError, AttributeError, ValueError):
        fingerprint = os.path.join(export_dir, "fingerprint.pb")
        if os.path.exists(fingerprint):
            os.remove(fingerprint)
