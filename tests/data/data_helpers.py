"""Shared helpers of the data tests: a tiny vocabulary and generated corpora."""

import random

import numpy as np

from electra_keras.config import SPECIAL_TOKENS
from electra_keras.data import pretraining_data as pdata
from electra_keras.data.packing import ExampleBuilder
from electra_keras.data.tokenizer import ElectraTokenizer

CLS, SEP = 2, 3
WORDS = [f"w{i}" for i in range(40)]  # w{i} has id i + 5.


def make_tokenizer():
    return ElectraTokenizer([*SPECIAL_TOKENS, *WORDS, "."])


def sentence(rng, low=1, high=8):
    words = [rng.choice(WORDS) for _ in range(rng.randint(low, high))]
    return " ".join([words[0].upper(), *words[1:]]) + " ."  # "W3 w1 w7 ."


def write_corpus(path, num_docs=30, seed=0, doc_per_line=False):
    """Documents of random sentences; returns the path and the documents."""
    rng = random.Random(seed)
    docs = [[sentence(rng) for _ in range(rng.randint(1, 12))] for _ in range(num_docs)]
    if doc_per_line:
        text = "\n".join(" ".join(doc) for doc in docs) + "\n"
    else:
        text = "\n\n".join("\n".join(doc) for doc in docs) + "\n"
    path.write_text(text)
    return str(path), docs


def check_invariants(example, seq_len, cls_id=CLS, sep_id=SEP):
    ids, segments, mask = (example[k] for k in pdata.FEATURES)
    for array in (ids, segments, mask):
        assert array.shape == (seq_len,) and array.dtype == np.int32
    length = int(mask.sum())
    assert 3 <= length <= seq_len
    assert mask.tolist() == [1] * length + [0] * (seq_len - length)
    assert (ids[length:] == 0).all() and (segments[length:] == 0).all()
    assert ids[0] == cls_id and ids[length - 1] == sep_id
    seps = np.flatnonzero(ids[:length] == sep_id)
    assert len(seps) in (1, 2)
    first_sep = seps[0]
    assert (segments[: first_sep + 1] == 0).all()
    assert (segments[first_sep + 1 : length] == 1).all()
    if len(seps) == 2:
        assert first_sep < length - 2  # A second segment is never empty.
    return length, len(seps)


def content(example, sep_id=SEP):
    ids = example["token_ids"][: example["padding_mask"].sum()]
    return [int(t) for t in ids[1:] if t != sep_id]


# === ExampleBuilder, on synthetic token streams ===
def stream(seed, num_docs, max_sentence, max_sentences=20):
    """Documents of sentences of unique, increasing token ids (from 10)."""
    rng = random.Random(seed)
    next_id = 10
    docs = []
    for _ in range(num_docs):
        doc = []
        for _ in range(rng.randint(1, max_sentences)):
            length = rng.randint(1, max_sentence)
            doc.append(list(range(next_id, next_id + length)))
            next_id += length
        docs.append(doc)
    return docs


def build(docs, seq_len, **kwargs):
    builder = ExampleBuilder(seq_len, CLS, SEP, **kwargs)
    examples = []
    for doc in docs:
        for sentence in doc:
            example = builder.add_sentence(sentence)
            if example is not None:
                examples.append(example)
        example = builder.end_document()
        if example is not None:
            examples.append(example)
    return builder, examples


def long_document(seed, num_sentences=60_000):
    """One document of 1-3 token sentences."""
    rng = random.Random(seed)
    return [[[10] * rng.randint(1, 3) for _ in range(num_sentences)]]


def all_batches(dataset):
    batches = list(dataset.as_numpy_iterator())
    return {k: np.concatenate([b[k] for b in batches]) for k in pdata.FEATURES}
