import keras
import numpy as np

from electra_keras.layers.embeddings import ElectraEmbedding


def test_sum_of_tables_then_layer_norm():
    layer = ElectraEmbedding(
        vocab_size=10, embedding_dim=4, max_sequence_length=6, dropout=0.0
    )
    ids = np.array([[2, 7, 3]], "int32")
    segments = np.array([[0, 1, 1]], "int32")
    out = np.asarray(layer(ids, segments))
    tok = layer.token_embedding.embeddings.numpy()[ids[0]]
    pos = layer.position_embedding.position_embeddings.numpy()[:3]
    seg = layer.segment_embedding.embeddings.numpy()[segments[0]]
    x = tok + pos + seg
    expected = (x - x.mean(-1, keepdims=True)) / np.sqrt(
        x.var(-1, keepdims=True) + 1e-12
    )
    np.testing.assert_allclose(out[0], expected, atol=1e-5)


def test_config_round_trip():
    layer = ElectraEmbedding(
        vocab_size=10, embedding_dim=4, max_sequence_length=6, num_segments=3
    )
    clone = ElectraEmbedding.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(restored, ElectraEmbedding) and restored.num_segments == 3
