"""Models; importing this package registers every class with `keras.saving`.

from electra_keras.models import ElectraClassifier, ElectraPretrainer

pretrainer = ElectraPretrainer.from_preset("small", vocabulary="vocab.txt")
classifier = ElectraClassifier.from_preset("runs/pretrain", num_labels=2)
"""

from electra_keras.models.backbone import ElectraBackbone
from electra_keras.models.classifier import ElectraClassifier
from electra_keras.models.classifier_preprocessor import ElectraClassifierPreprocessor
from electra_keras.models.discriminator import ElectraDiscriminator
from electra_keras.models.masked_lm import ElectraMaskedLM
from electra_keras.models.pretrainer import ElectraPretrainer
from electra_keras.preset_sources import PresetError

__all__ = [
    "ElectraBackbone",
    "ElectraClassifier",
    "ElectraClassifierPreprocessor",
    "ElectraDiscriminator",
    "ElectraMaskedLM",
    "ElectraPretrainer",
    "PresetError",
]
