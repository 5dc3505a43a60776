"""The public names of `electra_keras.models` and `electra_keras.data`."""

import importlib

import pytest


@pytest.mark.parametrize("package", ["electra_keras.models", "electra_keras.data"])
def test_every_exported_name_exists(package):
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing
    assert sorted(module.__all__) == list(module.__all__)


def test_names_the_quickstart_needs():
    from electra_keras import data, models

    for name in ("ElectraPretrainer", "ElectraClassifier", "ElectraBackbone"):
        assert name in models.__all__
    for name in (
        "ElectraTokenizer",
        "make_pretraining_dataset",
        "load_vocabulary",
        "build_vocabulary",
        "download_bert_vocabulary",
    ):
        assert name in data.__all__
    # One error class for bad sources, wherever it is imported from.
    assert models.PresetError is data.PresetError
    assert issubclass(models.PresetError, ValueError)
