"""ExampleBuilder: packing invariants, rates, determinism."""

import numpy as np
import pytest
from data_helpers import (
    CLS,
    SEP,
    build,
    check_invariants,
    content,
    long_document,
    stream,
)

from electra_keras.data.packing import ExampleBuilder


@pytest.mark.parametrize("seq_len", [8, 32, 128])
def test_packing_invariants_and_token_accounting(seq_len):
    # Sentences up to 2 * seq_len long: some are longer than an example.
    docs = stream(seed=seq_len, num_docs=200, max_sentence=2 * seq_len)
    builder, examples = build(docs, seq_len, rng=1)
    for example in examples:
        check_invariants(example, seq_len)
    kept = [token for example in examples for token in content(example)]
    # Kept tokens are in corpus order (ids only increase) and none is invented.
    assert all(a < b for a, b in zip(kept, kept[1:], strict=False))
    total = sum(len(s) for doc in docs for s in doc)
    assert builder.num_tokens == total
    assert len(kept) + builder.num_truncated_tokens == total
    assert builder.num_examples == len(examples)


def test_all_tokens_kept_in_order_when_nothing_is_truncated():
    # Documents shorter than seq_len - 3 end before any target is reached.
    # Documents of at most 24 tokens never reach the target and never need
    # truncation (at most seq_len - 3 = 29 tokens fit).
    docs = stream(seed=3, num_docs=300, max_sentence=6, max_sentences=4)
    builder, examples = build(docs, seq_len=32, rng=0, short_seq_prob=0.0)
    assert builder.num_truncated_tokens == 0
    assert len(examples) == len(docs)
    for doc, example in zip(docs, examples, strict=True):
        check_invariants(example, 32)
        assert content(example) == [token for sentence in doc for token in sentence]
    assert any(np.sum(e["token_ids"] == SEP) == 2 for e in examples)


def test_segment_split_of_one_example():
    builder = ExampleBuilder(16, CLS, SEP, single_segment_prob=0.0, rng=0)
    assert builder.add_sentence([10, 11, 12]) is None
    assert builder.add_sentence([13, 14]) is None
    # First segment target is (16 - 3) // 2 = 6: [10..14] fits, the rest goes to B.
    example = builder.add_sentence(list(range(15, 26)))  # 16 tokens: the target.
    # B is cut to 16 - 5 - 3 = 8 tokens.
    assert example["token_ids"].tolist() == [
        CLS, 10, 11, 12, 13, 14, SEP, 15, 16, 17, 18, 19, 20, 21, 22, SEP
    ]  # fmt: skip
    assert example["segment_ids"].tolist() == [0] * 7 + [1] * 9
    assert example["padding_mask"].tolist() == [1] * 16
    assert builder.num_truncated_tokens == 3


def test_short_examples_at_the_set_rate():
    # In one long document of short sentences a full-target example is always
    # exactly seq_len long, so shorter ones come from short targets.
    docs = long_document(seed=5)
    builder, examples = build(docs, 64, rng=7, short_seq_prob=0.05)
    lengths = np.array([e["padding_mask"].sum() for e in examples[:-1]])
    assert len(lengths) > 1500
    assert 0.03 < np.mean(lengths < 64) < 0.07
    assert lengths.min() >= 5
    _, examples = build(docs, 64, rng=7, short_seq_prob=0.0)
    assert all(e["padding_mask"].sum() == 64 for e in examples[:-1])


def test_single_segment_examples_at_the_set_rate():
    docs = long_document(seed=6)
    _, examples = build(docs, 64, rng=8, single_segment_prob=0.1)
    single = np.mean([np.sum(e["token_ids"] == SEP) == 1 for e in examples[:-1]])
    assert 0.08 < single < 0.12
    _, examples = build(docs, 64, rng=8, single_segment_prob=0.0)
    assert all(np.sum(e["token_ids"] == SEP) == 2 for e in examples[:-1])


def test_same_seed_same_examples():
    docs = stream(seed=9, num_docs=50, max_sentence=20)
    _, a = build(docs, 32, rng=4)
    _, b = build(docs, 32, rng=4)
    _, c = build(docs, 32, rng=5)
    assert all(
        (x["token_ids"] == y["token_ids"]).all() for x, y in zip(a, b, strict=False)
    )
    assert any(
        (x["token_ids"] != y["token_ids"]).any() for x, y in zip(a, c, strict=False)
    )


# === Corpus checks ===
