"""Packing tokenized sentences into `[CLS] A [SEP] B [SEP]` pretraining examples.

Follows google-research/electra's `build_pretraining_dataset.py`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np


class ExampleBuilder:
    """Packs tokenized sentences into `[CLS] A [SEP] B [SEP]` examples.

    Follows `ExampleBuilder` of google-research/electra's
    `build_pretraining_dataset.py`: sentences accumulate until their length
    reaches the target (`seq_len`, or with probability `short_seq_prob` a
    random length in [5, seq_len]) or the document ends. The example's first
    segment then takes everything with probability `single_segment_prob`,
    otherwise sentences until about half the target; the rest is the second
    segment. Segments are truncated to fit; tokens cut off are dropped.

    One deliberate difference: once a sentence went to the second segment,
    all later ones do too (the original could move a later short sentence back
    into the first segment), so the text of an example is always in order.

    Args:
        seq_len: length of every example, special tokens and padding included.
        cls_id: id of [CLS].
        sep_id: id of [SEP].
        short_seq_prob: chance that the next example aims at a random length.
        single_segment_prob: chance that an example has one segment only.
        rng: a `random.Random`, or a seed for one.
        pad_id: id written in padded positions.
    """

    def __init__(
        self,
        seq_len: int,
        cls_id: int,
        sep_id: int,
        short_seq_prob: float = 0.05,
        single_segment_prob: float = 0.1,
        rng: random.Random | int | None = None,
        pad_id: int = 0,
    ) -> None:
        if seq_len < 5:
            raise ValueError(f"seq_len must be at least 5, got {seq_len}.")
        for name, p in (
            ("short_seq_prob", short_seq_prob),
            ("single_segment_prob", single_segment_prob),
        ):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {p}.")
        self.seq_len = seq_len
        self.cls_id = cls_id
        self.sep_id = sep_id
        self.pad_id = pad_id
        self.short_seq_prob = short_seq_prob
        self.single_segment_prob = single_segment_prob
        self.rng = rng if isinstance(rng, random.Random) else random.Random(rng)
        self._sentences: list[list[int]] = []
        self._length = 0
        self._target = seq_len
        self.num_examples = 0
        self.num_tokens = 0  # Tokens received.
        self.num_truncated_tokens = 0  # Tokens cut off to fit seq_len.

    def add_sentence(self, token_ids: Sequence[int]) -> dict[str, np.ndarray] | None:
        """Adds one sentence; returns an example when the target is reached.

        Args:
            token_ids: the sentence's token ids (an empty one is ignored).
        """
        token_ids = list(token_ids)
        if not token_ids:
            return None
        self._sentences.append(token_ids)
        self._length += len(token_ids)
        self.num_tokens += len(token_ids)
        if self._length >= self._target:
            return self._create_example()
        return None

    def end_document(self) -> dict[str, np.ndarray] | None:
        """Ends the document; returns the example of what is left, if anything."""
        if self._length == 0:
            return None
        return self._create_example()

    def _create_example(self) -> dict[str, np.ndarray]:
        rng = self.rng
        if rng.random() < self.single_segment_prob:
            first_target = 100_000
        else:
            first_target = (self._target - 3) // 2  # -3: [CLS] and two [SEP]s.
        first: list[int] = []
        second: list[int] = []
        for sentence in self._sentences:
            if not second and (
                not first
                or len(first) + len(sentence) < first_target
                or (len(first) < first_target and rng.random() < 0.5)
            ):
                first += sentence
            else:
                second += sentence
        total = len(first) + len(second)
        first = first[: self.seq_len - 2]
        second = second[: max(0, self.seq_len - len(first) - 3)]
        self.num_truncated_tokens += total - len(first) - len(second)
        self._sentences = []
        self._length = 0
        if rng.random() < self.short_seq_prob:
            self._target = rng.randint(5, self.seq_len)
        else:
            self._target = self.seq_len
        self.num_examples += 1
        return self._make_example(first, second)

    def _make_example(self, first: list[int], second: list[int]) -> dict[str, Any]:
        token_ids = [self.cls_id, *first, self.sep_id]
        segment_ids = [0] * len(token_ids)
        if second:
            token_ids += [*second, self.sep_id]
            segment_ids += [1] * (len(second) + 1)
        length = len(token_ids)
        pad = self.seq_len - length
        return {
            "token_ids": np.array(token_ids + [self.pad_id] * pad, np.int32),
            "segment_ids": np.array(segment_ids + [0] * pad, np.int32),
            "padding_mask": np.array([1] * length + [0] * pad, np.int32),
        }
