"""PretrainingConfig checks."""

import pytest

from electra_keras.config import ConfigError, PretrainingConfig, get_preset


def test_steps_per_execution_must_divide_steps_per_epoch():
    # Keras 3 runs whole groups of `steps_per_execution` steps: 10 steps an
    # epoch in groups of 4 ran 12, past `train_steps` and the epoch boundaries.
    with pytest.raises(
        ConfigError,
        match=r"`steps_per_execution` \(4\) must divide `steps_per_epoch` \(10\)"
        r".* each epoch would run 12 steps",
    ):
        PretrainingConfig(steps_per_epoch=10, steps_per_execution=4)
    with pytest.raises(ConfigError, match="must divide"):
        get_preset("tiny").replace(steps_per_execution=3)  # 250 steps an epoch
    config = get_preset("tiny").replace(steps_per_epoch=12, steps_per_execution=4)
    assert config.steps_per_execution == 4


def test_corpus_format_is_checked():
    from electra_keras.config import get_preset

    assert get_preset("tiny").corpus_format == "auto"
    with pytest.raises(ConfigError, match="Unknown corpus_format 'docs'"):
        get_preset("tiny").replace(corpus_format="docs")
