"""Attention summaries: hand-checked on built weights, and on a real backbone."""

import numpy as np
import pytest

from electra_keras.training.attention_probe import (
    attention_summary,
    describe_attention,
    summarize_attention,
)

from conftest import tiny_backbone

IDS = np.array([[2, 5, 6, 3]])  # [CLS] a b [SEP]
REAL = np.ones((1, 4), "int32")


def test_uniform_attention_is_the_reference():
    weights = np.full((1, 1, 4, 4), 0.25)
    (head,) = summarize_attention(weights, IDS, REAL, sink_ids=(2, 3))
    assert head["entropy_ratio"] == pytest.approx(1.0)
    assert head["sink_mass"] == pytest.approx(0.5)  # 2 of 4 keys
    assert head["self_mass"] == pytest.approx(0.25)
    # Neighbours: 1, 2, 2, 1 of 4 keys -> mean 6/16.
    assert head["neighbour_mass"] == pytest.approx(0.375)
    assert head["neighbour_vs_uniform"] == pytest.approx(1.0)


def test_previous_token_head():
    weights = np.zeros((1, 1, 4, 4))
    for query, key in enumerate([0, 0, 1, 2]):  # query 0 has no previous token
        weights[0, 0, query, key] = 1.0
    (head,) = summarize_attention(weights, IDS, REAL, sink_ids=(2, 3))
    assert head["entropy_ratio"] == pytest.approx(0.0, abs=1e-9)
    assert head["neighbour_mass"] == pytest.approx(0.75)
    assert head["neighbour_vs_uniform"] == pytest.approx(2.0)
    assert head["self_mass"] == pytest.approx(0.25)
    assert head["sink_mass"] == pytest.approx(0.5)  # queries 0 and 1 on [CLS]
    assert head["modal_key_share"] == pytest.approx(0.5)  # key 0 for 2 of 4
    text = describe_attention([[head]])
    assert "some heads look at neighbouring tokens" in text


def test_a_sink_for_every_query_and_padding_left_out():
    ids = np.array([[2, 5, 6, 7, 8, 9, 10, 3, 0, 0]])
    real = np.array([[1] * 8 + [0] * 2])
    weights = np.zeros((1, 1, 10, 10))
    weights[0, 0, :, 7] = 1.0  # everybody on [SEP]
    (head,) = summarize_attention(weights, ids, real, sink_ids=(2, 3))
    assert head["sink_mass"] == pytest.approx(1.0)
    assert head["modal_key_share"] == pytest.approx(1.0)
    assert head["self_mass"] == pytest.approx(1 / 8)  # only [SEP] itself, of 8 real
    assert head["neighbour_mass"] == pytest.approx(1 / 8)  # only its left neighbour
    text = describe_attention([[head]])
    assert "no head looks at neighbouring tokens yet" in text
    assert "100% on [CLS]/[SEP]" in text


def test_a_backbone_without_query_weights_attends_uniformly_to_real_tokens():
    backbone = tiny_backbone(vocab_size=20, num_layers=2)
    for layer in backbone.transformer_layers:
        query = layer._self_attention_layer._query_dense
        query.kernel.assign(np.zeros(query.kernel.shape))
        query.bias.assign(np.zeros(query.bias.shape))
    inputs = {
        "token_ids": np.array([[2, 7, 8, 9, 3, 0, 0, 0]] * 2, "int32"),
        "segment_ids": np.zeros((2, 8), "int32"),
        "padding_mask": np.array([[1] * 5 + [0] * 3] * 2, "int32"),
    }
    summary = attention_summary(backbone, inputs, sink_ids=(2, 3))
    assert len(summary) == 2 and len(summary[0]) == backbone.num_heads
    # Only the first `max_rows` examples are probed.
    other = {k: np.concatenate([v, v[:1] * 0 + 1]) for k, v in inputs.items()}
    assert attention_summary(backbone, other, (2, 3), max_rows=2) == summary
    for layer in summary:
        for head in layer:
            assert head["entropy_ratio"] == pytest.approx(1.0, abs=1e-6)
            assert head["sink_mass"] == pytest.approx(2 / 5, abs=1e-6)
            assert head["neighbour_vs_uniform"] == pytest.approx(1.0, abs=1e-6)
