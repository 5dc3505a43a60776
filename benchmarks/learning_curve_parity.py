"""Our pretraining's learning curve next to transformers' on the same examples and recipe.

    python benchmarks/learning_curve_parity.py                       # tiny, 1,500 steps
    python benchmarks/learning_curve_parity.py --train-steps 3000 --eval-every 500
    python benchmarks/learning_curve_parity.py -- --preset tiny --seq-len 128

It answers "is it our code or the recipe?" when a run learns slowly:

1. `electra-keras pretrain` (the preset's defaults, or the arguments after
   `--`) with an evaluation every `--eval-every` steps;
2. the packed examples that run wrote (train and eval TFRecords) go to
   `examples.npz`, and `benchmarks/peers/hf_learning_curve.py` trains
   transformers' `ElectraForPreTraining` + `ElectraForMaskedLM` on them with
   the run's config.json, under `--hf-python` (torch and transformers; see
   `../shared/perf/setup_venvs.sh`);
3. a count-based ceiling: the AUC of a bigram pointwise-mutual-information
   score (each token against both neighbours, counts from the same train
   examples) at telling eval tokens from unigram-sampled replacements, which is
   what a discriminator faces once its generator has learned the token
   frequencies. It shows how much of the gap is learnable from the data.

Printed: one row per evaluation with both implementations' eval MLM loss and
discriminator AUC, the eval unigram entropy, and the ceiling. The two
implementations draw their masks and samples from different generators, so
their curves agree in distribution, not bit for bit: read differences of a
few hundredths as noise.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "peers"))

from roc import roc_auc  # noqa: E402 (after the path)


def _export_examples(run_dir: str, path: str) -> dict[str, np.ndarray]:
    import tensorflow as tf

    from electra_keras.data.tfrecords import FEATURE_NAMES

    with open(os.path.join(run_dir, "config.json")) as f:
        seq_len = json.load(f)["seq_len"]
    spec = {name: tf.io.FixedLenFeature([seq_len], tf.int64) for name in FEATURE_NAMES}
    arrays = {}
    for split, pattern in (
        ("train", os.path.join(run_dir, "data", "pretrain_data.tfrecord-*")),
        ("eval", os.path.join(run_dir, "data", "eval", "pretrain_data.tfrecord-*")),
    ):
        files = sorted(glob.glob(pattern))
        if not files:
            raise SystemExit(f"No {split} TFRecords under {run_dir}/data.")
        records = tf.data.TFRecordDataset(files).map(
            lambda r: tf.io.parse_single_example(r, spec)
        )
        columns = {name: [] for name in FEATURE_NAMES}
        for example in records.batch(4096):
            for name in FEATURE_NAMES:
                columns[name].append(example[name].numpy().astype(np.int32))
        for name in FEATURE_NAMES:
            arrays[f"{split}_{name}"] = np.concatenate(columns[name])
    np.savez(path, **arrays)
    return arrays


def bigram_ceiling(
    arrays: dict[str, np.ndarray],
    vocab_size: int,
    specials: list[int],
    replace_rate: float,
    smoothing: float = 0.1,
) -> float:
    """AUC of a bigram-PMI score at spotting unigram-sampled replacements in eval."""
    ids, mask = arrays["train_input_ids"], arrays["train_input_mask"]
    content = (mask == 1) & ~np.isin(ids, specials)
    unigram = np.bincount(ids[content], minlength=vocab_size) + 0.5
    unigram = unigram / unigram.sum()
    pairs = (mask[:, :-1] == 1) & (mask[:, 1:] == 1)
    counts = np.zeros((vocab_size, vocab_size), np.float32)
    np.add.at(counts, (ids[:, :-1][pairs], ids[:, 1:][pairs]), 1.0)
    left_totals = counts.sum(1, keepdims=True)  # per previous token
    right_totals = counts.sum(0, keepdims=True)  # per next token
    next_prior = (right_totals + 0.5) / right_totals.sum()
    prev_prior = (left_totals + 0.5) / left_totals.sum()
    p_next = (counts + smoothing * vocab_size * next_prior) / (
        left_totals + smoothing * vocab_size
    )
    p_prev = (counts + smoothing * vocab_size * prev_prior) / (
        right_totals + smoothing * vocab_size
    )
    rng = np.random.default_rng(0)
    tokens = arrays["eval_input_ids"].copy()
    eval_mask = arrays["eval_input_mask"]
    candidates = (eval_mask == 1) & ~np.isin(tokens, specials)
    chosen = candidates & (rng.random(tokens.shape) < replace_rate)
    samples = rng.choice(vocab_size, size=int(chosen.sum()), p=unigram)
    labels = np.zeros(tokens.shape, bool)
    labels[chosen] = samples != tokens[chosen]
    tokens[chosen] = samples
    score = np.zeros(tokens.shape)
    prev, nxt = tokens[:, :-1], tokens[:, 1:]
    score[:, 1:] += np.log(p_next[prev, nxt]) - np.log(unigram[nxt])
    score[:, :-1] += np.log(p_prev[prev, nxt]) - np.log(unigram[prev])
    return roc_auc(labels[candidates], -score[candidates])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--train-steps", type=int, default=None)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--output-dir", default="runs/learning-curve-parity")
    parser.add_argument("--hf-python", default="/tmp/perf-hf/bin/python")
    parser.add_argument(
        "--reuse", action="store_true", help="Keep an existing run of ours."
    )
    parser.add_argument("pretrain_args", nargs="*", help="After --: for pretrain.")
    args = parser.parse_args()
    if not os.path.exists(args.hf_python):
        raise SystemExit(
            f"{args.hf_python} not found: build it with ../shared/perf/setup_venvs.sh "
            "or pass --hf-python (a Python with torch and transformers)."
        )
    run_dir = os.path.join(os.path.abspath(args.output_dir), "ours")
    if not (args.reuse and os.path.exists(os.path.join(run_dir, "metrics.json"))):
        command = [sys.executable, "-m", "electra_keras", "pretrain"]
        command += ["--output-dir", run_dir, "--overwrite"]
        command += ["--steps-per-epoch", str(args.eval_every)]
        if args.train_steps:
            command += ["--train-steps", str(args.train_steps)]
        command += args.pretrain_args
        print("ours:", " ".join(command), flush=True)
        subprocess.run(command, check=True)
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    with open(os.path.join(run_dir, "metrics.json")) as f:
        ours = json.load(f)
    if not config["adam_bias_correction"]:
        print(
            "note: this config has no Adam bias correction; torch's AdamW always "
            "corrects, so the first few hundred steps are not like for like."
        )
    from electra_keras.data.vocab import load_vocabulary, special_token_ids

    vocab = load_vocabulary(os.path.join(run_dir, "vocab.txt"))
    special = special_token_ids(vocab)
    examples = os.path.join(os.path.abspath(args.output_dir), "examples.npz")
    arrays = _export_examples(run_dir, examples)
    hf_command = [
        args.hf_python,
        os.path.join(HERE, "peers", "hf_learning_curve.py"),
        "--examples",
        examples,
        "--config",
        os.path.join(run_dir, "config.json"),
        "--special-ids",
        json.dumps({k: int(v) for k, v in special.items()}),
        "--vocab-size",
        str(len(vocab)),
        "--eval-every",
        str(args.eval_every),
        "--eval-batches",
        str(config["eval_steps"]),
    ]
    print("transformers:", " ".join(hf_command[:2]), "...", flush=True)
    result = subprocess.run(hf_command, check=True, capture_output=True, text=True)
    theirs = [
        json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")
    ]
    ceiling = bigram_ceiling(
        arrays, len(vocab), sorted(special.values()), config["mask_prob"]
    )
    history = ours["history"]
    print()
    print(f"eval unigram entropy {ours['unigram_entropy']:.3f} nats")
    print(f"bigram-PMI ceiling vs unigram replacements: AUC {ceiling:.3f}")
    print(
        f"{'step':>6} | {'ours MLM':>9} {'HF MLM':>8} | {'ours AUC':>9} {'HF AUC':>8}"
    )
    for i, row in enumerate(theirs):
        mlm = (
            history["val_mlm_loss"][i]
            if i < len(history["val_mlm_loss"])
            else float("nan")
        )
        auc = (
            history["val_disc_auc"][i]
            if i < len(history["val_disc_auc"])
            else float("nan")
        )
        print(
            f"{row['step']:>6} | {mlm:>9.3f} {row['mlm_loss']:>8.3f} | "
            f"{auc:>9.3f} {row['disc_auc']:>8.3f}"
        )
    with open(os.path.join(os.path.abspath(args.output_dir), "parity.json"), "w") as f:
        json.dump(
            {"ours": history, "transformers": theirs, "bigram_ceiling_auc": ceiling},
            f,
            indent=2,
        )


if __name__ == "__main__":
    main()
