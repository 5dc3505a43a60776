"""SavedModel export: layout, versions, signatures, parity with the Keras model,
edge cases (empty, whitespace, long, invalid UTF-8, zero rows), the vocabulary
asset, the TF1 session loader (as TF Serving and `saved_model_cli run` load), the CLI.
"""

import itertools
import json
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401 (registers the tokenizer ops for loading)

from electra_keras.export import export_classifier, next_version
from electra_keras.export.saved_model import (
    CLASSIFY_METHOD_NAME,
    length_buckets,
    pack_inputs,
    resolve_compute_dtype,
    with_compute_dtype,
)
from electra_keras.models.classifier import ElectraClassifier
from electra_keras.models.classifier_preprocessor import ElectraClassifierPreprocessor

from conftest import run_python, tiny_backbone

VOCAB = (
    "[PAD] [UNK] [CLS] [SEP] [MASK] the a film movie plot was is not good bad "
    "great awful ! , . ##s ##ly act ##ing and but very zebraword cafe"
).split()
SEQ_LEN = 12
TEXTS = [
    "The film was good!",
    "a BAD plot, but great acting.",
    "not very good",
    "Café films",
    "awful awful awful movie",
    "unknownword and the plot",
    "the ﬁlm ™ was good",  # compatibility characters: no NFKC folding
]


def tiny_classifier(
    num_labels=2, label_names=None, lowercase=True, seed=0, seq_len=SEQ_LEN
):
    """A 1-layer classifier with large random weights (distinct outputs)."""
    preprocessor = ElectraClassifierPreprocessor(
        VOCAB, lowercase=lowercase, seq_len=seq_len
    )
    backbone = tiny_backbone(len(VOCAB), max_sequence_length=max(16, seq_len))
    model = ElectraClassifier(
        backbone,
        num_labels,
        dropout=0.0,
        label_names=label_names,
        preprocessor=preprocessor,
    )
    rng = np.random.default_rng(seed)
    model.set_weights(
        [rng.normal(0.0, 0.5, w.shape).astype("float32") for w in model.get_weights()]
    )
    return model


def serve(signature, **inputs):
    return {k: v.numpy() for k, v in signature(**inputs).items()}


def strings(values):
    return tf.constant(values, dtype=tf.string, shape=[len(values)])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    base = tmp_path_factory.mktemp("saved_models")
    model = tiny_classifier(label_names=["negative", "positive"])
    path = export_classifier(model, "sentiment", base_dir=str(base))
    return model, path, tf.saved_model.load(path)


@pytest.fixture(scope="module")
def exported_pair(tmp_path_factory):
    base = tmp_path_factory.mktemp("saved_models")
    # Cased (NFC, no lower-casing): the other tokenizer configuration.
    model = tiny_classifier(
        num_labels=3, label_names=["yes", "no", "maybe"], lowercase=False, seed=1
    )
    path = export_classifier(model, "nli", base_dir=str(base), pair=True)
    return model, path, tf.saved_model.load(path)


# === Layout and versions ===
def test_layout_follows_tf_serving(exported):
    model, path, _ = exported
    assert os.path.basename(path) == "1"
    assert os.path.basename(os.path.dirname(path)) == "sentiment"
    for name in (
        "saved_model.pb",
        "variables/variables.index",
        "assets/vocab.txt",
        "assets.extra/tf_serving_warmup_requests",
    ):
        assert os.path.isfile(os.path.join(path, name)), name
    with open(os.path.join(path, "assets/vocab.txt"), encoding="utf-8") as f:
        assert f.read().splitlines() == VOCAB
    # Nothing half-written stays next to the version.
    assert os.listdir(os.path.dirname(path)) == ["1"]


def test_versions(tmp_path):
    model = tiny_classifier()
    assert next_version(tmp_path, "m") == 1
    os.makedirs(tmp_path / "m" / "3")
    os.makedirs(tmp_path / "m" / "backup")  # not a version: ignored
    (tmp_path / "m" / "7").write_text("a file, not a version")
    assert next_version(tmp_path, "m") == 4
    path = export_classifier(model, "m", base_dir=tmp_path)
    assert path == os.path.join(tmp_path, "m", "4")
    with pytest.raises(ValueError, match="already exists"):
        export_classifier(model, "m", base_dir=tmp_path, version=4)
    with pytest.raises(ValueError, match="positive integer"):
        export_classifier(model, "m", base_dir=tmp_path, version=0)
    with pytest.raises(ValueError, match="plain folder name"):
        export_classifier(model, "../m", base_dir=tmp_path)
    assert sorted(os.listdir(tmp_path / "m")) == ["3", "4", "7", "backup"]
    # A zero-padded folder is that version for TF Serving: never a second one.
    os.makedirs(tmp_path / "m" / "0009")
    os.makedirs(tmp_path / "m" / "\u00b9\u00b9")  # "¹¹": not ASCII digits, ignored
    assert next_version(tmp_path, "m") == 10
    with pytest.raises(ValueError, match=r"0009 already exists \(version 9\)"):
        export_classifier(model, "m", base_dir=tmp_path, version=9)


def test_rejects_models_it_cannot_serve(tmp_path):
    model = tiny_classifier()
    model.preprocessor = None
    with pytest.raises(ValueError, match="no preprocessor"):
        export_classifier(model, "m", base_dir=tmp_path)
    with pytest.raises(ValueError, match="lacks"):
        export_classifier(model.backbone, "m", base_dir=tmp_path)
    with pytest.raises(FileNotFoundError):
        export_classifier(str(tmp_path / "missing.keras"), "m", base_dir=tmp_path)
    assert not os.path.exists(tmp_path / "m" / "1")


# === Signatures ===
def _spec(tensor_spec):
    return tensor_spec.dtype, tuple(tensor_spec.shape.as_list())


def test_signature_specs(exported):
    _, _, loaded = exported
    assert set(loaded.signatures) == {
        "serving_default",
        "classify",
        "serving_token_ids",
    }
    predict_outputs = {
        "scores": (tf.float32, (None, 2)),
        "label_ids": (tf.int64, (None,)),
        "labels": (tf.string, (None,)),
    }
    sig = loaded.signatures["serving_default"]
    assert {k: _spec(v) for k, v in sig.structured_input_signature[1].items()} == {
        "text": (tf.string, (None,))
    }
    assert {k: _spec(v) for k, v in sig.structured_outputs.items()} == predict_outputs
    sig = loaded.signatures["classify"]
    assert {k: _spec(v) for k, v in sig.structured_input_signature[1].items()} == {
        "inputs": (tf.string, (None,))
    }
    assert {k: _spec(v) for k, v in sig.structured_outputs.items()} == {
        "classes": (tf.string, (None, 2)),
        "scores": (tf.float32, (None, 2)),
    }
    sig = loaded.signatures["serving_token_ids"]
    assert {k: _spec(v) for k, v in sig.structured_input_signature[1].items()} == {
        name: (tf.int32, (None, None))
        for name in ("token_ids", "segment_ids", "padding_mask")
    }
    assert {k: _spec(v) for k, v in sig.structured_outputs.items()} == predict_outputs


def test_pair_signature_takes_text_pair(exported_pair):
    _, _, loaded = exported_pair
    sig = loaded.signatures["serving_default"]
    assert set(sig.structured_input_signature[1]) == {"text", "text_pair"}


# === Parity with the Keras model ===
def test_scores_match_keras_model(exported):
    model, _, loaded = exported
    expected = model.predict_texts(TEXTS)
    out = serve(loaded.signatures["serving_default"], text=strings(TEXTS))
    np.testing.assert_allclose(out["scores"], expected, atol=1e-6)
    np.testing.assert_allclose(out["scores"].sum(-1), 1.0, atol=1e-6)
    assert np.ptp(expected[:, 1]) > 0.01  # the texts really score differently
    np.testing.assert_array_equal(out["label_ids"], expected.argmax(-1))
    names = np.array([b"negative", b"positive"])
    np.testing.assert_array_equal(out["labels"], names[expected.argmax(-1)])


def test_pair_scores_match_keras_model(exported_pair):
    model, _, loaded = exported_pair
    firsts = TEXTS + ["the film " * 20, "", "good", "Cafe\u0301 film"]
    seconds = TEXTS[::-1] + ["bad", "the plot " * 20, "the act " * 30, "café"]
    expected = model.predict_texts(firsts, seconds)
    out = serve(
        loaded.signatures["serving_default"],
        text=strings(firsts),
        text_pair=strings(seconds),
    )
    np.testing.assert_allclose(out["scores"], expected, atol=1e-6)
    names = np.array([b"yes", b"no", b"maybe"])
    np.testing.assert_array_equal(out["labels"], names[expected.argmax(-1)])


def test_token_ids_signature_matches_text_signature(exported):
    model, _, loaded = exported
    inputs = model.preprocessor.preprocess_texts(TEXTS)
    by_ids = serve(
        loaded.signatures["serving_token_ids"],
        **{k: tf.constant(v) for k, v in inputs.items()},
    )
    by_text = serve(loaded.signatures["serving_default"], text=strings(TEXTS))
    # Same ids, same graph below the tokenizer; the two signatures batch the
    # matmuls differently, so scores may differ in the last bit.
    np.testing.assert_allclose(by_ids["scores"], by_text["scores"], atol=1e-6)
    for key in ("label_ids", "labels"):
        np.testing.assert_array_equal(by_ids[key], by_text[key])


# === Padding: to the batch's bucket, not to seq_len ===
def test_length_buckets():
    assert length_buckets(128) == (8, 16, 24, 32, 48, 64, 96, 128)
    assert length_buckets(100) == (8, 16, 24, 32, 48, 64, 96, 100)
    assert length_buckets(512)[-4:] == (192, 256, 384, 512)
    assert length_buckets(16) == (8, 16)
    assert length_buckets(12) == (8, 12)
    assert length_buckets(5) == (5,)
    assert length_buckets(128, smallest=16) == (16, 32, 48, 64, 96, 128)
    for seq_len in range(1, 600):
        ladder = length_buckets(seq_len)
        assert list(ladder) == sorted(set(ladder)) and ladder[-1] == seq_len
        assert all(b <= 1.5 * a for a, b in itertools.pairwise(ladder[1:]))
    with pytest.raises(ValueError, match="positive"):
        length_buckets(0)


def test_pack_inputs_pads_to_the_smallest_bucket_that_fits():
    special = {"cls_id": 2, "sep_id": 3, "pad_id": 0}
    buckets = (16, 32, 40)

    def ragged(lengths, token):
        values = tf.fill([sum(lengths)], tf.constant(token, tf.int32))
        return tf.RaggedTensor.from_row_lengths(values, tf.constant(lengths, tf.int64))

    def pack(lengths, pair_lengths=None):
        first = ragged(lengths, 7)
        second = None if pair_lengths is None else ragged(pair_lengths, 8)
        fixed = pack_inputs(first, second, 40, **special)
        bucketed = pack_inputs(first, second, 40, buckets=buckets, **special)
        width = bucketed["token_ids"].shape[1]
        for key, value in fixed.items():
            # The same packing, cut where only padding follows.
            np.testing.assert_array_equal(bucketed[key].numpy(), value[:, :width])
            assert not value[:, width:].numpy().any()
        return width

    assert pack([0, 3, 14]) == 16  # 14 + [CLS] + [SEP] = 16
    assert pack([3, 15]) == 32
    assert pack([31]) == 40  # 33 packed
    assert pack([500, 2]) == 40  # cut to seq_len
    assert pack([6], [7]) == 16  # 6 + 7 + 3 = 16
    assert pack([6], [8]) == 32
    assert pack([]) == 16  # an empty batch
    with pytest.raises(ValueError, match="end at seq_len 40"):
        pack_inputs(ragged([1], 7), None, 40, buckets=(16, 32), **special)


def _graph_ops(path):
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    graph = proto.meta_graphs[0].graph_def
    ops = {node.op for node in graph.node}
    for function in graph.library.function:
        ops |= {node.op for node in function.node_def}
    return ops


@pytest.mark.parametrize("pair", [False, True])
def test_bucketed_export_scores_like_the_fixed_length_one(tmp_path, pair):
    model = tiny_classifier(num_labels=3 if pair else 2, seq_len=40)
    bucketed_path = export_classifier(model, "b", base_dir=tmp_path, pair=pair)
    fixed_path = export_classifier(
        model, "f", base_dir=tmp_path, pair=pair, bucket_lengths=False
    )
    # The bucket is picked in the graph (a LowerBound search over the lengths).
    assert "LowerBound" in _graph_ops(bucketed_path)
    assert "LowerBound" not in _graph_ops(fixed_path)
    short = ["good film", "the plot was bad"]
    for texts in (short, short + [" ".join(["good film"] * 12)], TEXTS):
        pairs = texts[::-1] if pair else None
        expected = model.predict_texts(texts, pairs)  # padded to 40
        inputs = {"text": strings(texts)}
        if pair:
            inputs["text_pair"] = strings(pairs)
        for path in (bucketed_path, fixed_path):
            loaded = tf.saved_model.load(path)
            out = serve(loaded.signatures["serving_default"], **inputs)
            np.testing.assert_allclose(out["scores"], expected, atol=1e-6)


def _matmul_dtypes(path):
    """The dtypes of the graph's MatMul and Einsum nodes."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    return {
        tf.dtypes.as_dtype(node.attr["T"].type).name
        for function in proto.meta_graphs[0].graph_def.library.function
        for node in function.node_def
        if node.op in ("MatMul", "BatchMatMulV2", "Einsum")
    }


@pytest.mark.parametrize("pair", [False, True])
def test_bfloat16_export_scores_like_the_float32_model(tmp_path, pair):
    model = tiny_classifier(num_labels=3 if pair else 2, seed=2)
    bf16_path = export_classifier(
        model, "bf16", base_dir=tmp_path, pair=pair, compute_dtype="bfloat16"
    )
    float32_path = export_classifier(model, "f32", base_dir=tmp_path, pair=pair)
    assert _matmul_dtypes(bf16_path) == {"bfloat16"}
    assert _matmul_dtypes(float32_path) == {"float32"}
    # The model given is left as it was, and so is the global policy.
    assert model.backbone.dtype_policy.name == "float32"
    assert keras.config.dtype_policy().name == "float32"
    pairs = TEXTS[::-1] if pair else None
    expected = model.predict_texts(TEXTS, pairs)
    assert np.ptp(expected, axis=0).max() > 0.01  # the texts score differently
    inputs = {"text": strings(TEXTS)}
    if pair:
        inputs["text_pair"] = strings(pairs)
    out = serve(tf.saved_model.load(bf16_path).signatures["serving_default"], **inputs)
    assert out["scores"].dtype == np.float32
    np.testing.assert_allclose(out["scores"].sum(-1), 1.0, atol=1e-6)
    # bf16 keeps 8 significant bits; these scores moved by about 1e-3.
    np.testing.assert_allclose(out["scores"], expected, atol=1e-2)
    assert np.abs(out["scores"] - expected).max() > 0  # really computed in bf16
    margin = np.sort(expected, -1)[:, -1] - np.sort(expected, -1)[:, -2]
    clear = margin > 0.05
    np.testing.assert_array_equal(out["label_ids"][clear], expected.argmax(-1)[clear])


def test_with_compute_dtype_copies_weights_and_keeps_float32_logits():
    model = tiny_classifier()
    assert with_compute_dtype(model, "float32") is model
    copy = with_compute_dtype(model, "bfloat16")
    assert copy is not model and copy.preprocessor is model.preprocessor
    assert copy.backbone.dtype_policy.name == "mixed_bfloat16"
    for ours, theirs in zip(copy.get_weights(), model.get_weights(), strict=True):
        assert ours.dtype == np.float32
        np.testing.assert_array_equal(ours, theirs)
    inputs = model.preprocessor(["the film was good"])
    assert keras.ops.convert_to_numpy(copy(inputs)).dtype == np.float32
    with pytest.raises(ValueError, match="float16"):
        with_compute_dtype(model, "float16")


def test_resolve_compute_dtype():
    assert resolve_compute_dtype("float32") == ("float32", "")
    assert resolve_compute_dtype("bfloat16") == ("bfloat16", "")
    assert resolve_compute_dtype("auto", flags={"avx2", "amx_bf16"}) == (
        "bfloat16",
        "auto: this CPU has amx_bf16",
    )
    assert resolve_compute_dtype("auto", flags={"avx2", "avx512f"}) == (
        "float32",
        "auto: this CPU has no native bf16",
    )
    with pytest.raises(ValueError, match="Unknown compute dtype 'fp8'.*auto"):
        resolve_compute_dtype("fp8")


def test_unknown_compute_dtype_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="Unknown compute dtype"):
        export_classifier(tiny_classifier(), "m", base_dir=tmp_path, compute_dtype="x")
    assert not os.listdir(tmp_path)


def test_unknown_graph_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="Unknown graph 'fast'"):
        export_classifier(tiny_classifier(), "m", base_dir=tmp_path, graph="fast")
    assert not os.listdir(tmp_path)


def _variable_count(path):
    return len(tf.train.list_variables(os.path.join(path, "variables", "variables")))


def test_fused_and_keras_graphs_score_alike(tmp_path):
    model = tiny_classifier(num_labels=3)
    fused = export_classifier(model, "m", base_dir=tmp_path)
    keras_graph = export_classifier(model, "m", base_dir=tmp_path, graph="keras")
    assert "Einsum" in _graph_ops(keras_graph)
    assert "Einsum" not in _graph_ops(fused)
    # The fused graph saves its own (fused) copies of the weights, not the
    # Keras model's as well.
    assert _variable_count(fused) < _variable_count(keras_graph)
    expected = model.predict_texts(TEXTS)
    for path in (fused, keras_graph):
        out = serve(
            tf.saved_model.load(path).signatures["serving_default"], text=strings(TEXTS)
        )
        np.testing.assert_allclose(out["scores"], expected, atol=1e-6)


def _example(**features):
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                key: tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
                for key, value in features.items()
            }
        )
    ).SerializeToString()


def test_classify_signature(exported, exported_pair):
    model, path, loaded = exported
    examples = [_example(text=t.encode()) for t in TEXTS]
    out = serve(loaded.signatures["classify"], inputs=strings(examples))
    np.testing.assert_allclose(out["scores"], model.predict_texts(TEXTS), atol=1e-6)
    assert out["classes"].tolist() == [[b"negative", b"positive"]] * len(TEXTS)
    with pytest.raises(tf.errors.InvalidArgumentError):  # `text` is required
        loaded.signatures["classify"](inputs=strings([_example(other=b"x")]))

    model, _, loaded = exported_pair
    examples = [_example(text=b"good film", text_pair=b"bad plot")]
    out = serve(loaded.signatures["classify"], inputs=strings(examples))
    expected = model.predict_texts(["good film"], ["bad plot"])
    np.testing.assert_allclose(out["scores"], expected, atol=1e-6)
    assert out["classes"].tolist() == [[b"yes", b"no", b"maybe"]]


def test_classify_method_name(exported):
    from tensorflow.core.protobuf import saved_model_pb2

    _, path, _ = exported
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    sigs = proto.meta_graphs[0].signature_def
    assert sigs["classify"].method_name == CLASSIFY_METHOD_NAME
    assert sigs["serving_default"].method_name == "tensorflow/serving/predict"
    # The fingerprint was written again for the edited saved_model.pb.
    tf.saved_model.experimental.read_fingerprint(path)


# === Edge cases ===
def test_edge_cases_have_defined_results(exported):
    model, _, loaded = exported
    predict = loaded.signatures["serving_default"]
    tokens_kept = SEQ_LEN - 2
    long_text = " ".join(["good", "film"] * 500)  # 1,000 words
    texts = [b"", b"   \t\n ", long_text.encode(), b"good \xff\xfe film", b"\xc3"]
    out = serve(predict, text=strings(texts))
    assert out["scores"].shape == (5, 2)
    assert np.isfinite(out["scores"]).all()
    # Empty and whitespace-only text: [CLS] [SEP], as the Keras model sees it.
    empty = model.predict_texts([""])
    np.testing.assert_allclose(out["scores"][0], empty[0], atol=1e-6)
    np.testing.assert_allclose(out["scores"][1], empty[0], atol=1e-6)
    # Long text: truncated to its first seq_len - 2 tokens.
    first_tokens = " ".join(["good", "film"] * (tokens_kept // 2))
    np.testing.assert_allclose(
        out["scores"][2], model.predict_texts([first_tokens])[0], atol=1e-6
    )
    # Invalid UTF-8: every bad byte sequence becomes U+FFFD, then tokenizes.
    replaced = model.predict_texts(["good \ufffd\ufffd film", "\ufffd"])
    np.testing.assert_allclose(out["scores"][3:], replaced, atol=1e-6)


def test_batch_of_zero(exported, exported_pair):
    _, _, loaded = exported
    out = serve(loaded.signatures["serving_default"], text=strings([]))
    assert out["scores"].shape == (0, 2)
    assert out["label_ids"].shape == out["labels"].shape == (0,)
    out = serve(loaded.signatures["classify"], inputs=strings([]))
    assert out["scores"].shape == out["classes"].shape == (0, 2)
    empty_ids = tf.zeros([0, SEQ_LEN], tf.int32)
    out = serve(
        loaded.signatures["serving_token_ids"],
        token_ids=empty_ids,
        segment_ids=empty_ids,
        padding_mask=empty_ids,
    )
    assert out["scores"].shape == (0, 2)
    _, _, loaded = exported_pair
    out = serve(
        loaded.signatures["serving_default"], text=strings([]), text_pair=strings([])
    )
    assert out["scores"].shape == (0, 3)


# === The vocabulary is an asset ===
def test_vocabulary_is_read_from_the_asset(exported, tmp_path):
    _, path, loaded = exported
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        graph_bytes = f.read()
    assert b"zebraword" not in graph_bytes  # no vocabulary constant in the graph
    # Swap two tokens in a copy's assets/vocab.txt: its outputs follow the file.
    copy = shutil.copytree(path, tmp_path / "copy")
    vocab = list(VOCAB)
    good, bad = vocab.index("good"), vocab.index("bad")
    vocab[good], vocab[bad] = vocab[bad], vocab[good]
    (copy / "assets" / "vocab.txt").write_text("\n".join(vocab) + "\n")
    swapped = tf.saved_model.load(str(copy))
    out = serve(swapped.signatures["serving_default"], text=strings(["good", "bad"]))
    original = serve(
        loaded.signatures["serving_default"], text=strings(["bad", "good"])
    )
    np.testing.assert_allclose(out["scores"], original["scores"], atol=1e-6)


# === Regression ===
def test_regression_export(tmp_path):
    model = tiny_classifier(num_labels=1, seed=2)
    model.label_scale = 5.0  # STS-B: trained on labels / 5
    path = export_classifier(model, "sts", base_dir=tmp_path)
    loaded = tf.saved_model.load(path)
    out = serve(loaded.signatures["serving_default"], text=strings(TEXTS))
    expected = model.predict_texts(TEXTS)  # [n] predicted values, 0-5 units
    raw = np.asarray(model.predict(model.preprocessor.preprocess_texts(TEXTS)))
    np.testing.assert_allclose(expected, 5.0 * raw[:, 0], rtol=1e-5)
    np.testing.assert_allclose(out["scores"][:, 0], expected, atol=1e-5)
    assert out["label_ids"].tolist() == [0] * len(TEXTS)
    assert out["labels"].tolist() == [b"score"] * len(TEXTS)


# === Session loader, .keras files and the CLI ===
@pytest.mark.slow
def test_tf1_session_loader_and_cli(tmp_path, capsys):
    from electra_keras.cli import main

    model = tiny_classifier(num_labels=2, label_names=["neg", "pos"], seed=3)
    model_path = str(tmp_path / "classifier.keras")
    model.save(model_path)
    base = str(tmp_path / "saved_models")
    assert main(["export", "--model", model_path, "--name", "sentiment",
                 "--base-dir", base]) == 0  # fmt: skip
    assert main(["export", "--model", model_path, "--name", "sentiment",
                 "--base-dir", base, "--version", "5", "--graph", "keras"]) == 0  # fmt: skip
    assert sorted(os.listdir(os.path.join(base, "sentiment"))) == ["1", "5"]
    assert "Einsum" in _graph_ops(os.path.join(base, "sentiment", "5"))
    assert "Einsum" not in _graph_ops(os.path.join(base, "sentiment", "1"))
    assert main(["export", "--model", model_path, "--name", "sentiment",
                 "--base-dir", base, "--version", "5"]) == 2  # fmt: skip

    # The task in metrics.json (as `electra-keras finetune` writes it) says
    # whether the signatures take text_pair; --no-pair overrides it.
    with open(tmp_path / "metrics.json", "w") as f:
        json.dump({"task": "mrpc"}, f)
    capsys.readouterr()
    assert main(["export", "--model", model_path, "--name", "mrpc",
                 "--base-dir", base]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "inputs: text, text_pair" in out
    assert f"electra-keras serve --model-config {base}/mrpc.config" in out
    assert "--model mrpc 'a gripping, beautifully acted film' --text-pair" in out
    assert main(["export", "--model", model_path, "--name", "mrpc",
                 "--base-dir", base, "--no-pair"]) == 0  # fmt: skip
    assert "inputs: text)" in capsys.readouterr().out

    texts = TEXTS + ["", "good " * 40]
    expected = model.predict_texts(texts)
    # A fresh process that imports tensorflow_text, then loads the export the
    # TF1 way (a Session, tensors fed by their signature names), as
    # `saved_model_cli run` and TF Serving's C++ loader do.
    code = f"""
        import json
        import tensorflow as tf
        import tensorflow_text  # noqa: F401

        path = {os.path.join(base, "sentiment", "1")!r}
        texts = {texts!r}
        example = tf.train.Example(features=tf.train.Features(feature={{
            "text": tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[texts[0].encode()]))}})).SerializeToString()
        result = {{}}
        with tf.compat.v1.Session(graph=tf.Graph()) as sess:
            meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], path)
            sigs = meta.signature_def
            sig = sigs["serving_default"]
            out = sess.run(
                {{k: v.name for k, v in sig.outputs.items()}},
                {{sig.inputs["text"].name: texts}},
            )
            result["scores"] = out["scores"].tolist()
            result["labels"] = [x.decode() for x in out["labels"]]
            sig = sigs["classify"]
            out = sess.run(
                {{k: v.name for k, v in sig.outputs.items()}},
                {{sig.inputs["inputs"].name: [example]}},
            )
            result["classify"] = out["scores"].tolist()
            result["classes"] = [[c.decode() for c in r] for r in out["classes"]]
            sig = sigs["serving_token_ids"]
            feed = {{"token_ids": [[2, 3] + [0] * 10], "segment_ids": [[0] * 12],
                     "padding_mask": [[1, 1] + [0] * 10]}}
            out = sess.run(
                sig.outputs["scores"].name,
                {{sig.inputs[k].name: v for k, v in feed.items()}},
            )
            result["token_ids"] = out.tolist()
        print(json.dumps(result))
    """
    result = json.loads(run_python(code).strip().splitlines()[-1])
    np.testing.assert_allclose(result["scores"], expected, atol=1e-6)
    names = np.array(["neg", "pos"])
    assert result["labels"] == names[expected.argmax(-1)].tolist()
    np.testing.assert_allclose(result["classify"], expected[:1], atol=1e-6)
    assert result["classes"] == [["neg", "pos"]]
    np.testing.assert_allclose(result["token_ids"], expected[-2:-1], atol=1e-6)


# === serving/ configuration files ===
def test_serving_config_files():
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    serving = os.path.join(os.path.dirname(__file__), "..", "..", "serving")
    with open(os.path.join(serving, "models.config"), encoding="utf-8") as f:
        config = text_format.Parse(
            f.read(), model_server_config_pb2.ModelServerConfig()
        )
    (entry,) = config.model_config_list.config
    assert (entry.name, entry.base_path) == ("sentiment", "/models/sentiment")
    assert entry.model_version_policy.WhichOneof("policy_choice") == "latest"
    # BatchingParameters' proto is not in tensorflow-serving-api: check the keys.
    with open(os.path.join(serving, "batching.config"), encoding="utf-8") as f:
        lines = [ln.split("#")[0].strip() for ln in f]
    keys = {ln.split(" ")[0].rstrip(":") for ln in lines if ln}
    assert keys == {
        "max_batch_size",
        "batch_timeout_micros",
        "max_enqueued_batches",
        "num_batch_threads",
        "pad_variable_length_inputs",
    }
    with open(os.path.join(serving, "docker-compose.yml"), encoding="utf-8") as f:
        compose = f.read()
    for needle in (
        "../saved_models:/models",
        "--model_config_file=/config/models.config",
        "--enable_batching",
        "--batching_parameters_file=/config/batching.config",
        '"8500:8500"',
        '"8501:8501"',
    ):
        assert needle in compose
