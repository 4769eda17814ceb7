# ruff: noqa: SIM115, C414, C402  (the lesson's cells, as written)
"""The fast.ai lesson 6 Keras cells, copied as written (imports changed), on a short corpus.

The module fixture runs the cells in the notebook's order (later cells rely on
earlier ones, including Keras 1 turning the 1-D arrays of a list passed to
``fit`` into ``(N, 1)`` arrays in place); the tests then check that each model
trained, predicts and has the lesson's parameter counts.  The only edits to
the cells: Python 2's ``xrange`` comes by import, the text is cut to
``CHARS`` characters, and return values are kept (``hist = model.fit(...)``).
"""

from __future__ import annotations

import contextlib
import io
from builtins import range as xrange
from types import SimpleNamespace

import numpy as np
import pytest

from scanrnn.keras import input_checks
from scanrnn.keras.layers import (
    LSTM,
    BatchNormalization,
    Dense,
    Embedding,
    Flatten,
    Input,
    SimpleRNN,
    TimeDistributed,
    merge,
)
from scanrnn.keras.models import Model, Sequential
from scanrnn.keras.optimizers import Adam
from scanrnn.keras.utils import get_file

CHARS = 2400


def _summary(model):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        model.summary()
    return out.getvalue()


@pytest.fixture(scope="module")
def lesson():
    r = SimpleNamespace()
    quiet = contextlib.redirect_stdout(io.StringIO())
    quiet.__enter__()
    try:
        # In [3]
        path = get_file('nietzsche.txt', origin="https://s3.amazonaws.com/text-datasets/nietzsche.txt")
        text = open(path).read()
        r.corpus_length = len(text)
        text = text[:CHARS]
        # In [4] - [7]
        chars = sorted(list(set(text)))
        vocab_size = len(chars)+1
        chars.insert(0, "\0")
        char_indices = dict((c, i) for i, c in enumerate(chars))
        idx = [char_indices[c] for c in text]
        r.chars, r.vocab_size = chars, vocab_size

        # In [8] - [23]: the 4-character model
        cs = 3
        c1_dat = [idx[i] for i in xrange(0, len(idx)-1-cs, cs)]
        c2_dat = [idx[i+1] for i in xrange(0, len(idx)-1-cs, cs)]
        c3_dat = [idx[i+2] for i in xrange(0, len(idx)-1-cs, cs)]
        c4_dat = [idx[i+3] for i in xrange(0, len(idx)-1-cs, cs)]
        x1 = np.stack(c1_dat[:-2])
        x2 = np.stack(c2_dat[:-2])
        x3 = np.stack(c3_dat[:-2])
        y = np.stack(c4_dat[:-2])
        n_fac = 42

        def embedding_input(name, n_in, n_out):
            inp = Input(shape=(1,), dtype='int64', name=name)
            emb = Embedding(n_in, n_out, input_length=1)(inp)
            return inp, Flatten()(emb)

        c1_in, c1 = embedding_input('c1', vocab_size, n_fac)
        c2_in, c2 = embedding_input('c2', vocab_size, n_fac)
        c3_in, c3 = embedding_input('c3', vocab_size, n_fac)
        n_hidden = 256
        dense_in = Dense(n_hidden, activation='relu')
        c1_hidden = dense_in(c1)
        dense_hidden = Dense(n_hidden, activation='tanh')
        c2_dense = dense_in(c2)
        hidden_2 = dense_hidden(c1_hidden)
        c2_hidden = merge([c2_dense, hidden_2])
        c3_dense = dense_in(c3)
        hidden_3 = dense_hidden(c2_hidden)
        c3_hidden = merge([c3_dense, hidden_3])
        dense_out = Dense(vocab_size, activation='softmax')
        c4_out = dense_out(c3_hidden)
        model = Model([c1_in, c2_in, c3_in], c4_out)
        model.compile(loss='sparse_categorical_crossentropy', optimizer=Adam())
        # In [24]
        r.hist4 = model.fit([x1, x2, x3], y, batch_size=64, nb_epoch=4)

        # In [25] - [28]
        def get_next(inp):
            idxs = [char_indices[c] for c in inp]
            arrs = [np.array(i)[np.newaxis] for i in idxs]
            p = model.predict(arrs)
            i = np.argmax(p)
            return chars[i]
        r.next4 = [get_next('phi'), get_next(' th'), get_next(' an')]
        r.model4 = model

        # In [29] - [43]: the n-character model
        cs = 8
        c_in_dat = [[idx[i+n] for i in xrange(0, len(idx)-1-cs, cs)]
                    for n in range(cs)]
        c_out_dat = [idx[i+cs] for i in xrange(0, len(idx)-1-cs, cs)]
        xs = [np.stack(c[:-2]) for c in c_in_dat]
        y = np.stack(c_out_dat[:-2])
        n_fac = 42

        def embedding_input(name, n_in, n_out):
            inp = Input(shape=(1,), dtype='int64', name=name+'_in')
            emb = Embedding(n_in, n_out, input_length=1, name=name+'_emb')(inp)
            return inp, Flatten()(emb)

        c_ins = [embedding_input('c'+str(n), vocab_size, n_fac) for n in range(cs)]
        n_hidden = 256
        dense_in = Dense(n_hidden, activation='relu')
        dense_hidden = Dense(n_hidden, activation='relu', init='identity')
        dense_out = Dense(vocab_size, activation='softmax')
        hidden = dense_in(c_ins[0][1])
        for i in range(1, cs):
            c_dense = dense_in(c_ins[i][1])
            hidden = dense_hidden(hidden)
            hidden = merge([c_dense, hidden])
        c_out = dense_out(hidden)
        model = Model([c[0] for c in c_ins], c_out)
        model.compile(loss='sparse_categorical_crossentropy', optimizer=Adam())
        r.histn = model.fit(xs, y, batch_size=64, nb_epoch=12)

        # In [44] - [47]
        def get_next(inp):
            idxs = [np.array(char_indices[c])[np.newaxis] for c in inp]
            p = model.predict(idxs)
            return chars[np.argmax(p)]
        r.nextn = [get_next('for thos'), get_next('part of ')]
        # by hand from the weights of that moment: later models share (and train) dense_in
        r.nextn_by_hand = [
            chars[int(np.argmax(_n_character_by_hand(model, [char_indices[c] for c in text])[-1]))]
            for text in ('for thos', 'part of ')]
        r.modeln, r.dense_in_n = model, dense_in

        # In [48] - [56]: Keras's SimpleRNN
        n_hidden, n_fac, cs, vocab_size = (256, 42, 8, 86)
        model = Sequential([
                Embedding(vocab_size, n_fac, input_length=cs),
                SimpleRNN(n_hidden, activation='relu', inner_init='identity'),
                Dense(vocab_size, activation='softmax')
            ])
        r.summary_rnn = _summary(model)
        model.compile(loss='sparse_categorical_crossentropy', optimizer=Adam())
        r.hist_rnn = model.fit(np.concatenate(xs, axis=1), y, batch_size=64, nb_epoch=8)

        def get_next_keras(inp):
            idxs = [char_indices[c] for c in inp]
            arrs = np.array(idxs)[np.newaxis, :]
            p = model.predict(arrs)[0]
            return chars[np.argmax(p)]
        r.next_rnn = [get_next_keras('this is '), get_next_keras('part of ')]
        r.model_rnn = model

        # In [57] - [67]: the 2-to-n sequence model
        c_out_dat = [[idx[i+n] for i in xrange(1, len(idx)-cs, cs)]
                     for n in range(cs)]
        ys = [np.stack(c[:-2]) for c in c_out_dat]
        dense_in = Dense(n_hidden, activation='relu')
        dense_hidden = Dense(n_hidden, activation='relu', init='identity')
        dense_out = Dense(vocab_size, activation='softmax', name='output')
        inp1 = Input(shape=(n_fac,), name='zeros')
        hidden = dense_in(inp1)
        outs = []

        for i in range(cs):
            c_dense = dense_in(c_ins[i][1])
            hidden = dense_hidden(hidden)
            hidden = merge([c_dense, hidden], mode='sum')
            # every layer now has an output
            outs.append(dense_out(hidden))
        model = Model([inp1] + [c[0] for c in c_ins], outs)
        model.compile(loss='sparse_categorical_crossentropy', optimizer=Adam())
        zeros = np.tile(np.zeros(n_fac), (len(xs[0]), 1))
        r.hist2n = model.fit([zeros]+xs, ys, batch_size=64, nb_epoch=12)

        def get_nexts(inp):
            idxs = [char_indices[c] for c in inp]
            arrs = [np.array(i)[np.newaxis] for i in idxs]
            p = model.predict([np.zeros(n_fac)[np.newaxis, :]] + arrs)
            print(list(inp))
            return [chars[np.argmax(o)] for o in p]
        r.nexts2n = get_nexts(' this is')
        r.model2n, r.dense_out_2n = model, dense_out

        # In [68] - [74]: return_sequences + TimeDistributed
        model = Sequential([
                Embedding(vocab_size, n_fac, input_length=cs),
                SimpleRNN(n_hidden, return_sequences=True, activation='relu',
                          inner_init='identity'),
                TimeDistributed(Dense(vocab_size, activation='softmax')),
            ])
        r.summary_seq = _summary(model)
        model.compile(loss='sparse_categorical_crossentropy', optimizer=Adam())
        x_rnn = np.stack(np.squeeze(xs), axis=1)
        y_rnn = np.atleast_3d(np.stack(ys, axis=1))
        r.x_rnn, r.y_rnn = x_rnn, y_rnn
        r.hist_seq = model.fit(x_rnn, y_rnn, batch_size=64, nb_epoch=8)

        def get_nexts_keras(inp):
            idxs = [char_indices[c] for c in inp]
            arr = np.array(idxs)[np.newaxis, :]
            p = model.predict(arr)[0]
            print(list(inp))
            return [chars[np.argmax(o)] for o in p]
        r.nexts_seq = get_nexts_keras(' this is')
        r.model_seq = model

        # In [75] - [81]: the stateful LSTM
        bs = 64
        model = Sequential([
                Embedding(vocab_size, n_fac, input_length=cs, batch_input_shape=(bs, 8)),
                BatchNormalization(),
                LSTM(n_hidden, return_sequences=True, stateful=True),
                TimeDistributed(Dense(vocab_size, activation='softmax')),
            ])
        model.compile(loss='sparse_categorical_crossentropy', optimizer=Adam())
        mx = len(x_rnn)//bs*bs
        r.hist_lstm = [model.fit(x_rnn[:mx], y_rnn[:mx], batch_size=bs, nb_epoch=4,
                                 shuffle=False)]
        model.optimizer.lr = 1e-4
        r.hist_lstm.append(model.fit(x_rnn[:mx], y_rnn[:mx], batch_size=bs, nb_epoch=4,
                                     shuffle=False))
        r.model_lstm, r.mx = model, mx
    finally:
        quiet.__exit__(None, None, None)
    return r


def _decreased(hist):
    losses = hist.history["loss"]
    return losses[-1] < losses[0]


def test_corpus_comes_from_the_registry(lesson):
    assert lesson.corpus_length == 600893        # the lowercased mirror (SOURCES.md)


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _four_character_by_hand(model, ids):
    """The 4-character model (cells 8-23) in numpy from its weights: ``ids`` (3,) -> (V,)."""
    embeddings = [found[0].get_weights()[0] for found in input_checks.embedding_limits(model)]
    dense = {layer.activation: layer.get_weights() for layer in model.layers
             if type(layer).__name__ == "Dense"}
    (W_in, b_in), (W_h, b_h), (W_o, b_o) = dense["relu"], dense["tanh"], dense["softmax"]
    hidden = None
    for E, i in zip(embeddings, ids):
        c_dense = np.maximum(E[i] @ W_in + b_in, 0)
        hidden = c_dense if hidden is None else c_dense + np.tanh(hidden @ W_h + b_h)
    return _softmax(hidden @ W_o + b_o)


def _relu(z):
    return np.maximum(z, 0)


def _n_character_by_hand(model, ids, start=None):
    """The n-character models in numpy from their weights: cells 29-43 (``start`` None: the
    first character starts the hidden state) and 57-67 (``start``: the ``zeros`` input);
    ``ids`` (n,) -> the softmax after each character, (n, V)."""
    dense = [layer for layer in model.layers if type(layer).__name__ == "Dense"]
    out = next(layer for layer in dense if layer.activation == "softmax")
    hidden_layer = next(layer for layer in dense if layer.kernel_initializer == "identity")
    (W_in, b_in), = [layer.get_weights() for layer in dense
                     if layer not in (out, hidden_layer)]
    (W_h, b_h), (W_o, b_o) = hidden_layer.get_weights(), out.get_weights()
    hidden = None if start is None else _relu(start @ W_in + b_in)
    outs = []
    for n, i in enumerate(ids):
        c_dense = _relu(model.get_layer(f"c{n}_emb").get_weights()[0][i] @ W_in + b_in)
        hidden = c_dense if hidden is None else c_dense + _relu(hidden @ W_h + b_h)
        outs.append(_softmax(hidden @ W_o + b_o))
    return np.array(outs)


def _simple_rnn_by_hand(model, ids):
    """Embedding -> SimpleRNN(relu) -> [TimeDistributed] Dense softmax in numpy: (n, V)."""
    (E,), (W_x, W_h, b), (W_o, b_o) = (layer.get_weights() for layer in model.layers)
    h, outs = np.zeros(W_h.shape[0]), []
    for i in ids:
        h = _relu(E[i] @ W_x + b + h @ W_h)
        outs.append(_softmax(h @ W_o + b_o))
    return np.array(outs)


def test_four_character_model_trains_and_predicts(lesson):
    assert len(lesson.hist4.history["loss"]) == 4 and _decreased(lesson.hist4)
    # get_next's character is the most likely one of the model's weights computed by hand
    index = {c: i for i, c in enumerate(lesson.chars)}
    for text, got in zip(["phi", " th", " an"], lesson.next4):
        ids = [index[c] for c in text]
        want = _four_character_by_hand(lesson.model4, ids)
        p = lesson.model4.predict([np.array([i]) for i in ids])[0]
        np.testing.assert_allclose(p, want, rtol=1e-4, atol=1e-6)
        assert got == lesson.chars[int(np.argmax(want))]
    # 3 embeddings + dense_in + dense_hidden + dense_out, shared dense layers counted once
    v, f, h = lesson.vocab_size, 42, 256
    assert lesson.model4.count_params() == 3 * v * f + (f * h + h) + (h * h + h) + (h * v + v)


def test_n_character_model_shares_dense_in(lesson):
    assert len(lesson.histn.history["loss"]) == 12 and _decreased(lesson.histn)
    model = lesson.modeln
    # get_next's character is the argmax of the model computed by hand from its weights
    index = {c: i for i, c in enumerate(lesson.chars)}
    assert lesson.nextn == lesson.nextn_by_hand
    for text in ["for thos", "part of "]:
        ids = [index[c] for c in text]
        want = _n_character_by_hand(model, ids)[-1]
        p = model.predict([np.array([i]) for i in ids])[0]
        np.testing.assert_allclose(p, want, rtol=1e-4, atol=1e-6)
    assert sum(layer is lesson.dense_in_n for layer in model.layers) == 1
    assert len(lesson.dense_in_n._nodes) == 8             # applied to all 8 characters
    v, f, h = lesson.vocab_size, 42, 256
    assert model.count_params() == 8 * v * f + (f * h + h) + (h * h + h) + (h * v + v)


def test_sequential_simple_rnn_has_the_lessons_parameter_count(lesson):
    text = lesson.summary_rnn
    assert "Total params: 102,258" in text
    for count in ("3,612", "76,544", "22,102"):
        assert count in text
    assert "(None, 8, 42)" in text and "(None, 256)" in text and "(None, 86)" in text
    assert _decreased(lesson.hist_rnn)
    # get_next_keras's character is the argmax of the SimpleRNN computed by hand
    index = {c: i for i, c in enumerate(lesson.chars)}
    for text, got in zip(["this is ", "part of "], lesson.next_rnn):
        want = _simple_rnn_by_hand(lesson.model_rnn, [index[c] for c in text])[-1]
        p = lesson.model_rnn.predict(np.array([[index[c] for c in text]]))[0]
        np.testing.assert_allclose(p, want, rtol=1e-4, atol=1e-6)
        assert got == lesson.chars[int(np.argmax(want))]


def test_two_to_n_model_with_zeros_input(lesson):
    model = lesson.model2n
    assert len(model.inputs) == 9 and len(model.outputs) == 8
    assert model.input_names[0] == "zeros"
    assert _decreased(lesson.hist2n)
    # get_nexts: after each character, the argmax of the model computed by hand
    ids = [{c: i for i, c in enumerate(lesson.chars)}[c] for c in " this is"]
    want = _n_character_by_hand(model, ids, start=np.zeros(42))
    p = model.predict([np.zeros((1, 42))] + [np.array([i]) for i in ids])
    np.testing.assert_allclose(np.concatenate(p), want, rtol=1e-4, atol=1e-6)
    assert lesson.nexts2n == [lesson.chars[k] for k in np.argmax(want, axis=-1)]
    assert len(lesson.dense_out_2n._nodes) == 8


def test_return_sequences_time_distributed(lesson):
    assert "Total params: 102,258" in lesson.summary_seq
    assert "(None, 8, 256)" in lesson.summary_seq and "(None, 8, 86)" in lesson.summary_seq
    assert lesson.x_rnn.shape[1:] == (8,) and lesson.y_rnn.shape[1:] == (8, 1)
    assert _decreased(lesson.hist_seq)
    # get_nexts_keras: after each character, the argmax of the RNN computed by hand
    ids = [{c: i for i, c in enumerate(lesson.chars)}[c] for c in " this is"]
    want = _simple_rnn_by_hand(lesson.model_seq, ids)
    np.testing.assert_allclose(lesson.model_seq.predict(np.array([ids]))[0], want, rtol=1e-4,
                               atol=1e-6)
    assert lesson.nexts_seq == [lesson.chars[k] for k in np.argmax(want, axis=-1)]


def test_stateful_lstm_with_batch_normalization(lesson):
    model = lesson.model_lstm
    first, _ = lesson.hist_lstm
    assert np.isfinite(first.history["loss"]).all() and _decreased(first)
    assert model.optimizer.lr == pytest.approx(1e-4)
    # Embedding 86*42, BatchNormalization 4*42, LSTM 4*(256*(42+256)+256), Dense 256*86+86
    assert model.count_params() == 86 * 42 + 4 * 42 + 4 * (256 * 298 + 256) + 256 * 86 + 86
    assert len(model.non_trainable_weights) == 2          # moving mean and variance
    lstm = model.layers[2]
    state = np.asarray(lstm.states[0].get_value())
    assert state.shape == (64, 256) and np.abs(state).sum() > 0
    pred = model.predict(lesson.x_rnn[:lesson.mx])
    assert pred.shape == (lesson.mx, 8, 86)
    np.testing.assert_allclose(pred.sum(-1), 1.0, rtol=1e-4)
