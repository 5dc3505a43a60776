"""Where a pretraining step's time goes, from the TensorFlow profiler.

    python benchmarks/profile_step.py                        # small, batch 32, seq 128
    python benchmarks/profile_step.py --preset tiny --vocab-size 8192 --seq-len 64

Builds the preset's `ElectraPretrainer` as `pretraining_throughput.py` does
(its random token batch, the library's default XLA setting unless `--xla`), runs
`--warmup` steps, then records `--steps` steps with `tf.profiler` and sums the
duration of every op the trace holds into parts of the step, by the op's name
scope: each backbone's attention and feed-forward blocks, its embeddings, the
generator's MLM head (the logits over the vocabulary), the MLM softmax
cross-entropy, the XLA kernels (the sampler of replacements, and the fused
dropout, LayerNorm, GELU and Adam kernels of `layers.fused_ops` and the
optimizer: their fusions carry no scope), the optimizer update, the input
pipeline and the rest (masking, scatter of the samples, losses, metrics). Forward and backward ops count together (the
backward ones carry the forward's scope under `gradient_tape/`).

Printed: one row per part with its share of all op time and ms per step, then
the step's wall time. Op times overlap when ops run on several threads, so
the shares are of summed op time, not of wall time.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import re
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from pretraining_throughput import (  # noqa: E402 (the benchmarks folder is on the path)
    FIRST_TOKEN_ID,
    SPECIAL_IDS,
    synthetic_data,
)

from electra_keras.config import PRECISION_CHOICES  # noqa: E402

# (part, predicate on the lower-cased op name), first match wins.
PARTS = (
    ("input pipeline", lambda n: "iteratorgetnext" in n or n.startswith("iterator")),
    ("optimizer update", lambda n: "adam" in n or "resourceapply" in n),
    (
        "XLA kernels (sampler, fused ops)",
        lambda n: "fusion" in n or n.startswith("xla"),
    ),
    ("MLM softmax cross-entropy", lambda n: "softmaxcrossentropy" in n),
    ("generator MLM head (vocab logits)", lambda n: "generator_head" in n),
    ("generator attention", lambda n: "generator" in n and "attention" in n),
    ("generator feed-forward", lambda n: "generator" in n and "feedforward" in n),
    ("discriminator attention", lambda n: "discriminator" in n and "attention" in n),
    (
        "discriminator feed-forward",
        lambda n: "discriminator" in n and "feedforward" in n,
    ),
    ("embeddings", lambda n: "embedding" in n),
    ("discriminator head", lambda n: "discriminator_head" in n),
    ("other layers (norms, projections)", lambda n: "transformer_layer" in n),
)
# Host events that wrap other events (eager runtime, function calls).
WRAPPERS = ("eager", "tfe_", "multi_step", "one_step", "__inference", "parallelfor")


def part_of(name: str) -> str | None:
    """The part of the step an op event belongs to; None for other events.

    Op events are named `scope/op_name:OpType` (XLA kernels: `..._fusion`);
    runtime events that wrap them (`ExecutorState::Process`, `EagerExecute`)
    would count their ops twice.
    """
    lowered = name.lower()
    if "::" in name or lowered.startswith(WRAPPERS):
        return None
    if ":" not in name and "fusion" not in lowered:
        return None
    for part, matches in PARTS:
        if matches(lowered):
            return part
    return "other (masking, scatter, losses, metrics)"


def op_type(name: str) -> str:
    """The op type of an op event (`scope/name:MatMul` -> `MatMul`); XLA
    kernels (`..._fusion`) count as `XLA fusion`."""
    if ":" in name:
        return name.rsplit(":", 1)[1]
    return "XLA fusion"


def folded_name(name: str) -> str:
    """An op event's name with layer and op numbers folded
    (`transformer_layer_3/add_1:AddV2` -> `transformer_layer_#/add_#:AddV2`,
    call wrappers dropped),
    so the same op of every layer sums into one row."""
    name = re.sub(r"^((Stateful)?PartitionedCall/)+", "", name)
    return re.sub(r"_\d+(?=[/:_]|$)", "_#", name)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--preset", default="small")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--vocab-size", type=int, default=None)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--xla", choices=("auto", "on", "off"), default="auto")
    parser.add_argument(
        "--top-ops",
        type=int,
        default=15,
        help="Also print the op types that took the most time (0: none).",
    )
    parser.add_argument(
        "--top-names",
        type=int,
        default=0,
        help="Also print the op names that took the most time, layer numbers "
        "folded together (0: none).",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        default="float32",
    )
    args = parser.parse_args()

    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    from electra_keras.config import get_preset
    from electra_keras.models.pretrainer import ElectraPretrainer
    from electra_keras.training.optimizer import create_optimizer
    from electra_keras.training.strategy import (
        resolve_precision,
        resolve_xla,
        set_mixed_precision,
    )

    policy, _ = resolve_precision(args.precision)
    set_mixed_precision(policy)
    xla = resolve_xla(args.xla, precision=policy)
    config = get_preset(args.preset).replace(
        batch_size=args.batch_size, seq_len=args.seq_len, mixed_precision=policy
    )
    if args.vocab_size:
        config = config.replace(**{"model.vocab_size": args.vocab_size})
    vocab_size = config.model.vocab_size
    if vocab_size <= FIRST_TOKEN_ID:
        raise SystemExit(f"--vocab-size must be above {FIRST_TOKEN_ID}.")
    model = ElectraPretrainer.from_config_object(config, SPECIAL_IDS)
    model.compile(optimizer=create_optimizer(config), xla=xla)
    data = synthetic_data(args.batch_size, args.seq_len, vocab_size)
    model.fit(data, steps_per_epoch=args.warmup, epochs=1, verbose=0)
    logdir = tempfile.mkdtemp(prefix="profile_step_")
    tf.profiler.experimental.start(logdir)
    started = time.perf_counter()
    model.fit(data, steps_per_epoch=args.steps, epochs=1, verbose=0)
    wall = time.perf_counter() - started
    tf.profiler.experimental.stop()

    space = xplane_pb2.XSpace()
    path = sorted(glob.glob(os.path.join(logdir, "plugins/profile/*/*.xplane.pb")))
    with open(path[-1], "rb") as f:
        space.ParseFromString(f.read())
    totals: collections.Counter = collections.Counter()
    by_type: collections.Counter = collections.Counter()
    by_name: collections.Counter = collections.Counter()
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                part = part_of(name)
                if part is not None:
                    totals[part] += event.duration_ps / 1e9  # ms
                    by_type[op_type(name)] += event.duration_ps / 1e9
                    by_name[folded_name(name)] += event.duration_ps / 1e9
    total = sum(totals.values())
    print(
        f"preset={args.preset} vocab={vocab_size} batch={args.batch_size} "
        f"seq_len={args.seq_len} xla={'on' if xla else 'off'} precision={policy} "
        f"steps={args.steps}"
    )
    print(f"{'part':40s} {'share':>7s} {'ms/step':>9s}")
    for part, ms in totals.most_common():
        print(f"{part:40s} {ms / total:7.1%} {ms / args.steps:9.1f}")
    if args.top_ops:
        print(f"{'op type':40s} {'share':>7s} {'ms/step':>9s}")
        for op, ms in by_type.most_common(args.top_ops):
            print(f"{op:40s} {ms / total:7.1%} {ms / args.steps:9.1f}")
    if args.top_names:
        print(f"{'op name (layers folded)':100s} {'share':>7s} {'ms/step':>9s}")
        for op, ms in by_name.most_common(args.top_names):
            print(f"{op[-100:]:100s} {ms / total:7.1%} {ms / args.steps:9.1f}")
    print(
        f"summed op time {total / args.steps:.1f} ms/step; "
        f"wall {1000 * wall / args.steps:.1f} ms/step"
    )


if __name__ == "__main__":
    main()
