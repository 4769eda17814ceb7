"""scanrnn.data: corpus registry, reading, d2l figures, vocabulary, the seeds' batch layouts."""

import io
import os
import random
import shutil
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from scanrnn import data
from scanrnn.data import (
    CORPORA, CorpusError, Vocab, batch_rows, char_ngrams, d2l_corpus, d2l_lines,
    d2l_preprocess, gluonbook_preprocess, load_corpus, ngram_counts, num_batches,
    random_batches, read_text, resolve_corpus, sequential_batches, tokenize, tokens_needed,
    train_val_split, windows,
)
from scanrnn.data import corpora

_MIRROR_ENV = os.environ.get("SCANRNN_DATA")
MIRROR = Path(_MIRROR_ENV.split(os.pathsep)[0]) if _MIRROR_ENV else None
needs_mirror = pytest.mark.skipif(
    MIRROR is None or not (MIRROR / "timemachine.txt").is_file(),
    reason="corpus mirror (SCANRNN_DATA) not available")


# ---------------------------------------------------------------------------------------------
# reference implementations, copied from the seeds (lists, Python's random)


def d2l_seq_data_iter_random(corpus, batch_size, num_steps, r):
    corpus = corpus[r.randint(0, num_steps - 1):]
    num_subseqs = (len(corpus) - 1) // num_steps
    initial_indices = list(range(0, num_subseqs * num_steps, num_steps))
    r.shuffle(initial_indices)

    def data_(pos):
        return corpus[pos: pos + num_steps]

    num_batches_ = num_subseqs // batch_size
    for i in range(0, batch_size * num_batches_, batch_size):
        idx = initial_indices[i: i + batch_size]
        yield [data_(j) for j in idx], [data_(j + 1) for j in idx]


def d2l_seq_data_iter_sequential(corpus, batch_size, num_steps, r):
    offset = r.randint(0, num_steps)
    num_tokens = ((len(corpus) - offset - 1) // batch_size) * batch_size
    Xs = np.array(corpus[offset: offset + num_tokens]).reshape(batch_size, -1)
    Ys = np.array(corpus[offset + 1: offset + 1 + num_tokens]).reshape(batch_size, -1)
    for i in range(0, num_steps * (Xs.shape[1] // num_steps), num_steps):
        yield Xs[:, i: i + num_steps].tolist(), Ys[:, i: i + num_steps].tolist()


def gluonbook_random(corpus, batch_size, num_steps, r):
    """Seed 002's gb.data_iter_random, restated: offset int(uniform(0, T)), one subsequence
    fewer than d2l, shuffled absolute starts."""
    off = int(r.uniform(0, num_steps))
    n_sub = (len(corpus) - off - 1) // num_steps - 1
    starts = [off + k * num_steps for k in range(n_sub)]
    r.shuffle(starts)
    for i in range(n_sub // batch_size):
        sel = starts[i * batch_size:(i + 1) * batch_size]
        yield ([corpus[j:j + num_steps] for j in sel],
               [corpus[j + 1:j + 1 + num_steps] for j in sel])


def gluonbook_consecutive(corpus, batch_size, num_steps, r):
    """Seed 002's gb.data_iter_consecutive, restated: rows hold inputs and targets."""
    off = int(r.uniform(0, num_steps))
    row_len = (len(corpus) - off) // batch_size
    rows = [corpus[off + i * row_len: off + (i + 1) * row_len] for i in range(batch_size)]
    for k in range((row_len - 1) // num_steps):
        a = k * num_steps
        yield ([row[a:a + num_steps] for row in rows],
               [row[a + 1:a + 1 + num_steps] for row in rows])


def mxnet_batches(numerical, seq_length, batch_size):
    """The MXNet seed's dataset / data_rows / stack_the_datasets, on ids (batch-major)."""
    n_seq = int(np.floor((len(numerical) - 1) / seq_length))
    dataset = [numerical[i * seq_length:(i + 1) * seq_length] for i in range(n_seq)]
    labels = [numerical[i * seq_length + 1:(i + 1) * seq_length + 1] for i in range(n_seq)]
    spr = int(np.floor(len(dataset)) / batch_size)
    rows = [dataset[i * spr:i * spr + spr] for i in range(batch_size)]
    label_rows = [labels[i * spr:i * spr + spr] for i in range(batch_size)]
    return ([[r[s] for r in rows] for s in range(spr)],
            [[r[s] for r in label_rows] for s in range(spr)])


# ---------------------------------------------------------------------------------------------
# the d2l / fast.ai figures


@needs_mirror
def test_d2l_char_figures_timemachine():
    ids, vocab = d2l_corpus("timemachine")
    assert (len(ids), len(vocab)) == (170_580, 28)
    assert ids.dtype == np.int32
    assert vocab.idx_to_token[:2] == ["<unk>", " "]
    text = d2l_preprocess(load_corpus("timemachine"))
    assert len(tokenize(text, "char")) == 170_580
    assert len(Vocab.from_text(text)) == 28
    assert vocab.decode(ids[:29]) == "the time machine by h g wells"


@needs_mirror
def test_d2l_word_figures_and_zipf_counts():
    lines = d2l_lines(load_corpus("timemachine"))
    tokens = tokenize(lines, "word")
    vocab = Vocab(tokens, mode="word")
    assert (len(tokens), len(vocab)) == (32_775, 4_580)
    assert vocab.token_freqs[:4] == [("the", 2261), ("i", 1267), ("and", 1245), ("of", 1155)]
    # the seed's printed indices (ties broken by first appearance, as d2l's Counter does)
    assert vocab[tokens[:7]] == [1, 19, 50, 40, 2183, 2184, 400]
    # sep=" " gives the same word tokens; sep="" would merge words at line ends
    assert tokenize(d2l_preprocess(load_corpus("timemachine"), sep=" "), "word") == tokens
    corpus = vocab.encode(tokens)
    assert ngram_counts(corpus, 2)[:3] == [((4, 1), 309), ((8, 1), 169), ((2, 12), 130)]
    assert ngram_counts(corpus, 3)[:2] == [((1, 19, 71), 59), ((1, 19, 50), 30)]
    assert ngram_counts(tokens, 1)[0] == (("the",), 2261)


@needs_mirror
def test_nietzsche_figures_and_fastai_vocab():
    text = load_corpus("nietzsche")
    assert len(text) == 600_893 and len(set(text)) == 57
    vocab = Vocab.from_text(text, pad="\0", unk=None, order="sorted")
    assert len(vocab) == 58 and vocab.pad == 0 and vocab.unk is None
    assert vocab.idx_to_token[1:] == sorted(set(text))
    assert vocab.decode(vocab.encode(text)) == text


# ---------------------------------------------------------------------------------------------
# reading files


def test_read_text_errors(tmp_path):
    with pytest.raises(CorpusError, match="no such file"):
        read_text(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(CorpusError, match="empty"):
        read_text(tmp_path / "empty.txt")
    (tmp_path / "bin.dat").write_bytes(b"abc\x00\x01\x02")
    with pytest.raises(CorpusError, match="byte offset 3"):
        read_text(tmp_path / "bin.dat")
    (tmp_path / "latin1.txt").write_bytes("caf\u00e9 ok".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"not valid UTF-8: bad byte 0xe9 at byte offset 3"):
        read_text(tmp_path / "latin1.txt")
    with pytest.raises(CorpusError, match="not a regular file"):
        read_text(tmp_path)


def test_read_text_newlines_bom_unicode(tmp_path):
    p = tmp_path / "t.txt"
    p.write_bytes(b"\xef\xbb\xbfa\r\nb\rc\n\xc3\xa9")
    assert read_text(p) == "a\nb\nc\n\u00e9"


# ---------------------------------------------------------------------------------------------
# registry resolution (never the network)


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Isolated mirror / repo data / ./data / cache folders, and a network that fails loudly."""
    dirs = {k: tmp_path / k for k in ("mirror", "repo_data", "cwd", "xdg")}
    for d in dirs.values():
        d.mkdir()
    monkeypatch.setenv("SCANRNN_DATA", str(dirs["mirror"]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(dirs["xdg"]))
    monkeypatch.delenv("SCANRNN_OFFLINE", raising=False)
    monkeypatch.setattr(corpora, "_REPO_DATA", dirs["repo_data"])
    monkeypatch.chdir(dirs["cwd"])

    def no_network(url, timeout=None):
        raise AssertionError(f"test tried to reach the network: {url}")

    monkeypatch.setattr(corpora, "_urlopen", no_network)
    dirs["cwd_data"] = dirs["cwd"] / "data"
    dirs["cache"] = dirs["xdg"] / "scanrnn"
    return dirs


def _put(folder: Path, name="timemachine.txt", content: bytes | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if content is None:
        shutil.copyfile(MIRROR / name, path)
    else:
        path.write_bytes(content)
    return path


@needs_mirror
def test_resolution_order(places):
    order = ["mirror", "repo_data", "cwd_data", "cache"]
    for folder in reversed(order):  # add copies from the last place to the first
        _put(places[folder])
        assert resolve_corpus("timemachine").parent == places[folder]
    assert resolve_corpus("timemachine.txt").parent == places["mirror"]
    assert resolve_corpus("timemachine", cache_dir=places["cwd"]).parent == places["mirror"]
    os.remove(places["mirror"] / "timemachine.txt")
    assert resolve_corpus("timemachine").parent == places["repo_data"]


@needs_mirror
def test_explicit_path_wins_and_is_not_checked(places):
    _put(places["mirror"])
    own = _put(places["cwd"], "timemachine.txt", b"my own text\n")
    assert resolve_corpus(own) == own
    assert load_corpus(str(own)) == "my own text\n"
    assert resolve_corpus("timemachine.txt") == own  # an existing path in the cwd


def test_local_checksum_mismatch(places):
    bad = _put(places["mirror"], content=b"not the time machine\n")
    with pytest.raises(CorpusError, match="not the expected 'timemachine' corpus") as err:
        resolve_corpus("timemachine")
    assert str(bad) in str(err.value) and CORPORA["timemachine"].sha256 in str(err.value)


def test_unknown_name_lists_known(places):
    with pytest.raises(CorpusError, match="nietzsche, timemachine"):
        resolve_corpus("shakespeare")
    with pytest.raises(CorpusError, match="folder"):
        resolve_corpus(places["cwd"])


def test_offline_message_lists_every_place(places, monkeypatch):
    for kw in ({"download": False}, {}):
        if not kw:
            monkeypatch.setenv("SCANRNN_OFFLINE", "1")
        with pytest.raises(CorpusError) as err:
            resolve_corpus("nietzsche", **kw)
        msg = str(err.value)
        for folder in ("mirror", "repo_data", "cwd_data", "cache"):
            assert str(places[folder] / "nietzsche.txt") in msg
        assert "SCANRNN_DATA" in msg and CORPORA["nietzsche"].url in msg


class _FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def test_fake_download_verified_then_cached(places, monkeypatch):
    payload = b"the right bytes\n" * 100
    corpus = CORPORA["timemachine"]
    fake = corpora.Corpus(**{**corpus.__dict__, "sha256": __import__("hashlib").sha256(
        payload).hexdigest(), "size": len(payload)})
    monkeypatch.setitem(CORPORA, "timemachine", fake)
    calls = []

    def fake_urlopen(url, timeout=None):
        calls.append((url, timeout))
        return _FakeResponse(payload)

    monkeypatch.setattr(corpora, "_urlopen", fake_urlopen)
    path = resolve_corpus("timemachine")
    assert path == places["cache"] / "timemachine.txt" and path.read_bytes() == payload
    assert calls == [(corpus.url, corpora.DOWNLOAD_TIMEOUT)]
    assert resolve_corpus("timemachine") == path and len(calls) == 1  # cached now
    assert sorted(os.listdir(places["cache"])) == ["timemachine.txt"]


def test_fake_download_checksum_mismatch_deletes_temp(places, monkeypatch):
    monkeypatch.setattr(corpora, "_urlopen", lambda url, timeout=None: _FakeResponse(b"evil"))
    with pytest.raises(CorpusError, match="checksum mismatch"):
        resolve_corpus("timemachine")
    assert not places["cache"].exists() or os.listdir(places["cache"]) == []


def test_download_network_error(places, monkeypatch):
    def offline(url, timeout=None):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(corpora, "_urlopen", offline)
    with pytest.raises(CorpusError, match="download failed.*no route to host") as err:
        resolve_corpus("nietzsche")
    assert str(places["mirror"] / "nietzsche.txt") in str(err.value)
    assert os.listdir(places["cache"]) == []


# ---------------------------------------------------------------------------------------------
# vocabulary


def test_vocab_order_specials_and_lookup():
    v = Vocab(list("abbcccd"), reserved_tokens=["<bos>"], pad="<pad>")
    assert v.idx_to_token == ["<pad>", "<unk>", "<bos>", "c", "b", "a", "d"]
    assert (v.pad, v.unk, v["c"], v["z"]) == (0, 1, 3, 1)
    assert v[["a", "z"]] == [5, 1]
    # ties by first appearance ("a" before "d"), min_freq drops rare tokens
    assert Vocab(list("dabb")).idx_to_token == ["<unk>", "b", "d", "a"]
    assert Vocab(list("abbcccd"), min_freq=2).idx_to_token == ["<unk>", "c", "b"]
    assert Vocab(list("cab"), order="sorted", unk=None).idx_to_token == ["a", "b", "c"]
    strict = Vocab(list("ab"), unk=None)
    with pytest.raises(CorpusError, match="'z'"):
        strict["z"]
    with pytest.raises(CorpusError, match="1 token.*'z'"):
        strict.encode("abz")


def test_encode_decode_unknown_roundtrip():
    text = "hello world, hello vocab"
    v = Vocab.from_text(text)
    ids = v.encode(text)
    assert ids.dtype == np.int32 and ids.shape == (len(text),)
    assert v.decode(ids) == text
    assert v.unknown("hex! q") == ["!", "q", "x"]
    assert v.decode(v.encode("hex")) == "he<unk>"
    with pytest.raises(CorpusError, match="outside the vocabulary"):
        v.decode([len(v)])
    w = Vocab.from_text(text, mode="word")
    assert w.decode(w.encode("hello vocab")) == "hello vocab"
    assert w.unknown("hello there vocab world") == ["there", "world"]  # "world," is known
    assert w.encode(["hello", "nope"]).tolist() == [w["hello"], w.unk]


def test_vocab_json_roundtrip(tmp_path):
    v = Vocab.from_text("to be or not to be", mode="word", reserved_tokens=["<eos>"], pad="<p>")
    assert Vocab.from_json(v.to_json()) == v
    path = v.save(tmp_path / "sub" / "vocab.json")
    back = Vocab.load(path)
    assert back == v and back.mode == "word" and back.pad == 0 and back.token_freqs == v.token_freqs
    assert os.listdir(path.parent) == ["vocab.json"]
    assert back != Vocab.from_text("to be or not to be", mode="char")
    with pytest.raises(CorpusError, match="not a scanrnn vocabulary"):
        Vocab.from_json({"idx_to_token": ["a"]})
    with pytest.raises(CorpusError, match="no vocabulary file"):
        Vocab.load(tmp_path / "nope.json")


# ---------------------------------------------------------------------------------------------
# batching


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_random_batches_match_d2l(seed):
    corpus = list(range(103))
    ours = list(random_batches(corpus, 3, 5, rng=random.Random(seed)))
    ref = list(d2l_seq_data_iter_random(corpus, 3, 5, random.Random(seed)))
    assert [(x.tolist(), y.tolist()) for x, y in ours] == ref


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_sequential_batches_match_d2l(seed):
    corpus = list(range(103))
    ours = list(sequential_batches(corpus, 3, 5, rng=random.Random(seed)))
    ref = list(d2l_seq_data_iter_sequential(corpus, 3, 5, random.Random(seed)))
    assert [(x.tolist(), y.tolist()) for x, y in ours] == ref


@pytest.mark.parametrize("n", [103, 117, 131])
def test_gluonbook_flavor_matches_seed_002_helpers(n):
    corpus = list(range(n))
    for seed in range(4):
        ours = random_batches(corpus, 3, 5, rng=random.Random(seed), flavor="gluonbook")
        ref = list(gluonbook_random(corpus, 3, 5, random.Random(seed)))
        assert [(x.tolist(), y.tolist()) for x, y in ours] == ref
        assert len(ours) == num_batches(n, 3, 5, "random", ours.offset, flavor="gluonbook")
        ours = sequential_batches(corpus, 3, 5, rng=random.Random(seed), flavor="gluonbook")
        ref = list(gluonbook_consecutive(corpus, 3, 5, random.Random(seed)))
        assert [(x.tolist(), y.tolist()) for x, y in ours] == ref
        assert len(ours) == num_batches(n, 3, 5, "sequential", ours.offset, flavor="gluonbook")


@needs_mirror
def test_gluonbook_preprocess_seed_002():
    text = gluonbook_preprocess(load_corpus("timemachine"))
    assert len(text) == 10_000 and len(Vocab.from_text(text, unk=None)) == 43
    assert text.startswith("the time machine, by h. g. wells [1898]     i   the time traveller")


@pytest.mark.parametrize("mode", ["random", "sequential"])
@pytest.mark.parametrize("flavor", ["d2l", "gluonbook"])
def test_tokens_needed_is_tight(mode, flavor):
    fn = random_batches if mode == "random" else sequential_batches
    b, t = 3, 4
    need = tokens_needed(b, t, mode, flavor)
    high = t if (mode, flavor) == ("sequential", "d2l") else t - 1
    assert min(num_batches(need, b, t, mode, o, flavor) for o in range(high + 1)) == 1
    assert num_batches(need - 1, b, t, mode, high, flavor) == 0
    for off in range(high + 1):
        assert len(fn(np.arange(need), b, t, offset=off, flavor=flavor)) >= 1
    with pytest.raises(CorpusError, match=f"fewer than the {need} needed"):
        fn(np.arange(need - 1), b, t, rng=0, flavor=flavor)


def test_sequential_every_token_once_and_rows_continue():
    ids = np.arange(1000)
    for seed in range(5):
        b = sequential_batches(ids, 4, 7, rng=seed)
        X, Y = b.X, b.Y
        assert X.shape == (len(b), 4, 7) and X.dtype == np.int32
        np.testing.assert_array_equal(Y, X + 1)  # ids == positions: Y is X shifted by one
        flat = X.reshape(-1)
        assert len(np.unique(flat)) == flat.size  # no token is an input twice
        rows = X.transpose(1, 0, 2).reshape(4, -1)  # row i of batch k+1 continues batch k
        np.testing.assert_array_equal(np.diff(rows, axis=1), 1)
        row_len = (1000 - b.offset - 1) // 4
        np.testing.assert_array_equal(rows[:, 0], b.offset + row_len * np.arange(4))
        assert 0 <= b.offset <= 7 and len(b) == num_batches(1000, 4, 7, "sequential", b.offset)


def test_random_batches_cover_disjoint_windows():
    ids = np.arange(500)
    b = random_batches(ids, 4, 6, rng=3)
    np.testing.assert_array_equal(b.Y, b.X + 1)
    starts = b.X[:, :, 0].reshape(-1)
    assert len(set(starts.tolist())) == starts.size
    assert np.all((starts - b.offset) % 6 == 0) and 0 <= b.offset < 6
    assert len(b) == num_batches(500, 4, 6, "random", b.offset)


def test_seeds_reproduce():
    ids = np.arange(2000) % 37
    for fn in (random_batches, sequential_batches):
        a, b, c = (fn(ids, 8, 10, rng=s) for s in (5, 5, 6))
        np.testing.assert_array_equal(a.X, b.X)
        assert a.X.shape != c.X.shape or not np.array_equal(a.X, c.X) or a.offset != c.offset
    g = np.random.default_rng(0)
    e1, e2 = random_batches(ids, 8, 10, rng=g), random_batches(ids, 8, 10, rng=g)
    assert not (e1.offset == e2.offset and np.array_equal(e1.X, e2.X))  # epochs differ


def test_batch_rows_match_mxnet_seed():
    ids = list(range(1, 700))
    b = batch_rows(ids, 4, 8)
    X_ref, Y_ref = mxnet_batches(ids, 8, 4)
    assert b.X.tolist() == X_ref and b.Y.tolist() == Y_ref
    assert len(b) == (699 - 1) // 8 // 4 == 21
    np.testing.assert_array_equal(b.X[1, :, 0], b.X[0, :, -1] + 1)  # rows continue


@needs_mirror
def test_batch_rows_timemachine_layout():
    text = load_corpus("timemachine")
    vocab = Vocab.from_text(text, unk=None)
    b = batch_rows(vocab.encode(text), 32, 64)
    assert len(b) == (len(text) - 1) // 64 // 32 == 87
    assert vocab.decode(np.concatenate([b.X[0, 0], b.X[1, 0]])) == text[:128]
    assert vocab.decode(b.Y[0, 2]) == text[2 * 87 * 64 + 1: 2 * 87 * 64 + 65]


def test_windows_and_char_ngrams():
    ids = np.arange(30)
    X, Y = windows(ids, 5, step=3)
    assert X.shape == Y.shape == (9, 5) and X.dtype == np.int32
    np.testing.assert_array_equal(X[:, 0], np.arange(0, 25, 3))
    np.testing.assert_array_equal(Y, X + 1)
    assert windows(ids, 29)[0].shape == (1, 29)
    idx = list(range(100, 200))  # the seed's code, xrange -> range
    cs = 8
    c_in = [[idx[i + n] for i in range(0, len(idx) - 1 - cs, cs)] for n in range(cs)]
    c_out = [idx[i + cs] for i in range(0, len(idx) - 1 - cs, cs)]
    ys = [[idx[i + n] for i in range(1, len(idx) - cs, cs)] for n in range(cs)]
    x_rnn, y = np.stack([np.stack(c[:-2]) for c in c_in], axis=1), np.stack(c_out[:-2])
    X, y_ours = char_ngrams(idx, cs)
    np.testing.assert_array_equal(X, x_rnn)
    np.testing.assert_array_equal(y_ours, y)
    np.testing.assert_array_equal(char_ngrams(idx, cs, "sequence")[1],
                                  np.stack([np.stack(c[:-2]) for c in ys], axis=1))
    # the seed's 75,110 examples from its 600,901-character text
    assert char_ngrams(np.zeros(600_901, np.int32), 8)[0].shape == (75_110, 8)


def test_train_val_split():
    ids = np.arange(100)
    train, val = train_val_split(ids, 0.1)
    assert train.tolist() == list(range(90)) and val.tolist() == list(range(90, 100))
    assert train_val_split("abcdefghij", 0.2) == ("abcdefgh", "ij")
    assert len(train_val_split(ids, 0.0)[1]) == 0
    for bad in (1.0, -0.1, 2, "0.1"):
        with pytest.raises(ValueError, match=r"\[0, 1\)"):
            train_val_split(ids, bad)
    with pytest.raises(CorpusError, match="leaves 10 for validation"):
        train_val_split(ids, 0.1, min_tokens=tokens_needed(2, 5, "sequential"))
    with pytest.raises(CorpusError, match="for training"):
        train_val_split(ids[:3], 0.5, min_tokens=2)


def test_text_shorter_than_one_batch():
    need = tokens_needed(4, 10, "sequential")
    assert need == 4 * 10 + 10 + 1
    with pytest.raises(CorpusError, match=r"fewer than the 51 needed.*4 \* 10 = 40"):
        sequential_batches(np.arange(need - 1), 4, 10)
    assert len(sequential_batches(np.arange(need), 4, 10, rng=0)) >= 1
    with pytest.raises(CorpusError, match="needed"):
        random_batches(np.arange(tokens_needed(4, 10, "random") - 1), 4, 10)
    assert len(random_batches(np.arange(tokens_needed(4, 10, "random")), 4, 10, rng=0)) == 1
    with pytest.raises(CorpusError, match="needed"):
        batch_rows(np.arange(40), 4, 10)
    with pytest.raises(CorpusError, match="window"):
        windows(np.arange(5), 5)
    with pytest.raises(TypeError, match="encode it first"):
        sequential_batches("some text", 1, 2)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        random_batches(np.arange(100), 0, 5)


def test_public_names():
    for name in data.__all__:
        assert hasattr(data, name), name
