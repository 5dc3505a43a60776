import keras
import numpy as np
import pytest

from electra_keras.layers.subclassing import change_class, use_subclass


class _TrainingAwareNorm(keras.layers.LayerNormalization):
    """Records the `training` value Keras passes (the base `call` takes none)."""

    def call(self, inputs, training=None):
        self.seen_training = training
        return super().call(inputs)


def test_change_class_makes_keras_pass_training_to_the_new_call():
    layer = keras.layers.LayerNormalization()
    layer.build((None, 4))
    weights = [w.copy() for w in layer.get_weights()]
    change_class(layer, _TrainingAwareNorm)
    assert type(layer) is _TrainingAwareNorm
    inputs = np.ones((2, 4), "float32")
    layer(inputs, training=True)
    assert layer.seen_training is True
    layer(inputs)
    assert not layer.seen_training
    for kept, weight in zip(weights, layer.get_weights(), strict=True):
        np.testing.assert_array_equal(kept, weight)


def test_use_subclass_refuses_a_layer_of_another_class():
    layer = keras.layers.Dense(3, name="projection")
    layer.build((None, 4))
    with pytest.raises(
        TypeError,
        match="'projection' to be a keras.layers.LayerNormalization, got Dense",
    ):
        use_subclass(layer, keras.layers.LayerNormalization, _TrainingAwareNorm)
    assert type(layer) is keras.layers.Dense
