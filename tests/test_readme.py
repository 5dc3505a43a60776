"""Every ```python block of README.md runs, in order, as written.

The blocks run in one namespace (later blocks use what earlier ones saved), in
a temp directory. The only differences from a user's run, so that this takes
seconds, not days:

- the directory holds a generated `corpus.txt` (random sentences over a small
  word list), its `vocab.txt` and a labelled `train.csv` (text, label);
- every size preset ("tiny" to "large") is `TEST_PRESET` (one layer of width
  16, seq_len 32, batch 8, 4 steps in 2 epochs), by patching
  `electra_keras.config._presets`, which `get_preset` reads;
- the streaming shuffle buffer is 64 examples
  (`electra_keras.data.pretraining_data.DEFAULT_SHUFFLE_BUFFER`) instead of
  10,000, which a small corpus would have to be read hundreds of times to fill.

No network: nothing here downloads.
"""

import csv
import os
import re

import numpy as np
import pytest

from conftest import REPO_ROOT, WORDS, write_word_corpus, write_word_vocab

BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)

TEST_OVERRIDES = {
    "model.num_layers": 1,
    "model.hidden_dim": 16,
    "model.num_heads": 2,
    "model.intermediate_dim": 32,
    "model.embedding_dim": 8,
    "model.max_sequence_length": 32,
    "model.dropout": 0.0,
    "seq_len": 32,
    "batch_size": 8,
    "warmup_steps": 1,
    "train_steps": 4,
    "steps_per_epoch": 2,
    "eval_steps": 0,
}


def readme_blocks() -> list[str]:
    with open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8") as f:
        return BLOCK.findall(f.read())


def _write_train_csv(path, rows=48, seed=0):
    """Texts over the corpus words; label 1 when "happily" is in the text."""
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for i in range(rows):
            words = list(rng.choice(WORDS, size=6))
            label = i % 2
            words = [w for w in words if w != "happily"] + (["happily"] * label)
            writer.writerow([" ".join(words), label])


def test_readme_has_the_quickstart_blocks():
    blocks = readme_blocks()
    assert len(blocks) >= 3
    assert any("ElectraPretrainer.from_preset" in block for block in blocks)
    assert any("ElectraClassifier.from_preset" in block for block in blocks)
    # Users import from the public packages only.
    for block in blocks:
        for module in re.findall(r"^\s*from (electra_keras\S*) import", block, re.M):
            assert module in ("electra_keras.data", "electra_keras.models"), module


@pytest.mark.slow
def test_readme_python_blocks_run(tmp_path, monkeypatch):
    from electra_keras import config
    from electra_keras.data import pretraining_data

    test_preset = config.get_preset("tiny").replace(**TEST_OVERRIDES)
    monkeypatch.setattr(
        config,
        "_presets",
        lambda: {name: test_preset.replace() for name in config.PRESET_NAMES},
    )
    monkeypatch.setattr(pretraining_data, "DEFAULT_SHUFFLE_BUFFER", 64)
    write_word_corpus(tmp_path / "corpus.txt", num_docs=80)
    write_word_vocab(tmp_path / "vocab.txt")
    _write_train_csv(tmp_path / "train.csv")
    monkeypatch.chdir(tmp_path)

    namespace = {"__name__": "__readme__"}
    for index, block in enumerate(readme_blocks()):
        try:
            exec(
                compile(block, f"README.md python block {index + 1}", "exec"), namespace
            )
        except Exception as error:
            first = block.strip().splitlines()[0]
            raise AssertionError(
                f"README python block {index + 1} (starting {first!r}) failed: "
                f"{type(error).__name__}: {str(error)[:1000]}"
            ) from error

    # What the blocks promise, checked at the end.
    assert (tmp_path / "discriminator.keras").is_file()
    assert (tmp_path / "classifier.keras").is_file()
    assert int(namespace["model"].optimizer.iterations.numpy()) == 4
    probabilities = namespace["classifier"].predict_texts(["the cat sat happily"])
    assert probabilities.shape == (1, 2)
    np.testing.assert_allclose(probabilities.sum(), 1.0, rtol=1e-5)
