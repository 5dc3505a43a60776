"""`ClassifierGraph`: the export's forward pass equals the Keras classifier's."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_keras.export.inference_graph import ClassifierGraph, PackedLayout
from electra_keras.models.classifier import ElectraClassifier

from conftest import tiny_backbone

VOCAB_SIZE = 50
BATCH, LENGTH = 4, 11


def classifier(num_labels=3, seed=0, **backbone_changes):
    keras.utils.set_random_seed(seed)
    changes = {"num_layers": 3, "max_sequence_length": 16, **backbone_changes}
    model = ElectraClassifier(tiny_backbone(VOCAB_SIZE, **changes), num_labels)
    # Larger weights than the initializer's, so that every part of the
    # forward pass moves the logits.
    model.set_weights(
        [
            w + np.random.default_rng(seed).normal(0, 0.3, w.shape)
            for w in model.get_weights()
        ]
    )
    return model


def padded_inputs(length=LENGTH, seed=1):
    """Rows of 11, 4, 7 and 1 tokens, a second segment in the first two."""
    rng = np.random.default_rng(seed)
    lengths = np.array([length, 4, 7, 1])
    positions = np.arange(length)[None]
    padding_mask = (positions < lengths[:, None]).astype("int32")
    segment_ids = (positions >= np.array([6, 2, 99, 99])[:, None]) * padding_mask
    token_ids = rng.integers(1, VOCAB_SIZE, (BATCH, length)) * padding_mask
    return {
        "token_ids": token_ids.astype("int32"),
        "segment_ids": segment_ids.astype("int32"),
        "padding_mask": padding_mask,
    }


def run(graph, inputs):
    return graph({k: tf.constant(v) for k, v in inputs.items()}).numpy()


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"embedding_dim": 16},  # no embedding projection
        {"activation": "gelu_approximate", "num_heads": 4},
        {"activation": "relu", "num_layers": 1},
    ],
    ids=["projection", "no-projection", "gelu-tanh-4-heads", "relu-1-layer"],
)
def test_logits_equal_the_keras_models(changes):
    model = classifier(**changes)
    inputs = padded_inputs()
    expected = model(inputs, training=False).numpy()
    assert np.ptp(expected, axis=0).max() > 0.1  # rows differ
    np.testing.assert_allclose(run(ClassifierGraph(model), inputs), expected, atol=2e-5)


def test_packed_layout_of_a_padding_mask():
    # Row 0: 3 real tokens; row 1: a hole at position 1; row 2: token 0 is
    # padding (computed anyway: the head reads it), token 2 real.
    mask = tf.constant([[1, 1, 1, 0], [1, 0, 1, 1], [0, 0, 1, 0]])
    layout = PackedLayout.from_padding_mask(mask)
    assert int(layout.batch) == 3 and int(layout.length) == 4
    np.testing.assert_array_equal(layout.rows, [0, 1, 2, 4, 6, 7, 8, 10])
    # Padding positions read the row of the computed token before them.
    np.testing.assert_array_equal(
        layout.padded_rows, [0, 1, 2, 2, 3, 3, 4, 5, 6, 6, 7, 7]
    )
    np.testing.assert_array_equal(layout.first_rows, [0, 3, 6])


def test_masks_that_are_not_a_prefix_give_the_keras_models_logits():
    # Holes in the mask and a row whose token 0 is padding: only the set of
    # attended keys matters, as in the Keras model.
    model = classifier()
    inputs = padded_inputs()
    inputs["padding_mask"][0, 3] = 0
    inputs["padding_mask"][2, 0] = 0
    expected = model(inputs, training=False).numpy()
    np.testing.assert_allclose(run(ClassifierGraph(model), inputs), expected, atol=2e-5)


def test_a_text_of_padding_only_attends_to_nothing():
    # A row with no real token (possible through `serving_token_ids` only):
    # the Keras model attends uniformly to its padding, so its logits depend
    # on the padded ids; the export zeroes the attention to padded keys as
    # Keras' `Softmax` layer does, so such a row's logits depend on nothing
    # but its token 0. The other rows keep the Keras model's logits.
    model = classifier()
    inputs = padded_inputs()
    inputs["padding_mask"][1] = 0
    graph = ClassifierGraph(model)
    first = run(graph, inputs)
    expected = model(inputs, training=False).numpy()
    others = [0, 2, 3]
    np.testing.assert_allclose(first[others], expected[others], atol=2e-5)
    inputs["token_ids"][1, 1:] = (inputs["token_ids"][1, 1:] + 7) % VOCAB_SIZE
    changed = model(inputs, training=False).numpy()
    assert np.abs(changed[1] - expected[1]).max() > 1e-3  # Keras: depends on padding
    np.testing.assert_allclose(run(graph, inputs), first, atol=1e-6)
    assert np.isfinite(first).all()


def test_mask_values_other_than_one_count_as_real_tokens():
    model = classifier()
    inputs = padded_inputs()
    expected = run(ClassifierGraph(model), inputs)
    inputs["padding_mask"] = inputs["padding_mask"] * 3
    np.testing.assert_allclose(run(ClassifierGraph(model), inputs), expected, atol=1e-6)


@pytest.mark.parametrize("name", ["segment_ids", "padding_mask"])
def test_inputs_of_different_shapes_are_refused_by_name(name):
    graph = ClassifierGraph(classifier())
    inputs = padded_inputs()
    inputs[name] = inputs[name][:, :5]
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"`{name}`"):
        run(graph, inputs)


class _RowCounter(tf.Module):
    def __init__(self, dense):
        super().__init__()
        self.dense, self.rows = dense, []

    def __call__(self, x):
        self.rows.append(int(tf.shape(x)[0]))
        return self.dense(x)


def test_dense_layers_compute_real_tokens_only():
    model = classifier()
    graph = ClassifierGraph(model)
    counters = []
    for block in graph.blocks:
        block.intermediate = _RowCounter(block.intermediate)
        counters.append(block.intermediate)
    inputs = padded_inputs()  # 4 rows padded to 11: 44 positions, 23 tokens
    np.testing.assert_allclose(
        run(graph, inputs), model(inputs, training=False), atol=2e-5
    )
    # Every block but the last runs its feed-forward on the 23 real tokens;
    # the last on token 0 of each of the 4 rows.
    assert [c.rows for c in counters] == [[23], [23], [BATCH]]


def test_regression_head_and_graph_mode():
    model = classifier(num_labels=1)
    inputs = padded_inputs()
    graph = ClassifierGraph(model)
    spec = tf.TensorSpec([None, None], tf.int32)
    traced = tf.function(graph).get_concrete_function(
        {"token_ids": spec, "segment_ids": spec, "padding_mask": spec}
    )
    out = traced(**{"inputs": {k: tf.constant(v) for k, v in inputs.items()}})
    assert out.shape == (BATCH, 1) and out.dtype == tf.float32
    np.testing.assert_allclose(out, model(inputs, training=False), atol=2e-5)


def test_padding_does_not_change_the_logits():
    model = classifier()
    graph = ClassifierGraph(model)
    short = padded_inputs()
    longer = {k: np.pad(v, [(0, 0), (0, 5)]) for k, v in short.items()}
    np.testing.assert_allclose(run(graph, longer), run(graph, short), atol=2e-5)


def test_only_token_0_reaches_the_logits():
    # The last block computes token 0's query only; other tokens' outputs of
    # the last layer must not matter, but their keys and values must.
    model = classifier()
    graph = ClassifierGraph(model)
    assert graph.blocks[-1].first_token_only
    assert not any(block.first_token_only for block in graph.blocks[:-1])
    assert graph.blocks[-1].query.kernel.shape == (16, 16)
    assert graph.blocks[0].query_key_value.kernel.shape == (16, 48)
    inputs = padded_inputs()
    changed = {k: v.copy() for k, v in inputs.items()}
    changed["token_ids"][0, 5] = (changed["token_ids"][0, 5] + 1) % VOCAB_SIZE
    assert np.abs(run(graph, changed)[0] - run(graph, inputs)[0]).max() > 1e-4


def test_weights_are_copied_when_built():
    model = classifier()
    inputs = padded_inputs()
    graph = ClassifierGraph(model)
    before = run(graph, inputs)
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    np.testing.assert_array_equal(run(graph, inputs), before)
    assert not graph.trainable_variables


def test_bfloat16_kernels_and_float32_logits():
    model = classifier()
    inputs = padded_inputs()
    graph = ClassifierGraph(model, "bfloat16")
    assert graph.blocks[0].query_key_value.kernel.dtype == tf.bfloat16
    assert graph.embedding_norm.gamma.dtype == tf.float32
    out = run(graph, inputs)
    assert out.dtype == np.float32
    expected = model(inputs, training=False).numpy()
    # 8 significant bits through 3 layers: logits of size ~1 move by ~1e-2.
    np.testing.assert_allclose(out, expected, atol=0.1)
    assert np.abs(out - expected).max() > 0  # really computed in bf16


@pytest.mark.parametrize("traced", [False, True], ids=["eager", "graph"])
def test_inputs_longer_than_the_position_table_are_refused(traced):
    # In a graph nothing may read the positions before the check: the error
    # names the limit, not an out-of-range gather.
    graph = ClassifierGraph(classifier())
    call = tf.function(graph) if traced else graph
    inputs = {k: tf.constant(v) for k, v in padded_inputs(length=17).items()}
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_sequence_length"):
        call(inputs)


def test_unsupported_models_are_refused_by_name():
    with pytest.raises(ValueError, match="compute_dtype"):
        ClassifierGraph(classifier(), "float16")
    model = classifier(num_layers=1)
    model.backbone.transformer_layers[0].normalize_first = True
    with pytest.raises(ValueError, match="pre-LayerNorm"):
        ClassifierGraph(model)
