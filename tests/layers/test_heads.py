import keras
import numpy as np

from electra_keras.layers.heads import DiscriminatorHead


def test_one_logit_per_token_hand_checked():
    head = DiscriminatorHead(hidden_dim=3, activation="relu")
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    out = np.asarray(head(x))
    assert out.shape == (2, 5)
    hidden = np.maximum(x @ head.dense.kernel.numpy() + head.dense.bias.numpy(), 0)
    expected = (
        hidden @ head.logits_dense.kernel.numpy() + head.logits_dense.bias.numpy()
    )
    np.testing.assert_allclose(out, expected[..., 0], atol=1e-5)


def test_config_round_trip():
    head = DiscriminatorHead(
        hidden_dim=8, activation="gelu_approximate", initializer_range=0.05
    )
    assert (
        DiscriminatorHead.from_config(head.get_config()).get_config()
        == head.get_config()
    )


def test_initializers_as_the_original():
    # Intermediate dense: truncated normal (initializer_range); the 1-unit
    # output: tf.layers.dense's default, Glorot uniform.
    head = DiscriminatorHead(hidden_dim=64, initializer_range=0.02)
    head.build((2, 5, 64))
    assert isinstance(head.dense.kernel_initializer, keras.initializers.TruncatedNormal)
    assert head.dense.kernel_initializer.stddev == 0.02
    assert isinstance(
        head.logits_dense.kernel_initializer, keras.initializers.GlorotUniform
    )
    kernel = head.logits_dense.kernel.numpy()
    limit = np.sqrt(6 / (64 + 1))  # 0.304
    assert np.abs(kernel).max() <= limit
    assert kernel.std() > 0.1  # far above the truncated normal's 0.02
