"""How fast a discriminator learns context, with the generator taken out.

    python benchmarks/context_learning.py --run-dir runs/pretrain
    python benchmarks/context_learning.py --run-dir runs/pretrain --train-steps 4000 \
        --batch-size 16 --set model.dropout=0 --set model.num_heads=8

A pretraining run's eval AUC mixes two things: how hard its generator's samples
are and how much context its discriminator has learned. This benchmark measures
the second alone. It trains the run's discriminator (`config.json` of an
`electra-keras pretrain` run: backbone shape, optimizer recipe, steps) on
replaced-token detection against replacements drawn from the unigram
distribution of the run's training examples, at the run's `mask_prob`: the
easiest generator a joint run meets once its generator has learned the token
frequencies (after its first ~200 steps). Token identity then carries no
signal, so the eval AUC above 0.5 (over non-special tokens) is context the
discriminator has learned.

Printed per `--eval-every` steps: the eval AUC (fixed replacements, eval mode)
and, over the discriminator's heads, the largest attention on the two
neighbouring tokens as a multiple of what uniform attention gives. The last
lines give the count-based ceiling of `learning_curve_parity.py` (a bigram PMI
score on the same examples and replacements' distribution) and one line
`context_auc=<float> ceiling_auc=<float>`. A joint ELECTRA run with the same
shape and steps cannot end above `context_auc` once its generator has left
the token-identity phase: a generator at least as good as unigram sampling
only makes detection harder.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "peers"))

from learning_curve_parity import _export_examples, bigram_ceiling  # noqa: E402
from roc import roc_auc  # noqa: E402


def _load_config(run_dir: str, overrides: list[str], args: argparse.Namespace):
    from electra_keras.cli import apply_changes
    from electra_keras.config import PretrainingConfig

    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        raise SystemExit(
            f"{path} not found: pass the directory of an `electra-keras pretrain` "
            "run (it holds config.json, vocab.txt and data/)."
        )
    with open(path) as f:
        config = PretrainingConfig.from_dict(json.load(f))
    flags = {
        "train_steps": args.train_steps,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
    }
    changes = {key: value for key, value in flags.items() if value is not None}
    return apply_changes(config, changes, overrides)


def _replace(tokens, candidates, rate, unigram, rng):
    """Unigram-sampled replacements at `rate` of `candidates`; labels 1 where changed."""
    tokens = tokens.copy()
    chosen = candidates & (rng.random(tokens.shape) < rate)
    samples = rng.choice(len(unigram), size=int(chosen.sum()), p=unigram)
    labels = np.zeros(tokens.shape, np.float32)
    labels[chosen] = samples != tokens[chosen]
    tokens[chosen] = samples
    return tokens, labels


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--run-dir", default="runs/pretrain")
    parser.add_argument("--train-steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--eval-examples", type=int, default=1024)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Config override, as `electra-keras pretrain --set` (model.dropout=0).",
    )
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    from electra_keras.data.vocab import load_vocabulary, special_token_ids
    from electra_keras.models.backbone import ElectraBackbone
    from electra_keras.models.discriminator import ElectraDiscriminator
    from electra_keras.training.attention_probe import attention_summary
    from electra_keras.training.optimizer import create_optimizer

    run_dir = os.path.abspath(args.run_dir)
    config = _load_config(run_dir, args.set, args)
    if not glob.glob(os.path.join(run_dir, "data", "eval", "pretrain_data.tfrecord-*")):
        raise SystemExit(
            f"{run_dir}/data has no eval TFRecords (run with an eval set)."
        )
    vocab = load_vocabulary(os.path.join(run_dir, "vocab.txt"))
    specials = sorted(special_token_ids(vocab).values())
    arrays = _export_examples(run_dir, os.path.join(run_dir, "context_examples.npz"))
    train_ids, train_mask = arrays["train_input_ids"], arrays["train_input_mask"]
    train_segments = arrays["train_segment_ids"]
    content = (train_mask == 1) & ~np.isin(train_ids, specials)
    unigram = np.bincount(train_ids[content], minlength=len(vocab)).astype(np.float64)
    unigram /= unigram.sum()

    rng = np.random.default_rng(config.seed)
    n_eval = min(args.eval_examples, len(arrays["eval_input_ids"]))
    eval_ids = arrays["eval_input_ids"][:n_eval]
    eval_mask = arrays["eval_input_mask"][:n_eval]
    # Scored where replacements may go: real tokens other than [CLS]/[SEP]...
    eval_weights = (eval_mask == 1) & ~np.isin(eval_ids, specials)
    eval_tokens, eval_labels = _replace(
        eval_ids, eval_weights, config.mask_prob, unigram, rng
    )
    eval_inputs = {
        "token_ids": eval_tokens,
        "segment_ids": arrays["eval_segment_ids"][:n_eval],
        "padding_mask": eval_mask,
    }

    keras.utils.set_random_seed(config.seed)
    backbone = ElectraBackbone(**config.model.backbone_kwargs(), name="discriminator")
    discriminator = ElectraDiscriminator(backbone)
    optimizer = create_optimizer(config)
    variables = discriminator.trainable_variables
    clipnorm = config.clipnorm

    @tf.function(jit_compile=False)
    def train_step(inputs, labels, weights):
        with tf.GradientTape() as tape:
            logits = tf.cast(discriminator(inputs, training=True), tf.float32)
            losses = tf.nn.sigmoid_cross_entropy_with_logits(labels, logits)
            loss = tf.reduce_sum(losses * weights) / tf.reduce_sum(weights)
        grads = tape.gradient(loss, variables)
        if clipnorm:
            grads, _ = tf.clip_by_global_norm(grads, clipnorm)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss

    def evaluate() -> tuple[float, float]:
        scores = np.concatenate(
            [
                np.asarray(
                    discriminator.predict_on_batch(
                        {k: v[i : i + 256] for k, v in eval_inputs.items()}
                    )
                )
                for i in range(0, n_eval, 256)
            ]
        )
        auc = roc_auc(eval_labels[eval_weights], scores[eval_weights])
        summary = attention_summary(
            backbone, {k: v[:8] for k, v in eval_inputs.items()}, specials
        )
        neighbour = max(h["neighbour_vs_uniform"] for layer in summary for h in layer)
        return auc, neighbour

    print(
        f"{run_dir}: discriminator {config.model.num_layers} layers x "
        f"{config.model.hidden_dim}, {config.model.num_heads} heads; "
        f"{config.train_steps} steps, batch {config.batch_size}, seq_len "
        f"{config.seq_len}, lr {config.learning_rate:g}; unigram replacements at "
        f"{config.mask_prob:g}",
        flush=True,
    )
    print(f"{'step':>6} {'eval AUC':>9} {'neighbours':>11} {'time':>7}")
    auc = float("nan")
    started = time.perf_counter()
    order = rng.permutation(len(train_ids))
    cursor = 0
    for step in range(1, config.train_steps + 1):
        if cursor + config.batch_size > len(order):
            order, cursor = rng.permutation(len(train_ids)), 0
        rows = order[cursor : cursor + config.batch_size]
        cursor += config.batch_size
        tokens, labels = _replace(
            train_ids[rows], content[rows], config.mask_prob, unigram, rng
        )
        inputs = {
            "token_ids": tf.constant(tokens),
            "segment_ids": tf.constant(train_segments[rows]),
            "padding_mask": tf.constant(train_mask[rows]),
        }
        train_step(
            inputs, tf.constant(labels), tf.constant(train_mask[rows], tf.float32)
        )
        if step % args.eval_every == 0 or step == config.train_steps:
            auc, neighbour = evaluate()
            elapsed = time.perf_counter() - started
            print(
                f"{step:>6} {auc:>9.3f} {neighbour:>10.2f}x {elapsed:>6.0f}s",
                flush=True,
            )
    ceiling = bigram_ceiling(arrays, len(vocab), specials, config.mask_prob)
    print(f"bigram-PMI ceiling on the same data: AUC {ceiling:.3f}")
    print(f"context_auc={auc:.4f} ceiling_auc={ceiling:.4f}")


if __name__ == "__main__":
    main()
