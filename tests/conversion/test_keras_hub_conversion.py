"""keras-hub `ElectraBackbone`: same weights, same `sequence_output`."""

import keras_hub
import numpy as np
import pytest

from electra_keras.conversion.hf import ConversionError
from electra_keras.conversion.keras_hub import from_keras_hub, to_keras_hub
from electra_keras.models.backbone import ElectraBackbone

from conftest import make_token_batch

SIZES = dict(
    vocab_size=60,
    num_layers=2,
    num_heads=2,
    hidden_dim=16,
    intermediate_dim=32,
    embedding_dim=8,
    max_sequence_length=16,
)


def test_from_keras_hub_matches_sequence_output():
    theirs = keras_hub.models.ElectraBackbone(**SIZES, dropout=0.0)
    ours, report = from_keras_hub(theirs)
    batch = make_token_batch(3)
    expected = np.asarray(theirs(batch)["sequence_output"])
    np.testing.assert_allclose(np.asarray(ours(batch)), expected, atol=1e-5)
    assert all("pooler" in why for why in report.skipped.values()) and report.skipped


def test_to_keras_hub_and_back(tmp_path):
    ours = ElectraBackbone(**SIZES, dropout=0.0, activation="gelu_approximate")
    theirs, report = to_keras_hub(ours)
    batch = make_token_batch(3, seed=4)
    np.testing.assert_allclose(
        np.asarray(theirs(batch)["sequence_output"]), np.asarray(ours(batch)), atol=1e-5
    )
    assert any("pooled_dense" in n for n in report.notices)
    # Through a local preset directory, as users keep them.
    theirs.save_to_preset(str(tmp_path / "preset"))
    again, _ = from_keras_hub(str(tmp_path / "preset"))
    np.testing.assert_allclose(
        np.asarray(again(batch)), np.asarray(ours(batch)), atol=1e-5
    )


def test_exact_gelu_cannot_go_to_keras_hub():
    with pytest.raises(ConversionError, match="tanh GELU"):
        to_keras_hub(ElectraBackbone(**SIZES))
