"""Pretraining throughput and peak memory, XLA on and off side by side.

    python benchmarks/pretraining_throughput.py                  # small, batch 32
    python benchmarks/pretraining_throughput.py --preset tiny --batch-size 32
    python benchmarks/pretraining_throughput.py --xla on --repeats 3
    python benchmarks/pretraining_throughput.py --precision mixed_bfloat16 --xla off

Each configuration runs in a fresh process (so peak RSS is its own): it
builds the preset's `ElectraPretrainer` (BERT-sized vocabulary, 30,522), runs
`fit()` on random token batches, discards the first `--warmup` steps
(tracing, XLA compilation) and times `--steps` more in the same `fit()`. Printed: tokens/s
(batch x seq_len x steps / seconds), ms/step and the process's peak RSS. The
last line, `tokens_per_s=<float> peak_rss_gb=<float>`, is the library's default
XLA setting on this machine for `--precision` (`--xla auto`: on for float32 on
CPU, off for mixed policies there), the median over `--repeats`. `--precision`
is float32 unless given (the library's default; `auto` picks mixed_bfloat16 on
CPUs with AMX or AVX512-BF16).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

_CHILD_FLAG = "--child"
# BERT's ids, and the smallest id of the random tokens.
SPECIAL_IDS = {"pad_id": 0, "cls_id": 101, "sep_id": 102, "mask_id": 103}
FIRST_TOKEN_ID = 1000


def synthetic_data(batch_size: int, seq_len: int, vocab_size: int):
    """One batch of random tokens between [CLS] and [SEP], repeated forever."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    shape = (batch_size, seq_len)
    ids = rng.integers(FIRST_TOKEN_ID, vocab_size, size=shape).astype("int32")
    ids[:, 0], ids[:, -1] = SPECIAL_IDS["cls_id"], SPECIAL_IDS["sep_id"]
    batch = {
        "token_ids": ids,
        "segment_ids": np.zeros_like(ids),
        "padding_mask": np.ones_like(ids),
    }
    return tf.data.Dataset.from_tensors(batch).repeat()


def _child(args: argparse.Namespace) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from electra_keras.config import get_preset
    from electra_keras.models.pretrainer import ElectraPretrainer
    from electra_keras.training.optimizer import create_optimizer
    from electra_keras.training.strategy import resolve_precision, set_mixed_precision

    config = get_preset(args.preset).replace(
        batch_size=args.batch_size, seq_len=args.seq_len, xla=args.xla
    )
    policy, _ = resolve_precision(args.precision)
    set_mixed_precision(policy)
    config = config.replace(mixed_precision=policy)
    model = ElectraPretrainer.from_config_object(config, SPECIAL_IDS)
    model.compile(optimizer=create_optimizer(config), xla=args.xla == "on")
    data = synthetic_data(args.batch_size, args.seq_len, config.model.vocab_size)

    marks = {}

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch + 1 == args.warmup:
                marks["start"] = time.perf_counter()
            if batch + 1 == args.warmup + args.steps:
                marks["end"] = time.perf_counter()

    model.fit(
        data,
        steps_per_epoch=args.warmup + args.steps,
        epochs=1,
        verbose=0,
        shuffle=False,
        callbacks=[Clock()],
    )
    seconds = marks["end"] - marks["start"]
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        "RESULT "
        + json.dumps(
            {
                "tokens_per_s": args.batch_size * args.seq_len * args.steps / seconds,
                "ms_per_step": 1000 * seconds / args.steps,
                "peak_rss_gb": peak_kb / 1024**2,
            }
        ),
        flush=True,
    )


def _run(args: argparse.Namespace, xla: str) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), _CHILD_FLAG, "--xla", xla]
    for name in ("preset", "batch_size", "seq_len", "steps", "warmup", "precision"):
        cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark child failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow loads
    from electra_keras.config import PRECISION_CHOICES

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--xla", choices=("on", "off", "both"), default="both")
    parser.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        default="float32",
        help="Keras dtype policy (the library's default is float32).",
    )
    parser.add_argument(_CHILD_FLAG, action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    settings = ("off", "on") if args.xla == "both" else (args.xla,)
    print(
        f"preset={args.preset} batch={args.batch_size} seq_len={args.seq_len} "
        f"steps={args.steps} (after {args.warmup} warm-up) cpus={os.cpu_count()} "
        f"precision={args.precision}"
    )
    results = {}
    for xla in settings:
        for repeat in range(args.repeats):
            r = _run(args, xla)
            results.setdefault(xla, []).append(r)
            print(
                f"  XLA {xla:3s} run {repeat + 1}: {r['tokens_per_s']:8.0f} tokens/s  "
                f"{r['ms_per_step']:7.1f} ms/step  peak RSS {r['peak_rss_gb']:.2f} GB",
                flush=True,
            )
    if len(results) == 2:
        best = {k: max(r["tokens_per_s"] for r in v) for k, v in results.items()}
        print(f"  XLA on / off throughput ratio: {best['on'] / best['off']:.2f}")
    # Last line: the library's default on this machine (`--xla auto`).
    from electra_keras.training.strategy import resolve_precision, resolve_xla

    policy, _ = resolve_precision(args.precision)
    default = "on" if resolve_xla("auto", precision=policy) else "off"
    if default not in results:
        results[default] = [_run(args, default)]
    runs = results[default]
    tokens = sorted(r["tokens_per_s"] for r in runs)[len(runs) // 2]
    peak = max(r["peak_rss_gb"] for r in runs)
    print(f"tokens_per_s={tokens:.1f} peak_rss_gb={peak:.3f}")


if __name__ == "__main__":
    main()
