import math

import numpy as np
import pytest

from electra_keras.layers.activations import get_activation


def test_gelu_forms_hand_checked():
    x = np.array([-2.0, -0.5, 0.0, 0.7, 3.0], "float32")
    exact = [0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x]
    tanh = [
        0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)))
        for v in x
    ]
    np.testing.assert_allclose(np.asarray(get_activation("gelu")(x)), exact, atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(get_activation("gelu_approximate")(x)), tanh, atol=1e-6
    )
    assert not np.allclose(exact, tanh, atol=1e-5)  # the two differ measurably


def test_unknown_activation():
    with pytest.raises(ValueError, match="swish"):
        get_activation("swish")
