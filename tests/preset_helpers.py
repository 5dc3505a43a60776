"""Sources for the `from_preset` tests: a pretraining run directory, a Hugging
Face directory and a keras-hub preset, all tiny and written in a temp dir."""

import json
import os

from conftest import make_token_batch, tiny_test_config

# Special tokens away from their usual ids, so that reading them is tested.
VOCAB = ["[PAD]", "the", "cat", "[UNK]", "dog", "[CLS]", "sat", "[SEP]", "[MASK]"]
VOCAB += [".", "on", "mat", "ran", "fast", "red", "blue", "house", "tree", "##s"]
VOCAB += [f"w{i}" for i in range(60 - len(VOCAB))]
VOCAB_IDS = {"pad_id": 0, "cls_id": 5, "sep_id": 7, "mask_id": 8}


def write_vocab(path, tokens=VOCAB):
    path = str(path)
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(f"{token}\n" for token in tokens))
    return path


def make_run_directory(run_dir, lowercase=True, state="final", steps=2):
    """What `run_pretraining` leaves: config.json, vocab.txt and saved models.

    Args:
        run_dir: the directory (a pathlib.Path), created.
        lowercase: the run config's `lowercase`.
        state: "final" (pretrainer.keras + discriminator.keras), "checkpoints"
            (checkpoints/step-N.weights.h5 only: an interrupted run) or None
            (config and vocabulary only: a run that has not trained yet).
        steps: training steps before saving.

    Returns:
        The trained `ElectraPretrainer` (None when `state` is None).
    """
    from electra_keras.models.pretrainer import ElectraPretrainer

    run_dir.mkdir(parents=True, exist_ok=True)
    config = tiny_test_config(**{"model.vocab_size": len(VOCAB)})
    config = config.replace(lowercase=lowercase)
    (run_dir / "config.json").write_text(config.to_json())
    write_vocab(run_dir / "vocab.txt")
    if state is None:
        return None
    model = ElectraPretrainer.from_config_object(config, VOCAB_IDS)
    model.compile(xla=False)
    batch = make_token_batch(8, seq_len=config.seq_len, vocab_size=len(VOCAB))
    for _ in range(steps):
        model.train_on_batch(batch)
    if state == "final":
        model.save(run_dir / "pretrainer.keras")
        model.discriminator.save(run_dir / "discriminator.keras")
    else:
        os.makedirs(run_dir / "checkpoints")
        model.save_weights(run_dir / "checkpoints" / f"step-{steps:07d}.weights.h5")
    return model


def write_hf_directory(directory, backbone, do_lower_case=None, vocab=True):
    """A Hugging Face ElectraModel directory of `backbone`, with its tokenizer files."""
    from electra_keras.conversion.hf import save_hf

    save_hf(backbone, str(directory))
    if vocab:
        write_vocab(directory / "vocab.txt")
    if do_lower_case is not None:
        (directory / "tokenizer_config.json").write_text(
            json.dumps({"do_lower_case": do_lower_case})
        )
    return str(directory)


def write_keras_hub_preset(directory, backbone, lowercase=False):
    """A keras-hub preset directory (backbone and tokenizer) of `backbone`."""
    import keras_hub

    from electra_keras.conversion.keras_hub import to_keras_hub

    theirs, _ = to_keras_hub(backbone)
    theirs.save_to_preset(str(directory))
    tokenizer = keras_hub.models.ElectraTokenizer(
        vocabulary=list(VOCAB), lowercase=lowercase
    )
    tokenizer.save_to_preset(str(directory))
    return str(directory)
