"""Tiny fine-tuning fixtures: a one-word sentiment task and a random backbone."""

import os

import numpy as np

from electra_keras.config import ModelConfig
from electra_keras.models.backbone import ElectraBackbone

from conftest import TINY_BACKBONE

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB += ["good", "great", "fine", "bad", "awful", "dull", "film", "a", "movie", "!"]

CONFIG = ModelConfig(vocab_size=len(VOCAB), **TINY_BACKBONE)

# A random one-layer backbone learns the one-word task in about 50 steps.
FAST = dict(
    epochs=10,
    batch_size=8,
    seq_len=8,
    learning_rate=3e-3,
    layerwise_lr_decay=1.0,
    dropout=0.0,
    verbose=0,
)


def sst2_task_dir(directory, n_train=64, n_dev=16, seed=0):
    rng = np.random.default_rng(seed)
    pos, neg = ["good", "great", "fine"], ["bad", "awful", "dull"]
    os.makedirs(directory, exist_ok=True)
    for name, n in (("train.tsv", n_train), ("dev.tsv", n_dev)):
        rows = ["sentence\tlabel"]
        for i in range(n):
            label = i % 2
            word = rng.choice(pos if label else neg)
            rows.append(f"a {word} {rng.choice(['film', 'movie'])} !\t{label}")
        with open(os.path.join(directory, name), "w") as f:
            f.write("\n".join(rows) + "\n")
    return str(directory)


def pretrained_backbone(directory):
    os.makedirs(directory, exist_ok=True)
    backbone = ElectraBackbone(**CONFIG.backbone_kwargs())
    path = os.path.join(directory, "discriminator.keras")
    backbone.save(path)
    with open(os.path.join(directory, "vocab.txt"), "w") as f:
        f.write("\n".join(VOCAB) + "\n")
    return path
