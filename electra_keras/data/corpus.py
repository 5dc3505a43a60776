"""Corpus files: found, checked (missing, empty, binary) and their layout detected.

Every check runs up front, before any tokenizing or training starts.
"""

from __future__ import annotations

import codecs
import glob
import os
from collections.abc import Sequence

_SNIFF_BYTES = 64 * 1024


class CorpusError(ValueError):
    """A corpus file is missing, empty, binary or not UTF-8 text."""


def resolve_corpus_files(patterns: str | Sequence[str]) -> list[str]:
    """Expands globs and checks every corpus file before any long work starts.

    Args:
        patterns: file paths or glob patterns.

    Returns:
        The files, in the order given (each glob's matches sorted), no duplicates.

    Raises:
        CorpusError: a pattern matches nothing, or a file is missing, a
            directory, empty (0 bytes or only whitespace), binary (NUL bytes)
            or not UTF-8 in its first 64 KB. The message names the file.
    """
    if isinstance(patterns, (str, os.PathLike)):
        patterns = [patterns]
    patterns = [os.fspath(p) for p in patterns]
    if not patterns:
        raise CorpusError("No corpus files given.")
    files: list[str] = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern))
            if not matches:
                raise CorpusError(f"Corpus pattern {pattern} matches no files.")
        else:
            matches = [pattern]
        for path in matches:
            if path not in files:
                files.append(path)
    for path in files:
        _check_text_file(path)
    return files


def _check_text_file(path: str) -> None:
    if not os.path.exists(path):
        raise CorpusError(f"Corpus file {path} does not exist.")
    if os.path.isdir(path):
        raise CorpusError(f"Corpus path {path} is a directory, not a text file.")
    if os.path.getsize(path) == 0:
        raise CorpusError(f"Corpus file {path} is empty (0 bytes).")
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
        if b"\x00" in head:
            raise CorpusError(
                f"Corpus file {path} is binary (it contains NUL bytes), not text."
            )
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        except UnicodeDecodeError as error:
            raise CorpusError(
                f"Corpus file {path} is not UTF-8 text (invalid byte at offset "
                f"{error.start}); it may be binary or compressed."
            ) from None
        chunk = head
        while chunk and not chunk.strip():
            chunk = f.read(1 << 20)
        if not chunk:
            raise CorpusError(f"Corpus file {path} is empty (only whitespace).")


def detect_format(path: str, max_lines: int = 1_000_000) -> bool:
    """Guesses whether a file holds one document per line.

    A blank line between two text lines means the sentence-per-line format with
    blank lines between documents; otherwise each line is a document.

    Args:
        path: the corpus file.
        max_lines: lines to look at.

    Returns:
        True for one document per line, False for one sentence per line.
    """
    seen_text = seen_blank = False
    with open(path, encoding="utf-8", errors="replace") as f:
        for count, line in enumerate(f):
            if count >= max_lines:
                break
            if line.strip():
                if seen_blank and seen_text:
                    return False
                seen_text = True
            else:
                seen_blank = seen_text
    return True
