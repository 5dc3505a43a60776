"""Activations by name, including the tanh approximation of GELU.

"gelu" is the exact (erf) GELU of the original TF1 ELECTRA code
(google-research/electra `model/modeling.py`) and of Hugging Face's ELECTRA;
"gelu_approximate" is the tanh form of the original BERT code and of
keras-hub's `ElectraBackbone`.
"""

import keras

ACTIVATIONS = ("gelu", "gelu_approximate", "relu")


@keras.saving.register_keras_serializable(package="electra_keras")
def gelu_approximate(x):
    """GELU, tanh approximation."""
    return keras.activations.gelu(x, approximate=True)


def get_activation(name: str):
    """The activation function for one of `ACTIVATIONS`."""
    if name == "gelu_approximate":
        return gelu_approximate
    if name in ACTIVATIONS:
        return keras.activations.get(name)
    raise ValueError(
        f"Unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}."
    )
