import hashlib
import os
import subprocess

import pytest

from electra_keras.data import cache


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "here"))
    assert cache.cache_dir() == str(tmp_path / "here")


def test_cache_dir_default_under_home(monkeypatch, tmp_path):
    monkeypatch.delenv(cache.CACHE_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache.cache_dir() == str(tmp_path / ".cache" / "electra_keras")


def test_file_digest_and_atomic_write(tmp_path):
    path = tmp_path / "sub" / "file.txt"
    cache.atomic_write_text(str(path), "héllo\n")
    assert path.read_bytes() == "héllo\n".encode()
    assert os.listdir(path.parent) == ["file.txt"]  # no temporary file left
    expected = hashlib.sha256("héllo\n".encode()).hexdigest()
    assert cache.file_digest(str(path)) == expected
    md5 = hashlib.md5(b"h\xc3\xa9llo\n").hexdigest()
    assert cache.file_digest(str(path), "md5") == md5


def _fake_pip(monkeypatch, content=b"wheel bytes", returncode=0, stderr=""):
    calls = []

    def run(command, capture_output, text):
        calls.append(command)
        if returncode == 0:
            dest = command[command.index("-d") + 1]
            with open(os.path.join(dest, "pkg-1.0-py3-none-any.whl"), "wb") as f:
                f.write(content)
        return subprocess.CompletedProcess(command, returncode, "", stderr)

    monkeypatch.setattr(cache.subprocess, "run", run)
    return calls


def test_pip_download_checks_sha256(monkeypatch, tmp_path):
    calls = _fake_pip(monkeypatch)
    digest = hashlib.sha256(b"wheel bytes").hexdigest()
    path = cache.pip_download("pkg==1.0", str(tmp_path), digest, no_binary=True)
    assert path == str(tmp_path / "pkg-1.0-py3-none-any.whl")
    command = calls[0]
    assert command[1:4] == ["-m", "pip", "download"]
    assert "--no-deps" in command and command[-1] == "pkg==1.0"
    assert command[command.index("--no-binary") + 1] == ":all:"


def test_pip_download_checksum_mismatch(monkeypatch, tmp_path):
    _fake_pip(monkeypatch, content=b"tampered")
    with pytest.raises(cache.DownloadError, match="Checksum mismatch.*pkg==1.0"):
        cache.pip_download("pkg==1.0", str(tmp_path), "0" * 64)


def test_pip_download_failure_includes_pip_error(monkeypatch, tmp_path):
    _fake_pip(monkeypatch, returncode=1, stderr="ERROR: No matching distribution")
    with pytest.raises(cache.DownloadError, match="No matching distribution"):
        cache.pip_download("pkg==1.0", str(tmp_path), "0" * 64)
