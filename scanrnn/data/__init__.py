"""Data for character and word language models: corpora, tokens, vocabularies, batches.

``corpora``: the registry (``timemachine``, ``nietzsche``), :func:`resolve_corpus`,
:func:`read_text`, :func:`load_corpus`, :class:`CorpusError`. ``text``:
:func:`d2l_preprocess`, :func:`tokenize`, :func:`text_tokens`, :class:`Vocab`,
:func:`ngram_counts`. ``batching``: the seeds' batch layouts, all int32 and batch-major
``(batch_size, seq_len)``, and :func:`train_val_split`, the one train/validation split.
"""

from .batching import (
    Batches,
    batch_rows,
    char_ngrams,
    num_batches,
    random_batches,
    sequential_batches,
    tokens_needed,
    train_val_split,
    windows,
)
from .corpora import (
    CORPORA,
    Corpus,
    CorpusError,
    default_cache_dir,
    download_file,
    load_corpus,
    read_text,
    resolve_corpus,
    search_paths,
    sha256sum,
)
from .text import (
    Vocab,
    d2l_corpus,
    d2l_lines,
    d2l_preprocess,
    gluonbook_preprocess,
    ngram_counts,
    text_tokens,
    tokenize,
)

__all__ = [
    "CORPORA", "Batches", "Corpus", "CorpusError", "Vocab", "batch_rows", "char_ngrams",
    "d2l_corpus", "d2l_lines", "d2l_preprocess", "default_cache_dir", "download_file",
    "gluonbook_preprocess",
    "load_corpus", "ngram_counts", "num_batches", "random_batches", "read_text",
    "resolve_corpus", "search_paths", "sequential_batches", "sha256sum", "text_tokens", "tokenize",
    "tokens_needed", "train_val_split", "windows",
]
