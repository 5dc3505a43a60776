"""The `electra-keras` command line."""

import argparse
import os
import re
import subprocess
import sys

import keras
import pytest

from electra_keras.cli import build_parser, main, pretrain_config_from_args
from electra_keras.cli_parsing import has_default
from electra_keras.config import ConfigError

from conftest import REPO_ROOT


def test_flags_map_onto_the_preset():
    args = build_parser().parse_args(
        [
            "pretrain",
            "--preset",
            "small",
            "--batch-size",
            "64",
            "--generator-fraction",
            "0.5",
            "--mlm-only",
            "--set",
            "model.dropout=0.0",
            "--set",
            "temperature=0.5",
        ]
    )
    config = pretrain_config_from_args(args)
    assert config.model.hidden_dim == 256 and config.model.num_layers == 12
    assert config.batch_size == 64
    assert config.model.generator_fraction == 0.5
    assert config.electra_objective is False
    assert config.model.dropout == 0.0
    assert config.temperature == 0.5
    assert config.learning_rate == 5e-4  # untouched preset value


def test_set_values_take_the_fields_types():
    parse = build_parser().parse_args

    def config(*items):
        return pretrain_config_from_args(
            parse(["pretrain", *sum([["--set", i] for i in items], [])])
        )

    # A boolean "no" was the string "no", which is true: the run stayed ELECTRA.
    assert config("electra_objective=no").electra_objective is False
    assert config("lowercase=Off", "stop_on_collapse=yes").lowercase is False
    changed = config("train_steps=300", "model.dropout=0", "learning_rate=1e-3")
    assert (changed.train_steps, changed.model.dropout) == (300, 0.0)
    assert type(changed.model.dropout) is float and changed.learning_rate == 1e-3
    for item, message in (
        ("train_steps=1e3", "train_steps expects an integer, got '1e3'"),
        ("seq_len=64.0", "seq_len expects an integer"),
        ("batch_size=abc", "batch_size expects an integer"),
        ("electra_objective=maybe", "expects true or false"),
        ("temperature=hot", "temperature expects a number"),
        ("model=1", "use model.<field>"),
        ("no_such_field=1", "no_such_field"),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            config(item)


def test_corpus_format_flag():
    parse = build_parser().parse_args
    args = parse(["pretrain", "--corpus-format", "document-per-line"])
    assert pretrain_config_from_args(args).corpus_format == "document-per-line"
    assert pretrain_config_from_args(parse(["pretrain"])).corpus_format == "auto"


def test_checkpoint_every_flag_and_its_check():
    parse = build_parser().parse_args
    assert pretrain_config_from_args(parse(["pretrain"])).checkpoint_every == 0
    args = parse(["pretrain", "--checkpoint-every", "7"])
    assert pretrain_config_from_args(args).checkpoint_every == 7
    with pytest.raises(ConfigError, match="checkpoint_every"):
        pretrain_config_from_args(parse(["pretrain", "--checkpoint-every", "-1"]))


def test_short_runs_get_a_proportional_warmup():
    args = build_parser().parse_args(["pretrain", "--train-steps", "20"])
    assert pretrain_config_from_args(args).warmup_steps == 2


@pytest.mark.slow
def test_default_command_smoke_run(tmp_path):
    """`electra-keras pretrain` on its built-in default, fewer steps."""
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    cmd = [sys.executable, "-m", "electra_keras.cli", "pretrain"]
    cmd += ["--train-steps", "4", "--steps-per-epoch", "2"]
    cmd += ["--output-dir", str(tmp_path / "run")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "WikiText-2 demo corpus" in out
    assert "Epoch 2/2" in out
    assert "Done: 4 steps" in out
    import electra_keras.models.backbone  # noqa: F401 (registers the class)

    discriminator = keras.saving.load_model(tmp_path / "run" / "discriminator.keras")
    # The demo learns (and caches) an 8k vocabulary from WikiText-2 train.
    vocab = (tmp_path / "run" / "vocab.txt").read_text().splitlines()
    assert discriminator.vocab_size == len(vocab)
    assert 7_000 < len(vocab) <= 8_000
    assert discriminator.hidden_dim == 128  # the tiny preset


def test_pretraining_summary_gives_a_verdict():
    from types import SimpleNamespace

    from electra_keras.cli import summarize_pretraining

    def result(auc, mlm, **extra):
        evals = dict(
            mlm_loss=mlm,
            mlm_accuracy=0.2,
            disc_auc=auc,
            disc_accuracy=0.9,
            disc_loss=0.3,
            disc_precision=0.6,
            disc_recall=0.3,
        )
        metrics = {
            "objective": "electra",
            "eval": evals,
            "unigram_entropy": 6.9,
            "prior_entropy": 0.41,
            "collapse": {"fired": False},
            **extra,
        }
        return SimpleNamespace(
            steps=500, seconds=60.0, metrics=metrics, discriminator_path="r/d.keras"
        )

    good = summarize_pretraining(result(auc=0.85, mlm=6.2))
    assert "Verdict: the run learned context" in good
    assert "eval discriminator AUC 0.850" in good and "unigram entropy 6.900" in good
    assert "electra-keras finetune --task mr --pretrained r/d.keras" in good
    # AUC high but the generator only learned frequencies: not learned.
    assert "NOT learned" in summarize_pretraining(result(auc=0.85, mlm=6.85))
    assert "NOT learned" in summarize_pretraining(result(auc=0.6, mlm=6.2))
    fired = summarize_pretraining(result(auc=0.5, mlm=7.0, collapse={"fired": True}))
    assert "collapse guard fired" in fired
    empty = summarize_pretraining(result(auc=0.5, mlm=7.0, eval={}))
    assert "No evaluation ran" in empty
    assert "Speed" not in empty  # no step was timed
    speed = {"tokens_per_s": 2000.0, "model_tflops": 0.5, "device": "CPU"}
    timed = summarize_pretraining(result(auc=0.85, mlm=6.2, throughput=speed))
    assert (
        "  Speed (after each epoch's first step): 2,000 tokens/s, 0.5 model " in timed
    )


def _subcommands():
    parser = build_parser()
    (action,) = [
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    ]
    return action.choices


SUBCOMMANDS = sorted(_subcommands())


def test_every_subcommand_is_covered():
    assert {"pretrain", "finetune", "export", "convert", "info"} <= set(SUBCOMMANDS)


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_shows_defaults_and_an_example(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    flat = " ".join(text.split())
    example = text.split("Example")[-1]
    assert "Example" in text and f"electra-keras {command}" in example
    parser = _subcommands()[command]
    for action in parser._actions:
        if not has_default(action):
            continue
        if "default" in (action.help or "").lower():
            continue  # the help text states it in words
        shown = f"(default: {action.default})"
        assert shown in flat, f"{command} {action.option_strings[0]}: no {shown}"


def test_pretrain_help_gives_the_preset_values():
    text = " ".join(_subcommands()["pretrain"].format_help().split())
    assert (
        "--train-steps TRAIN_STEPS Optimizer steps in all. (default: the preset's; tiny: 1500)"
        in text
    )


def test_convert_help_lists_every_format(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["convert", "--help"])
    text = capsys.readouterr().out
    for line_start in ("hf DIR", "tf1 CKPT", "keras-hub DIR", "FILE.keras"):
        assert any(line.strip().startswith(line_start) for line in text.splitlines())


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    env.pop("ELECTRA_KERAS_VERBOSE", None)
    return subprocess.run(
        [sys.executable, "-m", "electra_keras", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_a_missing_file_is_one_line_and_status_2(tmp_path):
    missing = str(tmp_path / "missing.keras")
    proc = _cli("predict", "--model", missing, "a film")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"electra-keras: error: Model file {missing} does not exist."
    ]
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.mark.parametrize(
    "argv, message",
    [
        (["pretrain", "--xla", "maybe"], "argument --xla: invalid choice: 'maybe'"),
        (["finetune", "--epochs", "three"], "argument --epochs: invalid int value"),
        (["export", "--name", "x"], "the following arguments are required: --model"),
        (
            ["export", "--model", "m.keras", "--name", "x", "--compute-dtype", "fp8"],
            "argument --compute-dtype: invalid choice: 'fp8'",
        ),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_a_wrong_flag_is_one_line_and_status_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert line.startswith("electra-keras: error: ") and message in line
    assert "--help" in line and captured.out == ""


@pytest.mark.parametrize(
    "argv, message",
    [
        (["convert", "--from", "hf", "x", "--to", "tf1", "y"], "Writing TF1"),
        (["convert", "--from", "a.keras", "--to", "b.keras"], "keras to keras"),
        (["convert", "--from", "tf1", "--to", "b.keras"], "--from tf1 needs a path"),
        (["convert", "--from", "hf", "nowhere", "--to", "b.keras"], "nowhere does not"),
        (
            ["serve", "--model-config", "m.config", "--tensorflow_intra_op_parallelism"]
            + ["-1"],
            "Thread pool sizes must be 0",
        ),
    ],
)
def test_user_errors_are_one_line_and_status_2(argv, message, capsys):
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("electra-keras: error: ") and message in line


def test_bugs_keep_their_traceback_and_verbose_shows_every_one(monkeypatch):
    from electra_keras import runtime_info

    def broken(args):
        raise TypeError("a bug")

    monkeypatch.setattr(runtime_info, "_info", broken)
    with pytest.raises(TypeError, match="a bug"):
        main(["info"])

    def refuses(args):
        raise ValueError("a user error")

    monkeypatch.setattr(runtime_info, "_info", refuses)
    assert main(["info"]) == 2
    with pytest.raises(ValueError, match="a user error"):
        main(["info", "--verbose"])
    with pytest.raises(ValueError, match="a user error"):
        main(["--verbose", "info"])


def test_defaults_that_are_zero_are_shown_and_flags_have_none():
    actions = {a.dest: a for a in _subcommands()["finetune"]._actions}
    assert has_default(actions["seed"])  # default 0
    assert not has_default(actions["double_unordered"])  # a store_false flag
    assert not has_default(actions["pretrained"])  # default None
