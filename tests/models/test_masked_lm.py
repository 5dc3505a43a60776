import keras
import numpy as np

from electra_keras.models.masked_lm import ElectraMaskedLM

from conftest import make_token_batch, tiny_backbone


def test_logits_at_positions_tied_and_round_trip(tmp_path):
    model = ElectraMaskedLM(tiny_backbone(60), head_activation="gelu_approximate")
    batch = dict(
        make_token_batch(num_rows=2), mask_positions=np.array([[1, 2], [3, 4]], "int32")
    )
    logits = np.asarray(model(batch))
    assert logits.shape == (2, 2, 60)
    assert (
        model.head.token_embedding.embeddings
        is model.backbone.token_embedding.embeddings
    )
    model.save(tmp_path / "g.keras")
    restored = keras.saving.load_model(tmp_path / "g.keras")
    assert restored.head_activation == "gelu_approximate"
    np.testing.assert_allclose(np.asarray(restored(batch)), logits, atol=1e-6)
