"""Corpus files: found, checked (missing, empty, binary) and their layout detected.

Every check runs up front, before any tokenizing or training starts.
"""

from __future__ import annotations

import codecs
import glob
import os
from collections.abc import Sequence
from typing import Any

from electra_keras.data import cache

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


def corpus_fingerprint(paths: Sequence[str]) -> list[dict[str, Any]]:
    """What identifies each corpus file: path, size, modification time, SHA-256.

    Recorded with packed TFRecords so that a resumed run can tell whether it
    is given the files they were packed from (`changed_corpus_files`).

    Args:
        paths: the corpus files, in packing order.

    Returns:
        One dict per file: `path` (absolute), `bytes`, `mtime_ns`, `sha256`.
    """
    fingerprint = []
    for path in paths:
        stat = os.stat(path)
        fingerprint.append(
            {
                "path": os.path.abspath(path),
                "bytes": stat.st_size,
                "mtime_ns": stat.st_mtime_ns,
                "sha256": cache.file_digest(path),
            }
        )
    return fingerprint


def changed_corpus_files(
    recorded: Sequence[dict[str, Any]] | None,
    recorded_paths: Sequence[str],
    paths: Sequence[str],
) -> list[str]:
    """How `paths` differ from the corpus files a fingerprint recorded.

    Paths must match in order (the order changes the packing). A file of the
    recorded size and modification time counts as unchanged, without reading
    it; when only the time differs, its SHA-256 decides, so a copied or
    touched file with the same contents is accepted. Hashing every file on
    every resume would read the whole corpus each time; comparing times alone
    would refuse a corpus copied to another disk.

    Args:
        recorded: `corpus_fingerprint` of the packed files; None for metadata
            written before fingerprints were (only the paths are compared).
        recorded_paths: the packed files' absolute paths, in order.
        paths: the corpus files given now.

    Returns:
        One line per difference (files added, missing, reordered, changed);
        empty when the files are the packed ones.
    """
    given = [os.path.abspath(path) for path in paths]
    old = list(recorded_paths)
    if given != old:
        return _path_changes(old, given)
    changes = []
    for entry in recorded or []:
        change = _file_change(entry)
        if change:
            changes.append(f"{entry['path']} {change}")
    return changes


def _path_changes(old: list[str], new: list[str]) -> list[str]:
    added = [path for path in new if path not in old]
    missing = [path for path in old if path not in new]
    changes = []
    if added:
        changes.append("not packed before: " + ", ".join(added))
    if missing:
        changes.append("packed before but not given now: " + ", ".join(missing))
    if not changes:
        changes.append("the same files in another order: " + ", ".join(new))
    return changes


def _file_change(entry: dict[str, Any]) -> str | None:
    """How one file differs from its fingerprint entry, or None."""
    path = entry["path"]
    if not os.path.isfile(path):
        return "no longer exists"
    stat = os.stat(path)
    if stat.st_size != entry["bytes"]:
        return f"has {stat.st_size:,} bytes, {entry['bytes']:,} when packed"
    if stat.st_mtime_ns == entry["mtime_ns"]:
        return None
    if cache.file_digest(path) != entry["sha256"]:
        return "has other contents (same size) than when packed"
    return None
