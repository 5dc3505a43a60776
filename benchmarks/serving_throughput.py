"""Serving throughput of an exported ELECTRA classifier: in-process, REST and gRPC.

    python benchmarks/serving_throughput.py                      # small preset, BERT vocab
    python benchmarks/serving_throughput.py --preset tiny --seconds 5
    python benchmarks/serving_throughput.py --saved-model saved_models/sentiment/1
    python benchmarks/serving_throughput.py --intra-op-threads 1 --batch-sizes 1

Prints sentences/second and p50/p99 latency per request for batch 1 and 32,
(a) calling the SavedModel's `serving_default` signature in-process, (b) through
`electra-keras serve`'s REST API and (c) its gRPC API, both on loopback with one
client thread (servers run in this process, on their own threads), and the share
of in-process time spent in in-graph tokenization: 1 - t(serving_token_ids on
pre-tokenized ids) / t(serving_default on text). Without --saved-model, a
classifier with random weights is built from the preset and exported with
`electra_keras.export.export_classifier` (weights do not change the speed),
once as the library exports by default (`ClassifierGraph`, each batch padded
to the smallest length bucket that holds it), once with `bucket_lengths=False`
(padded to `seq_len`, the export before buckets) and once with
`graph="keras"` (the Keras model's own call); the last lines give the
in-process speed of the default over each of the others per batch size, from
alternating rounds.
With `--bf16 on` (default `auto`: on where the CPU has AMX or AVX512-BF16) it
also exports the classifier with `compute_dtype="bfloat16"` and prints its
in-process speed over the float32 export's, the same way.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


SENTENCES = [
    "A fine film.",
    "The plot was predictable, but the acting carried it through to the end.",
    "I have rarely been so bored in a cinema; two hours I will never get back.",
    "Warm, funny and sharply written, with a lead performance that deserves awards.",
    "Not good.",
    "The director's earlier work was better, though this one has its moments of "
    "real tension and a score that lingers long after the credits roll.",
    "An uneven, overlong drama that nonetheless rewards patient viewers.",
    "Great visuals, weak story.",
]


def _texts(batch: int, offset: int) -> list[str]:
    return [SENTENCES[(offset + i) % len(SENTENCES)] for i in range(batch)]


def _measure(call, batch: int, seconds: float, max_requests: int) -> dict:
    call(_texts(batch, 0))  # warm-up (tracing, connections)
    latencies = []
    start = time.perf_counter()
    while len(latencies) < max_requests and time.perf_counter() - start < seconds:
        texts = _texts(batch, len(latencies))
        t0 = time.perf_counter()
        call(texts)
        latencies.append(time.perf_counter() - t0)
    total = sum(latencies)
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "sentences_per_s": batch * len(latencies) / total,
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
    }


def _tokenization_share(text_call, ids_call, texts, seconds: float) -> float:
    """1 - median(ids-only time) / median(text time), calls interleaved."""
    text_call(texts), ids_call(texts)
    text_times, ids_times = [], []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(text_times) < 5:
        for call, times in ((text_call, text_times), (ids_call, ids_times)):
            t0 = time.perf_counter()
            call(texts)
            times.append(time.perf_counter() - t0)
    return 1 - statistics.median(ids_times) / statistics.median(text_times)


def _speed_ratio(first, second, batch: int, seconds: float, rounds: int = 7):
    """Median over alternating rounds of sentences/s(first) / sentences/s(second)."""
    ratios = []
    for _ in range(rounds):
        fast = _measure(first, batch, seconds / rounds, 10**9)["sentences_per_s"]
        slow = _measure(second, batch, seconds / rounds, 10**9)["sentences_per_s"]
        ratios.append(fast / slow)
    return statistics.median(ratios)


def _loaded_call(path: str):
    """A call of the `serving_default` signature of the export at `path`."""
    import tensorflow as tf

    signature = tf.saved_model.load(path).signatures["serving_default"]
    return lambda texts: signature(text=tf.constant(texts))


def _print_speed_ratios(label, first, second, batch_sizes, seconds) -> None:
    """One `<label>, in-process, batch N: R.RRx` line per batch size."""
    for batch in batch_sizes:
        ratio = _speed_ratio(first, second, batch, seconds)
        print(f"{label}, in-process, batch {batch}: {ratio:.2f}x")


def _export(
    preset: str, seq_len: int, base_dir: str, bf16: bool = False
) -> tuple[str, str, str, str | None]:
    from electra_keras.config import get_preset
    from electra_keras.data.vocab import download_bert_vocabulary
    from electra_keras.export.saved_model import export_classifier
    from electra_keras.models.backbone import ElectraBackbone
    from electra_keras.models.classifier import ElectraClassifier
    from electra_keras.models.classifier_preprocessor import (
        ElectraClassifierPreprocessor,
    )

    model_config = get_preset(preset).model
    backbone = ElectraBackbone(
        vocab_size=model_config.vocab_size,
        num_layers=model_config.num_layers,
        num_heads=model_config.num_heads,
        hidden_dim=model_config.hidden_dim,
        intermediate_dim=model_config.intermediate_dim,
        embedding_dim=model_config.embedding_dim,
        max_sequence_length=model_config.max_sequence_length,
    )
    preprocessor = ElectraClassifierPreprocessor(
        download_bert_vocabulary(), seq_len=seq_len
    )
    model = ElectraClassifier(
        backbone, 2, label_names=["negative", "positive"], preprocessor=preprocessor
    )
    # The same weights: version 1 as the library exports by default, version
    # 2 padded to seq_len (the export before length buckets), version 3 the
    # Keras model's own graph, version 4 in bf16.
    exports = [(1, True, "float32", "fused"), (2, False, "float32", "fused")]
    exports.append((3, True, "float32", "keras"))
    if bf16:
        exports.append((4, True, "bfloat16", "fused"))
    paths = [
        export_classifier(
            model,
            "bench",
            base_dir=base_dir,
            version=version,
            bucket_lengths=buckets,
            compute_dtype=dtype,
            graph=graph,
        )
        for version, buckets, dtype, graph in exports
    ]
    return paths[0], paths[1], paths[2], paths[3] if bf16 else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--saved-model", help="An exported version directory.")
    parser.add_argument("--preset", default="small", help="Model size to export.")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-sizes", default="1,32")
    parser.add_argument("--seconds", type=float, default=8.0, help="Per measurement.")
    parser.add_argument("--max-requests", type=int, default=2000)
    parser.add_argument(
        "--bf16",
        choices=("auto", "on", "off"),
        default="auto",
        help="Also measure a bfloat16 export (auto: where the CPU has native bf16).",
    )
    parser.add_argument(
        "--intra-op-threads",
        type=int,
        default=0,
        help="TensorFlow's intra-op pool, as `electra-keras serve "
        "--tensorflow_intra_op_parallelism` sets it (0: TensorFlow's choice; 1 "
        "cuts batch-1 latency on a small CPU).",
    )
    args = parser.parse_args(argv)
    if args.intra_op_threads < 0:
        parser.error("--intra-op-threads must be 0 (TensorFlow's choice) or more.")

    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    if args.intra_op_threads:
        # Before the first op: TensorFlow fixes its pools at first use.
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)

    from electra_keras.export.saved_model import length_buckets, resolve_compute_dtype
    from electra_keras.models.classifier_preprocessor import (
        ElectraClassifierPreprocessor,
    )
    from electra_keras.serving import GrpcClient, RestClient
    from electra_keras.serving.grpc_server import GrpcServer
    from electra_keras.serving.model_config import ServedModelConfig
    from electra_keras.serving.model_registry import ModelRegistry
    from electra_keras.serving.rest_server import RestServer

    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    tmp = tempfile.TemporaryDirectory()
    fixed_path = keras_path = bf16_path = None
    bf16 = args.bf16 == "on" or (
        args.bf16 == "auto" and resolve_compute_dtype("auto")[0] == "bfloat16"
    )
    if args.saved_model:
        path = args.saved_model
    else:
        path, fixed_path, keras_path, bf16_path = _export(
            args.preset, args.seq_len, tmp.name, bf16=bf16
        )
    path = os.path.abspath(path)
    base_path, version = os.path.dirname(path), int(os.path.basename(path))
    registry = ModelRegistry(
        [ServedModelConfig("bench", base_path, policy="specific", versions=(version,))]
    )
    loaded = registry.get("bench").loaded
    default = loaded.signatures["serving_default"]
    token_ids = loaded.signatures["serving_token_ids"]
    preprocessor = ElectraClassifierPreprocessor(
        os.path.join(path, "assets", "vocab.txt"), seq_len=args.seq_len
    )
    rest_server = RestServer(registry, "127.0.0.1", 0).start()
    grpc_server = GrpcServer(registry, "127.0.0.1", 0).start()
    rest = RestClient("127.0.0.1", rest_server.port)
    grpc_client = GrpcClient("127.0.0.1", grpc_server.port)

    def in_process(texts):
        return default(text=tf.constant(texts))

    ids_cache: dict[int, dict] = {}

    def ids_only(texts):
        key = len(texts)
        if key not in ids_cache:
            packed = preprocessor(tf.constant(texts))
            # Cut to the length bucket the text signature pads this batch to.
            longest = int(tf.reduce_max(tf.reduce_sum(packed["padding_mask"], 1)))
            width = next(b for b in length_buckets(args.seq_len) if b >= longest)
            ids_cache[key] = {
                k: tf.cast(v[:, :width], tf.int32) for k, v in packed.items()
            }
        return token_ids(**ids_cache[key])

    paths = {
        "in-process": in_process,
        "REST": lambda texts: rest.predict("bench", texts),
        "gRPC": lambda texts: grpc_client.predict("bench", texts),
    }
    intra = tf.config.threading.get_intra_op_parallelism_threads() or "default"
    print(
        f"model: {path}  (seq_len {args.seq_len}, {os.cpu_count()} CPUs, "
        f"intra-op threads {intra})"
    )
    print("| path | batch | sentences/s | p50 ms | p99 ms | requests |")
    print("|---|---|---|---|---|---|")
    shares = {}
    try:
        for batch in batch_sizes:
            for name, call in paths.items():
                r = _measure(call, batch, args.seconds, args.max_requests)
                print(
                    f"| {name} | {batch} | {r['sentences_per_s']:.1f} | {r['p50_ms']:.1f}"
                    f" | {r['p99_ms']:.1f} | {r['requests']} |",
                    flush=True,
                )
                if name == "in-process":
                    shares[batch] = _tokenization_share(
                        in_process, ids_only, _texts(batch, 0), args.seconds
                    )
        for batch, share in shares.items():
            print(
                f"in-graph tokenization share of in-process time, batch {batch}: {share:.1%}"
            )
        if fixed_path:
            _print_speed_ratios(
                "bucketed / fixed-length padding",
                in_process,
                _loaded_call(fixed_path),
                batch_sizes,
                args.seconds,
            )
        if keras_path:
            _print_speed_ratios(
                "fused / Keras graph",
                in_process,
                _loaded_call(keras_path),
                batch_sizes,
                args.seconds,
            )
        if bf16_path:
            _print_speed_ratios(
                "bfloat16 / float32 compute",
                _loaded_call(bf16_path),
                in_process,
                batch_sizes,
                args.seconds,
            )
        elif not args.saved_model:
            why = (
                "--bf16 off"
                if args.bf16 == "off"
                else "this CPU has no native bf16; --bf16 on measures it anyway"
            )
            print(f"bfloat16 export not measured ({why})")
    finally:
        rest.close()
        grpc_client.close()
        rest_server.stop()
        grpc_server.stop()
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
