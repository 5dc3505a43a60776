import keras
import numpy as np

from electra_keras.models.discriminator import ElectraDiscriminator

from conftest import make_token_batch, tiny_backbone


def test_one_logit_per_token_and_round_trip(tmp_path):
    model = ElectraDiscriminator(tiny_backbone(60))
    batch = make_token_batch(num_rows=3)
    logits = np.asarray(model(batch))
    assert logits.shape == (3, 16)
    model.save(tmp_path / "d.keras")
    restored = keras.saving.load_model(tmp_path / "d.keras")
    np.testing.assert_allclose(np.asarray(restored(batch)), logits, atol=1e-6)
    assert isinstance(restored.backbone, type(model.backbone))
