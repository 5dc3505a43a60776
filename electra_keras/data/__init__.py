"""Text data: vocabularies, the WordPiece tokenizer and pretraining datasets.

from electra_keras.data import ElectraTokenizer, make_pretraining_dataset

tokenizer = ElectraTokenizer.from_preset("vocab.txt")
data = make_pretraining_dataset("corpus.txt", tokenizer, seq_len=128, batch_size=32)
"""

from electra_keras.data.corpus import CorpusError
from electra_keras.data.demo_corpus import download_wikitext2
from electra_keras.data.pretraining_data import make_pretraining_dataset
from electra_keras.data.tfrecords import (
    load_pretraining_dataset,
    write_pretraining_tfrecords,
)
from electra_keras.data.tokenizer import ElectraTokenizer
from electra_keras.data.vocab import (
    VocabularyError,
    build_vocabulary,
    download_bert_vocabulary,
    load_vocabulary,
    save_vocabulary,
    special_token_ids,
)
from electra_keras.preset_sources import PresetError

__all__ = [
    "CorpusError",
    "ElectraTokenizer",
    "PresetError",
    "VocabularyError",
    "build_vocabulary",
    "download_bert_vocabulary",
    "download_wikitext2",
    "load_pretraining_dataset",
    "load_vocabulary",
    "make_pretraining_dataset",
    "save_vocabulary",
    "special_token_ids",
    "write_pretraining_tfrecords",
]
