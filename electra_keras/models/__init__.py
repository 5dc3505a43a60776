"""Models; importing this package registers every class with `keras.saving`."""

from electra_keras.models.backbone import ElectraBackbone
from electra_keras.models.classifier import ElectraClassifier
from electra_keras.models.classifier_preprocessor import ElectraClassifierPreprocessor
from electra_keras.models.discriminator import ElectraDiscriminator
from electra_keras.models.masked_lm import ElectraMaskedLM
from electra_keras.models.pretrainer import ElectraPretrainer

__all__ = [
    "ElectraBackbone",
    "ElectraClassifier",
    "ElectraClassifierPreprocessor",
    "ElectraDiscriminator",
    "ElectraMaskedLM",
    "ElectraPretrainer",
]
