"""The study: equal-FLOP configs, report numbers, and a micro run's outputs."""

import json
import math
import os

import pytest

from electra_keras.config import ConfigError, get_preset
from electra_keras.pretraining.flops import pretraining_flops
from electra_keras.study import report
from electra_keras.study.run_study import run_study, study_configs

from conftest import write_word_corpus, write_word_vocab


def test_study_configs_spend_equal_flops():
    electra, mlm = study_configs("tiny", budget=2.0)
    assert electra.electra_objective and not mlm.electra_objective
    base = study_configs("tiny", budget=1.0)[0]
    assert electra.train_steps == 2 * base.train_steps
    spent = [
        pretraining_flops(c)["train_per_step"] * c.train_steps for c in (electra, mlm)
    ]
    # Equal up to the rounding of one MLM step.
    one_step = pretraining_flops(mlm)["train_per_step"]
    assert abs(spent[0] - spent[1]) <= one_step / 2 + 1
    # Warm-up keeps its fraction of the run.
    assert electra.warmup_steps / electra.train_steps == pytest.approx(
        base.warmup_steps / base.train_steps, abs=1e-3
    )
    with pytest.raises(ConfigError, match="budget"):
        study_configs("tiny", budget=0)


def test_describe_and_ordering():
    stats = report.describe([0.70, 0.74, 0.72])
    assert stats["mean"] == pytest.approx(0.72)
    assert stats["std"] == pytest.approx(0.02)  # sample std
    assert report.describe([0.5])["std"] == 0.0
    finetuning = {
        "a": {"electra": {"mean": 0.8}, "mlm": {"mean": 0.7}, "random": {"mean": 0.6}},
        "b": {"electra": {"mean": 0.8}, "mlm": {"mean": 0.9}, "random": {"mean": 0.6}},
    }
    order = report.ordering(finetuning)
    assert order["tasks"]["a"]["holds"] and not order["tasks"]["b"]["holds"]
    assert not order["electra_gt_mlm_gt_random_everywhere"]
    assert order["tasks"]["b"]["electra_minus_mlm"] == pytest.approx(-0.1)


def _csv_task(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    good = "fine good great nice lovely".split()
    bad = "awful bad poor dull grim".split()
    for split, n in (("train", 48), ("dev", 24)):
        lines = ["text,label"]
        for i in range(n):
            words = good if i % 2 else bad
            lines.append(" ".join(rng.choice(words, size=6)) + f",{i % 2}")
        (tmp_path / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return {
        "name": "toy",
        "task": "csv",
        "train_file": str(tmp_path / "train.csv"),
        "dev_file": str(tmp_path / "dev.csv"),
        "text_column": "text",
        "label_column": "label",
    }


@pytest.mark.slow
def test_micro_study_writes_table_json_and_chart(tmp_path, capsys):
    corpus = write_word_corpus(tmp_path / "corpus.txt", num_docs=80)
    vocab = write_word_vocab(tmp_path / "vocab.txt")
    task = _csv_task(tmp_path)
    options = dict(
        output_dir=str(tmp_path / "study"),
        budget=5 / get_preset("tiny").train_steps,  # 5 ELECTRA steps
        tasks=[task],
        seeds=2,
        corpus=[corpus],
        vocab=vocab,
        config_changes={
            "batch_size": 4,
            "seq_len": 32,
            "model.max_sequence_length": 32,
            "eval_steps": 2,
            "eval_fraction": 0.2,
        },
        finetune_options={"epochs": 1, "batch_size": 8, "seq_len": 16},
        verbose=0,
    )
    result = run_study(**options)
    summary = json.loads(open(result.json_path).read())
    assert summary["pretraining"]["electra"]["steps"] == 5
    electra, mlm = summary["pretraining"]["electra"], summary["pretraining"]["mlm"]
    assert mlm["steps"] > electra["steps"]  # an MLM step is cheaper
    assert (
        abs(electra["train_flops"] - mlm["train_flops"]) <= mlm["train_flops_per_step"]
    )
    for key in ("disc_auc", "mlm_loss"):
        assert key in electra["eval"]
    toy = summary["finetuning"]["toy"]
    assert toy["metric"] == "accuracy"
    for model in ("electra", "mlm", "random"):
        values = toy[model]["values"]
        assert len(values) == 2 and all(0.0 <= v <= 1.0 for v in values)
        assert toy[model]["mean"] == pytest.approx(sum(values) / 2)
    assert "electra_gt_mlm_gt_random_everywhere" in summary["ordering"]
    with open(result.chart_path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert "ELECTRA > MLM > random init on every task" in out
    assert "TFLOP" in out
    # Started again, everything is reused: same numbers, no training.
    again = run_study(**options)
    assert again.summary["finetuning"] == summary["finetuning"]
    assert not math.isnan(again.summary["seconds"])


class _Stop(Exception):
    pass


def test_mlm_steps_use_the_vocabulary_the_electra_run_resolved(tmp_path, monkeypatch):
    # Without --vocab the ELECTRA run picks its vocabulary (the demo corpus's
    # 8k one, say): the equal-FLOP MLM steps must be counted with it, not
    # with the preset's 30,522 entries.
    from electra_keras.pretraining.flops import equal_flops_steps
    from electra_keras.study import run_study as study_module

    seen = {}

    def fake_pretrain(config, run_dir, corpus, vocab, verbose):
        name = os.path.basename(run_dir)
        seen[name] = config
        if name == "mlm":
            raise _Stop
        os.makedirs(run_dir, exist_ok=True)
        tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tokens += [f"w{i}" for i in range(495)]
        (tmp_path / "study" / "electra" / "vocab.txt").write_text("\n".join(tokens))
        return {"output_dir": run_dir}

    monkeypatch.setattr(study_module, "_pretrain", fake_pretrain)
    with pytest.raises(_Stop):
        run_study(output_dir=str(tmp_path / "study"), tasks=[_csv_task(tmp_path)])
    electra, mlm = study_configs("tiny", **{"model.vocab_size": 500})
    assert seen["mlm"].model.vocab_size == 500
    assert seen["mlm"].train_steps == mlm.train_steps
    assert mlm.train_steps == equal_flops_steps(electra, mlm, electra.train_steps)
    assert mlm.train_steps != study_configs("tiny")[1].train_steps


def test_settings_and_tasks_are_checked_before_pretraining(tmp_path, monkeypatch):
    from electra_keras.study import run_study as study_module

    def no_pretraining(*args):
        raise AssertionError("pretraining started")

    monkeypatch.setattr(study_module, "_pretrain", no_pretraining)
    out = str(tmp_path / "study")
    task = _csv_task(tmp_path)
    with pytest.raises(ValueError, match="mrr"):
        run_study(output_dir=out, tasks=[task, "mrr"])
    with pytest.raises(ConfigError, match="epochs"):
        run_study(output_dir=out, tasks=[task], finetune_options={"epochs": 0})
    settings = {"budget": 1.0, "seeds": 3, "tasks": [task]}
    study_module._check_settings(out, settings)
    # The same settings, or more seeds or tasks: the finished runs are reused.
    study_module._check_settings(out, {**settings, "seeds": 5, "tasks": [task, "mr"]})
    with pytest.raises(ConfigError, match=r"budget: 1.0 then, 2.0 now"):
        study_module._check_settings(out, {**settings, "budget": 2.0})
    # A task changed under the same name would reuse its finished runs.
    other_file = {**task, "train_file": str(tmp_path / "other.csv")}
    with pytest.raises(ConfigError, match="task toy: "):
        study_module._check_settings(out, {**settings, "tasks": [other_file]})
    with pytest.raises(ConfigError, match="no study_settings.json"):
        os.makedirs(tmp_path / "old" / "electra")
        study_module._check_settings(str(tmp_path / "old"), settings)
