import json
import os

import numpy as np
import pytest

from electra_keras.config import ModelConfig
from electra_keras.finetuning import run_finetuning
from electra_keras.finetuning.tasks import TaskDataError
from electra_keras.models.backbone import ElectraBackbone

from conftest import TINY_BACKBONE

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB += ["good", "great", "fine", "bad", "awful", "dull", "film", "a", "movie", "!"]

CONFIG = ModelConfig(vocab_size=len(VOCAB), **TINY_BACKBONE)

# A random one-layer backbone learns the one-word task in about 50 steps.
FAST = dict(
    epochs=10,
    batch_size=8,
    seq_len=8,
    learning_rate=3e-3,
    layerwise_lr_decay=1.0,
    dropout=0.0,
    verbose=0,
)


def _sst2(directory, n_train=64, n_dev=16, seed=0):
    rng = np.random.default_rng(seed)
    pos, neg = ["good", "great", "fine"], ["bad", "awful", "dull"]
    os.makedirs(directory, exist_ok=True)
    for name, n in (("train.tsv", n_train), ("dev.tsv", n_dev)):
        rows = ["sentence\tlabel"]
        for i in range(n):
            label = i % 2
            word = rng.choice(pos if label else neg)
            rows.append(f"a {word} {rng.choice(['film', 'movie'])} !\t{label}")
        with open(os.path.join(directory, name), "w") as f:
            f.write("\n".join(rows) + "\n")
    return str(directory)


def _pretrained(directory):
    os.makedirs(directory, exist_ok=True)
    backbone = ElectraBackbone(**CONFIG.backbone_kwargs())
    path = os.path.join(directory, "discriminator.keras")
    backbone.save(path)
    with open(os.path.join(directory, "vocab.txt"), "w") as f:
        f.write("\n".join(VOCAB) + "\n")
    return path


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    root = tmp_path_factory.mktemp("ft")
    data_dir = _sst2(root / "SST-2")
    pretrained = _pretrained(root / "pretrain")
    result = run_finetuning.finetune(
        task="sst2",
        data_dir=data_dir,
        pretrained=pretrained,
        output_dir=str(root / "out"),
        **FAST,
    )
    return result, data_dir, root


def test_finetune_writes_model_and_metrics(finetuned):
    result, _, root = finetuned
    assert os.path.isfile(result.model_path)
    with open(os.path.join(result.output_dir, "metrics.json")) as f:
        summary = json.load(f)
    dev = summary["metrics"]["dev"]
    assert dev["num_examples"] == 16
    assert dev["majority_rate"] == 0.5
    assert dev["accuracy"] == result.metrics["dev"]["accuracy"]
    # The task is separable by one word: the tiny model learns it.
    assert dev["accuracy"] >= 0.9
    assert len(result.history["loss"]) == 10
    assert os.listdir(os.path.join(result.output_dir, "logs"))
    model = run_finetuning.load_classifier(result.model_path)
    assert model.preprocessor.vocabulary == VOCAB  # from the pretraining run
    assert model.label_names == ["0", "1"]


def test_evaluate_and_predict(finetuned, tmp_path):
    result, data_dir, _ = finetuned
    output = str(tmp_path / "eval" / "metrics.json")
    metrics = run_finetuning.evaluate(
        result.model_path, "sst2", data_dir=data_dir, output=output, verbose=0
    )
    assert metrics["dev"]["accuracy"] == pytest.approx(
        result.metrics["dev"]["accuracy"]
    )
    with open(output) as f:
        assert json.load(f)["metrics"]["dev"]["num_examples"] == 16
    predictions = run_finetuning.predict(result.model_path, ["a great film", "dull"])
    assert [p["label"] for p in predictions] == ["1", "0"]
    assert sum(predictions[0]["scores"].values()) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="2 labels but the model|label"):
        run_finetuning.evaluate(result.model_path, "mnli", data_dir=data_dir)


def test_bad_rows_fail_before_training(tmp_path):
    data_dir = _sst2(tmp_path / "SST-2")
    with open(os.path.join(data_dir, "dev.tsv"), "a") as f:
        f.write("a film\tmaybe\n")
    out = tmp_path / "out"
    with pytest.raises(TaskDataError, match=r"dev.tsv:18: unknown label 'maybe'"):
        run_finetuning.finetune(
            task="sst2", data_dir=data_dir, output_dir=str(out), **FAST
        )
    assert not out.exists()
    with pytest.raises(ValueError, match="--data-dir is required"):
        run_finetuning.finetune(task="rte", output_dir=str(out), **FAST)


def test_default_pretrained_and_random_init_notice(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    data_dir = _sst2(tmp_path / "SST-2", n_train=8, n_dev=4)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n")
    run_finetuning.finetune(
        task="sst2",
        data_dir=data_dir,
        vocab=str(vocab),
        output_dir="a",
        **{**FAST, "epochs": 1, "verbose": 1},
    )
    out = capsys.readouterr().out
    assert "RANDOMLY INITIALIZED tiny model" in out
    _pretrained(tmp_path / "runs" / "pretrain")
    run_finetuning.finetune(
        task="sst2", data_dir=data_dir, output_dir="b", **{**FAST, "epochs": 1}
    )
    model = run_finetuning.load_classifier("b/classifier.keras")
    assert model.backbone.hidden_dim == 16  # the default pretraining output


def test_csv_task_regression(tmp_path):
    rows = ["text,score"] + [
        f"{w} film,{s}"
        for w, s in [("good", 4.5), ("bad", 0.5), ("fine", 3.0), ("dull", 1.0)] * 4
    ]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    result = run_finetuning.finetune(
        task="csv",
        train_file=str(tmp_path / "train.csv"),
        dev_file=str(tmp_path / "train.csv"),
        text_column="text",
        label_column="score",
        regression=True,
        pretrained=_pretrained(tmp_path / "pre"),
        output_dir=str(tmp_path / "out"),
        **{**FAST, "epochs": 1},
    )
    assert set(result.metrics["dev"]) >= {"pearson", "spearman", "num_examples"}
    (score,) = run_finetuning.predict(result.model_path, ["good film"])
    assert isinstance(score["score"], float)


@pytest.mark.slow
def test_cli_finetune_evaluate_predict(tmp_path, capsys):
    from electra_keras.cli import main

    data_dir = _sst2(tmp_path / "SST-2")
    pretrained = _pretrained(tmp_path / "pretrain")
    out = str(tmp_path / "ft")
    code = main(
        [
            "finetune",
            "--task",
            "sst2",
            "--data-dir",
            data_dir,
            "--pretrained",
            pretrained,
            "--output-dir",
            out,
            "--epochs",
            "10",
            "--layerwise-lr-decay",
            "1.0",
            "--dropout",
            "0.0",
            "--batch-size",
            "8",
            "--seq-len",
            "8",
            "--learning-rate",
            "3e-3",
            "--verbose",
            "2",
        ]
    )
    assert code == 0
    assert "dev: accuracy" in capsys.readouterr().out
    model = os.path.join(out, "classifier.keras")
    metrics = str(tmp_path / "m.json")
    assert (
        main(
            [
                "evaluate",
                "--model",
                model,
                "--task",
                "sst2",
                "--data-dir",
                data_dir,
                "--output",
                metrics,
            ]
        )
        == 0
    )
    assert "accuracy" in capsys.readouterr().out
    assert json.load(open(metrics))["metrics"]["dev"]["accuracy"] >= 0.9
    assert main(["predict", "--model", model, "a great movie", "awful !"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("1\t") and lines[1].startswith("0\t")
    assert main(["evaluate", "--model", model, "--task", "sst2"]) == 2
    assert "--data-dir is required" in capsys.readouterr().err
