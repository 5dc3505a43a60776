"""Export fine-tuned classifiers as TF Serving SavedModels (see `saved_model.py`)."""

from electra_keras.export.saved_model import export_classifier, next_version

__all__ = ["export_classifier", "next_version"]
