"""Our tf-text tokenizer and transformers' fast BERT/ELECTRA tokenizers agree."""

import pytest

transformers = pytest.importorskip("transformers")

from electra_keras.data.tokenizer import ElectraTokenizer  # noqa: E402
from electra_keras.data.vocab import download_bert_vocabulary  # noqa: E402

SAMPLES = [
    "The quick brown fox jumps over the lazy dog.",
    "Café déjà vu: naïve résumé, façade & coöperation!",
    "Hello,world!!! (parentheses) [brackets] {braces} -- dashes... 'quotes' \"double\"",
    "東京は日本の首都です。北京欢迎你",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "xqzptlkw unknownwordzzz 12345 3.14159 $100 50%",
    "Tabs\tand\nnewlines   and  spaces",
    "Emoji 😀 and symbols © ® ™ ½",
    "10\xa0km, foo\u3000bar, co\xadoperate, zero\u200bwidth, bad\ufffdbyte",
    "",
    "a" * 150,
    "ÀÉÎÕÜ straße ǅ ﬁ",
]


@pytest.mark.slow
@pytest.mark.parametrize("cls_name", ["BertTokenizerFast", "ElectraTokenizerFast"])
def test_ids_match_transformers(cls_name, tmp_path):
    import shutil

    vocab = download_bert_vocabulary()
    shutil.copy(vocab, tmp_path / "vocab.txt")
    ours = ElectraTokenizer(vocab, lowercase=True)
    theirs = getattr(transformers, cls_name).from_pretrained(
        str(tmp_path), do_lower_case=True
    )
    # The original ELECTRA/BERT code wordpieces words of up to 200 characters
    # (`max_input_chars_per_word=200`); transformers' default is 100.
    theirs.backend_tokenizer.model.max_input_chars_per_word = 200
    got = ours.tokenize(SAMPLES).to_list()
    for text, ids in zip(SAMPLES, got, strict=True):
        expected = theirs(text, add_special_tokens=False)["input_ids"]
        assert ids == expected, (
            text,
            ours.detokenize([ids]).numpy(),
            theirs.convert_ids_to_tokens(expected),
        )
