import json
import os

import numpy as np
import pytest

from electra_keras.finetuning import run_finetuning
from electra_keras.finetuning.tasks import Example, TaskDataError

from finetuning_helpers import (
    FAST,
    VOCAB,
    pretrained_backbone,
    sst2_task_dir,
)


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    root = tmp_path_factory.mktemp("ft")
    data_dir = sst2_task_dir(root / "SST-2")
    pretrained = pretrained_backbone(root / "pretrain")
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
    # Texts in the training format ("dull" alone is out of distribution).
    texts = ["a great film !", "a dull movie !"]
    predictions = run_finetuning.predict(result.model_path, texts)
    assert [p["label"] for p in predictions] == ["1", "0"]
    assert sum(predictions[0]["scores"].values()) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="2 labels but the model|label"):
        run_finetuning.evaluate(result.model_path, "mnli", data_dir=data_dir)


def test_output_into_a_file_has_one_line_per_epoch(tmp_path, capsys):
    """stdout is not a terminal here: the default picks one line per epoch."""
    data_dir = sst2_task_dir(tmp_path / "SST-2", n_train=16, n_dev=8)
    run_finetuning.finetune(
        task="sst2",
        data_dir=data_dir,
        pretrained=pretrained_backbone(tmp_path / "pretrain"),
        output_dir=str(tmp_path / "out"),
        **{**FAST, "epochs": 3, "verbose": "auto"},
    )
    out = capsys.readouterr().out
    assert "\r" not in out and "\x1b" not in out
    epochs = [line for line in out.splitlines() if line.startswith("Epoch ")]
    assert [line.split(":")[0] for line in epochs] == [
        "Epoch 1/3",
        "Epoch 2/3",
        "Epoch 3/3",
    ]
    assert all("val_accuracy" in line for line in epochs)
    # Nothing else from Keras: no "2/2 - 0s - ..." step lines.
    assert not any(line.startswith("2/2") for line in out.splitlines())
    # The closing summary: dev metrics, the majority-class rate, the model.
    summary = out[out.index("Done: fine-tuned sst2") :].splitlines()
    assert summary[1].startswith("  dev: accuracy ")
    assert summary[1].endswith("on 8 examples (majority class '0': 0.5000)")
    model_path = os.path.join(str(tmp_path / "out"), "classifier.keras")
    assert summary[2] == (
        f"  Model: {model_path} (metrics: {tmp_path / 'out' / 'metrics.json'})"
    )
    assert (
        summary[3] == f"  Next: electra-keras export --model {model_path} --name sst2"
    )


def test_summary_without_a_dev_split_says_so():
    text = run_finetuning.summarize_finetuning("csv", {}, "m.keras", "m.json", 3.2)
    assert text.splitlines() == [
        "Done: fine-tuned csv in 3s.",
        "  No dev split: no metrics.",
        "  Model: m.keras (metrics: m.json)",
        "  Next: electra-keras export --model m.keras --name classifier",
    ]


def test_bad_rows_fail_before_training(tmp_path):
    data_dir = sst2_task_dir(tmp_path / "SST-2")
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
    data_dir = sst2_task_dir(tmp_path / "SST-2", n_train=8, n_dev=4)
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
    pretrained_backbone(tmp_path / "runs" / "pretrain")
    run_finetuning.finetune(
        task="sst2", data_dir=data_dir, output_dir="b", **{**FAST, "epochs": 1}
    )
    model = run_finetuning.load_classifier("b/classifier.keras")
    assert model.backbone.hidden_dim == 16  # the default pretraining output
    with open("b/metrics.json") as f:
        recorded = json.load(f)
    assert recorded["pretrained"] == os.path.abspath(
        os.path.join("runs", "pretrain", "discriminator.keras")
    )
    assert (recorded["random_init"], recorded["preset"]) == (False, None)
    # A preset asks for a random model of that size: the default pretraining
    # output next to it is not used.
    run_finetuning.finetune(
        task="sst2",
        data_dir=data_dir,
        vocab=str(vocab),
        output_dir="c",
        preset="tiny",
        **{**FAST, "epochs": 1, "verbose": 1, "seed": 3},
    )
    assert "RANDOMLY INITIALIZED tiny model (asked for" in capsys.readouterr().out
    assert (
        run_finetuning.load_classifier("c/classifier.keras").backbone.hidden_dim == 128
    )
    with open("c/metrics.json") as f:
        recorded = json.load(f)
    assert recorded["pretrained"] is None and recorded["random_init"] is True
    assert (recorded["preset"], recorded["seed"]) == ("tiny", 3)
    # random_init: the default output's architecture, without its weights
    # (one step of lr 3e-3 moves a weight by about 3e-3 at most).
    import keras

    table = keras.saving.load_model("runs/pretrain/discriminator.keras")
    table = table.token_embedding.embeddings.numpy()
    b = run_finetuning.load_classifier("b/classifier.keras").backbone
    run_finetuning.finetune(
        task="sst2",
        data_dir=data_dir,
        output_dir="d",
        random_init=True,
        **{**FAST, "epochs": 1},
    )
    d = run_finetuning.load_classifier("d/classifier.keras")
    assert d.backbone.get_config() == b.get_config()
    assert d.preprocessor.vocabulary == VOCAB
    assert np.abs(b.token_embedding.embeddings.numpy() - table).max() < 0.01
    assert np.abs(d.backbone.token_embedding.embeddings.numpy() - table).max() > 0.02
    with open("d/metrics.json") as f:
        assert json.load(f)["random_init"] is True


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
        pretrained=pretrained_backbone(tmp_path / "pre"),
        output_dir=str(tmp_path / "out"),
        **{**FAST, "epochs": 1},
    )
    assert set(result.metrics["dev"]) >= {"pearson", "spearman", "num_examples"}
    (score,) = run_finetuning.predict(result.model_path, ["good film"])
    assert isinstance(score["score"], float)


def _stsb(directory):
    header = ["index", "genre", "filename", "year", "old_index", "source1"]
    header += ["source2", "sentence1", "sentence2", "score"]
    rows = ["\t".join(header)]
    pairs = [("good film", "great movie", 4.5), ("bad film", "a movie", 1.0)]
    pairs += [("fine !", "good film", 3.5), ("dull", "awful movie", 0.5)]
    for i, (a, b, score) in enumerate(pairs * 2):
        rows.append(
            "\t".join([str(i), "g", "f", "2012", "0", "s", "s", a, b, str(score)])
        )
    os.makedirs(directory, exist_ok=True)
    for name in ("train.tsv", "dev.tsv"):
        with open(os.path.join(directory, name), "w") as f:
            f.write("\n".join(rows) + "\n")
    return str(directory)


def test_stsb_trains_on_both_orders_with_scaled_targets(tmp_path, monkeypatch):
    seen = []
    original = run_finetuning.make_classification_dataset

    def recording(examples, preprocessor, batch_size, **kwargs):
        seen.append(
            (list(examples), kwargs.get("label_scale", 1.0), kwargs.get("shuffle"))
        )
        return original(examples, preprocessor, batch_size, **kwargs)

    monkeypatch.setattr(run_finetuning, "make_classification_dataset", recording)
    result = run_finetuning.finetune(
        task="stsb",
        data_dir=_stsb(tmp_path / "STS-B"),
        pretrained=pretrained_backbone(tmp_path / "pre"),
        output_dir=str(tmp_path / "out"),
        **{**FAST, "epochs": 1, "learning_rate": None, "layerwise_lr_decay": None},
    )
    (train, scale, _), (_, dev_scale, _) = sorted(seen, key=lambda s: not s[2])[:2]
    assert len(train) == 16 and scale == 5.0  # 8 rows, each in both orders
    assert (train[0].text, train[0].text_pair) == ("good film", "great movie")
    assert (train[8].text, train[8].text_pair) == ("great movie", "good film")
    assert dev_scale == 5.0  # validation loss in training units too
    with open(os.path.join(result.output_dir, "metrics.json")) as f:
        summary = json.load(f)
    assert summary["double_unordered"] and summary["train_examples"] == 16
    # A small-sized backbone gets the small defaults.
    assert summary["learning_rate"] == 3e-4 and summary["layerwise_lr_decay"] == 0.8

    # Predictions are multiplied back to 0-5 for metrics and predict().
    model = run_finetuning.load_classifier(result.model_path)
    assert model.label_scale == 5.0
    raw = np.asarray(model.predict(model.preprocessor.preprocess_texts(["dull"])))
    (score,) = run_finetuning.predict(result.model_path, ["dull"])
    np.testing.assert_allclose(score["score"], 5.0 * raw[0, 0], rtol=1e-5)
    captured = {}

    def fake_metrics(names, labels, predictions, notes):
        captured["predictions"] = np.asarray(predictions)
        return {}

    monkeypatch.setattr(run_finetuning, "compute_metrics", fake_metrics)
    run_finetuning.evaluate_examples(model, [Example("dull", None, 0.5)], ["pearson"])
    np.testing.assert_allclose(captured["predictions"], 5.0 * raw[:, 0], rtol=1e-5)

    # Off on request.
    seen.clear()
    run_finetuning.finetune(
        task="stsb",
        data_dir=str(tmp_path / "STS-B"),
        pretrained=str(tmp_path / "pre" / "discriminator.keras"),
        output_dir=str(tmp_path / "out2"),
        double_unordered=False,
        **{**FAST, "epochs": 1},
    )
    assert len(seen[0][0]) == 8


def test_size_defaults_follow_the_original():
    assert run_finetuning.FINETUNING_DEFAULTS == {
        "small": {"learning_rate": 3e-4, "layerwise_lr_decay": 0.8},
        "base": {"learning_rate": 1e-4, "layerwise_lr_decay": 0.8},
        "large": {"learning_rate": 5e-5, "layerwise_lr_decay": 0.9},
    }
    sizes = [run_finetuning.model_size(h) for h in (16, 128, 256, 768, 1024)]
    assert sizes == ["small", "small", "small", "base", "large"]
    assert run_finetuning.DEFAULT_EPOCHS == {"rte": 10, "stsb": 10}


@pytest.mark.slow
def test_cli_finetune_evaluate_predict(tmp_path, capsys):
    from electra_keras.cli import main

    data_dir = sst2_task_dir(tmp_path / "SST-2")
    pretrained = pretrained_backbone(tmp_path / "pretrain")
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
            "--progress",
            "epoch",
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
    texts = ["a great movie !", "a awful film !"]  # the training format
    assert main(["predict", "--model", model, *texts]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("1\t") and lines[1].startswith("0\t")
    assert main(["evaluate", "--model", model, "--task", "sst2"]) == 2
    assert "--data-dir is required" in capsys.readouterr().err


def test_an_unfinished_run_resumes_only_with_its_own_settings(
    tmp_path, monkeypatch, capsys
):
    from electra_keras.models.classifier import ElectraClassifier

    data_dir = sst2_task_dir(tmp_path / "SST-2")
    pretrained = pretrained_backbone(tmp_path / "pretrain")
    out = str(tmp_path / "ft")
    args = dict(task="sst2", data_dir=data_dir, pretrained=pretrained, output_dir=out)
    args.update(FAST, epochs=2, checkpoint_every=3, seed=1)

    def interrupted(self, *a, **k):
        raise KeyboardInterrupt("stopped before saving")

    with monkeypatch.context() as patch:
        patch.setattr(ElectraClassifier, "save", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run_finetuning.finetune(**args)
    backup = tmp_path / "ft" / "backup"
    kept = sorted(p.name for p in backup.iterdir())
    # 16 steps: checkpoints at 3, 6, ..., 15, the newest two kept.
    assert kept == ["run.json", "step-0000012.weights.h5", "step-0000015.weights.h5"]
    with pytest.raises(ValueError, match=r"other settings \(seed: 1 then, 0 now\)"):
        run_finetuning.finetune(**{**args, "seed": 0})
    assert sorted(p.name for p in backup.iterdir()) == kept  # nothing lost
    args["verbose"] = 2
    result = run_finetuning.finetune(**args)
    assert "Resuming from step 15 of 16" in capsys.readouterr().out
    assert os.path.exists(result.model_path) and not backup.exists()


def test_resume_bookkeeping_never_mixes_runs(tmp_path, monkeypatch):
    from electra_keras.training import resume_checkpoint

    backup = tmp_path / "backup"
    backup.mkdir()
    settings = {"seed": 0, "train_examples": 64, "train_steps": 24}
    # Stopped before its first checkpoint: a rerun with other settings starts.
    (backup / "run.json").write_text('{"seed": 1}')
    assert run_finetuning._resume_step(str(backup), settings) == 0
    assert not (backup / "run.json").exists()
    # Checkpoints that are not a fine-tuning run's: refused, nothing deleted.
    (backup / "step-0000004.weights.h5").write_bytes(b"someone else's")
    with pytest.raises(ValueError, match="no run.json.*nothing was deleted"):
        run_finetuning._resume_step(str(backup), settings)
    assert (backup / "step-0000004.weights.h5").exists()
    # The training data changed under an unfinished run: refused, named.
    monkeypatch.setattr(resume_checkpoint, "latest_resume_step", lambda d: 4)
    (backup / "run.json").write_text(json.dumps({**settings, "train_examples": 60}))
    with pytest.raises(ValueError, match="train_examples: 60 then, 64 now"):
        run_finetuning._resume_step(str(backup), settings)
    (backup / "run.json").write_text(json.dumps(settings))
    assert run_finetuning._resume_step(str(backup), settings) == 4
