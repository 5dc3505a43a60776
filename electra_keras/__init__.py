"""electra-keras: ELECTRA pretraining, fine-tuning, export and serving with Keras 3.

`import electra_keras` registers every model, layer and optimizer with
`keras.saving`, so `keras.saving.load_model("classifier.keras")` works after it.
"""

__version__ = "0.1.0"


def _register() -> None:
    import electra_keras.finetuning.optimizer  # noqa: F401
    import electra_keras.models  # noqa: F401
    import electra_keras.training.optimizer  # noqa: F401


_register()
