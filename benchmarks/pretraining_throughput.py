"""Pretraining throughput and peak memory, XLA on and off side by side.

    python benchmarks/pretraining_throughput.py                  # small, batch 32
    python benchmarks/pretraining_throughput.py --preset tiny --batch-size 32
    python benchmarks/pretraining_throughput.py --xla on --repeats 3
    python benchmarks/pretraining_throughput.py --precision mixed_bfloat16 --xla off
    # GPUs: ELECTRA-Base, bf16, XLA on and off, one GPU and all of them
    python benchmarks/pretraining_throughput.py --preset base --batch-size 128 \
        --precision auto --gpus 1,all

Each configuration runs in a fresh process (so peak RSS is its own): it
builds the preset's `ElectraPretrainer` (BERT-sized vocabulary, 30,522), runs
`fit()` on random token batches, discards the first `--warmup` steps
(tracing, XLA compilation) and times `--steps` more in the same `fit()`. Printed: tokens/s
(batch x seq_len x steps / seconds), ms/step, the model's TFLOP/s (FLOPs
counted from its shapes, `pretraining.flops`), MFU where the peak is known (the
GPUs in `training.accelerator_peaks`, or `--peak-tflops`), the process's peak
RSS and, on GPUs, the peak GPU memory. `--batch-size` is per replica: with
`--gpus N` (N > 1) the step runs under `MirroredStrategy` on the first N GPUs
with a global batch N times larger. The
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
    import tensorflow as tf

    from electra_keras.config import get_preset
    from electra_keras.models.pretrainer import ElectraPretrainer
    from electra_keras.pretraining.flops import pretraining_flops
    from electra_keras.training import accelerator_peaks
    from electra_keras.training.optimizer import create_optimizer
    from electra_keras.training.strategy import (
        create_strategy,
        resolve_precision,
        set_mixed_precision,
    )

    gpus = tf.config.list_physical_devices("GPU")
    if args.gpus and not gpus:
        raise SystemExit("--gpus given, but TensorFlow sees no GPU.")
    strategy = create_strategy("mirrored" if len(gpus) > 1 else "default")
    replicas = strategy.num_replicas_in_sync
    batch_size = args.batch_size * replicas
    config = get_preset(args.preset).replace(
        batch_size=batch_size, seq_len=args.seq_len, xla=args.xla
    )
    policy, _ = resolve_precision(args.precision)
    set_mixed_precision(policy)
    config = config.replace(mixed_precision=policy)
    with strategy.scope():
        model = ElectraPretrainer.from_config_object(config, SPECIAL_IDS)
        model.compile(optimizer=create_optimizer(config), xla=args.xla == "on")
    data = synthetic_data(batch_size, args.seq_len, config.model.vocab_size)
    if args.peak_tflops:
        peak, device = (
            args.peak_tflops * replicas,
            f"{args.peak_tflops:g} TFLOP/s given",
        )
    else:
        peak, device = accelerator_peaks.run_peak_tflops(policy, replicas)

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
    tflops = pretraining_flops(config)["train_per_step"] * args.steps / seconds / 1e12
    result = {
        "tokens_per_s": batch_size * args.seq_len * args.steps / seconds,
        "ms_per_step": 1000 * seconds / args.steps,
        "peak_rss_gb": peak_kb / 1024**2,
        "model_tflops": tflops,
        "mfu": tflops / peak if peak else None,
        "replicas": replicas,
        "device": device,
    }
    if gpus:
        result["peak_gpu_gb"] = max(
            tf.config.experimental.get_memory_info(f"GPU:{i}")["peak"] / 1024**3
            for i in range(replicas)
        )
    print("RESULT " + json.dumps(result), flush=True)


def _run(args: argparse.Namespace, xla: str, gpus: str = "") -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), _CHILD_FLAG, "--xla", xla]
    for name in ("preset", "batch_size", "seq_len", "steps", "warmup", "precision"):
        cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    if args.peak_tflops:
        cmd += ["--peak-tflops", str(args.peak_tflops)]
    env = dict(os.environ)
    if gpus:
        cmd += ["--gpus", gpus]
        if gpus != "all":  # the first N of the GPUs this process may use
            visible = env.get("CUDA_VISIBLE_DEVICES")
            ids = visible.split(",") if visible else [str(i) for i in range(64)]
            env["CUDA_VISIBLE_DEVICES"] = ",".join(ids[: int(gpus)])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark child failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def _row(r: dict, xla: str, repeat: int, gpus: str) -> str:
    where = f"{r['replicas']} GPU(s) " if gpus else ""
    line = (
        f"  {where}XLA {xla:3s} run {repeat + 1}: {r['tokens_per_s']:8.0f} tokens/s  "
        f"{r['ms_per_step']:7.1f} ms/step  {r['model_tflops']:7.2f} model TFLOP/s"
    )
    if r.get("mfu") is not None:
        line += f"  MFU {100 * r['mfu']:4.1f}%"
    line += f"  peak RSS {r['peak_rss_gb']:.2f} GB"
    if "peak_gpu_gb" in r:
        line += f"  peak GPU memory {r['peak_gpu_gb']:.2f} GB"
    return line


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
    parser.add_argument(
        "--gpus",
        default="",
        help="GPU counts to run, comma-separated, e.g. 1,all (N > 1: "
        "MirroredStrategy over the first N GPUs). Default: what TensorFlow sees.",
    )
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=0.0,
        help="Peak TFLOP/s of one device, for MFU where the library does not "
        "know it (CPUs, GPUs not in training/accelerator_peaks.py).",
    )
    parser.add_argument(_CHILD_FLAG, action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    gpu_counts = [g.strip() for g in args.gpus.split(",")] if args.gpus else [""]
    for count in gpu_counts:
        if count != "all" and count != "" and not (count.isdigit() and int(count) > 0):
            parser.error(f"--gpus takes positive counts or 'all', got {count!r}.")
    settings = ("off", "on") if args.xla == "both" else (args.xla,)
    print(
        f"preset={args.preset} batch={args.batch_size} seq_len={args.seq_len} "
        f"steps={args.steps} (after {args.warmup} warm-up) cpus={os.cpu_count()} "
        f"precision={args.precision}"
    )
    results, devices = {}, set()
    for gpus in gpu_counts:
        for xla in settings:
            for repeat in range(args.repeats):
                r = _run(args, xla, gpus)
                results.setdefault((gpus, xla), []).append(r)
                if r["device"] not in devices:
                    devices.add(r["device"])
                    print(f"  device: {r['device']}")
                print(_row(r, xla, repeat, gpus), flush=True)
        runs = {xla: results[(gpus, xla)] for xla in settings}
        if len(runs) == 2:
            best = {k: max(r["tokens_per_s"] for r in v) for k, v in runs.items()}
            print(f"  XLA on / off throughput ratio: {best['on'] / best['off']:.2f}")
    # Last line: the library's default on this machine (`--xla auto`).
    from electra_keras.training.strategy import resolve_precision, resolve_xla

    policy, _ = resolve_precision(args.precision)
    default = "on" if resolve_xla("auto", precision=policy) else "off"
    key = (gpu_counts[0], default)
    if key not in results:
        results[key] = [_run(args, default, gpu_counts[0])]
    runs = results[key]
    tokens = sorted(r["tokens_per_s"] for r in runs)[len(runs) // 2]
    peak = max(r["peak_rss_gb"] for r in runs)
    print(f"tokens_per_s={tokens:.1f} peak_rss_gb={peak:.3f}")


if __name__ == "__main__":
    main()
