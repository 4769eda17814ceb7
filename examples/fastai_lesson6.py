# ruff: noqa: UP010, SIM115, C414, C402  (the lesson's cells, as written)
"""fast.ai (2016) lesson 6, "Building RNNs": every Keras cell, with only the imports changed.

Seed: shared/seeds/004 (the lesson notebook, up to "Building an RNN in Theano").
The cells below are the lesson's, in order, as written (Python 2's ``xrange`` comes
in by import).  Lines marked ``# [scanrnn]`` are not the lesson's: they print the
lesson's figures beside ours and shorten the corpus under ``--quick``.

Figures to compare (the lesson's, on its cased corpus):
``Total params: 102,258`` for ``Sequential(Embedding, SimpleRNN, Dense)`` with
vocabulary 86; the 4-character model's loss 2.1662 after 4 epochs and its
``get_next('phi') -> 'l'``, ``' th' -> 'e'``, ``' an' -> 'd'``.

Our ``nietzsche.txt`` mirror is the lowercased edition: 57 distinct characters
(vocabulary 58 with the padding 0) instead of the lesson's 85 (86).  The lesson
itself sets ``vocab_size = 86`` before its Sequential models (cell 48), so their
parameter counts are the lesson's; the first models use the vocabulary of the text.

Run:  python examples/fastai_lesson6.py            (full lesson, several minutes on 2 cores)
      python examples/fastai_lesson6.py --quick    (each model on a few batches)

Measured (``SCANRNN_DATA=/work/shared/data python examples/fastai_lesson6.py``, JAX on 2
shared CPU cores, 1016 s): 4-character model loss 2.148 after 4 epochs (lesson 2.1662) and
``get_next`` 'l', 'e', 'd' (lesson 'l', 'e', 'd'); n-character model 1.803 after 12 epochs,
'for thos' -> ' ' (lesson 'e'), 'part of ' -> 't', 'queens a' -> 'n' (as the lesson);
SimpleRNN 1.577 after 8 epochs, 't', 't', 'n' (as the lesson); 2-to-n model
``get_nexts(' this is')`` 'thet sn ' (lesson 'thet sn '), ``' part of'`` 'tortiof '
(lesson 'tort of '); return_sequences model 1.690, 'then ms ' (lesson 'then ss ');
stateful LSTM 1.831 / 1.767 / 1.751 after 4 / 8 / 12 epochs.  Both Sequential
summaries print ``Total params: 102,258``.
"""

# ---- the imports: the only change to the lesson's cells --------------------------------------
from __future__ import division, print_function

import argparse  # [scanrnn]
import time  # [scanrnn]
from builtins import range as xrange  # the lesson is Python 2

import numpy as np

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

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])  # [scanrnn]
parser.add_argument("--quick", action="store_true",
                    help="a few batches per model (the corpus cut to 3,000 characters)")
args = parser.parse_args()  # [scanrnn]
QUICK_CHARS = 3000  # [scanrnn]
START = time.time()  # [scanrnn]


def beside(what, ours, lesson):  # [scanrnn]
    """Print one of our figures next to the lesson's."""
    print(f"  >> {what:<38} ours: {ours!r:<32} lesson: {lesson!r}", flush=True)


# In [3]
path = get_file('nietzsche.txt', origin="https://s3.amazonaws.com/text-datasets/nietzsche.txt")
text = open(path).read()
print('corpus length:', len(text))
beside("corpus length", len(text), 600901)  # [scanrnn] (ours counts UTF-8 characters)
if args.quick:  # [scanrnn]
    text = text[:QUICK_CHARS]

# In [4]
chars = sorted(list(set(text)))
vocab_size = len(chars)+1
print('total chars:', vocab_size)
beside("total chars (vocab incl. padding)", vocab_size, 86)  # [scanrnn] lowercased mirror

# In [5]
chars.insert(0, "\0")
# In [6]
char_indices = dict((c, i) for i, c in enumerate(chars))
indices_char = dict((i, c) for i, c in enumerate(chars))
# In [7]
idx = [char_indices[c] for c in text]

# ---- the 4-character model ---------------------------------------------------------------------
# In [8]
cs = 3
c1_dat = [idx[i] for i in xrange(0, len(idx)-1-cs, cs)]
c2_dat = [idx[i+1] for i in xrange(0, len(idx)-1-cs, cs)]
c3_dat = [idx[i+2] for i in xrange(0, len(idx)-1-cs, cs)]
c4_dat = [idx[i+3] for i in xrange(0, len(idx)-1-cs, cs)]
# In [9]
x1 = np.stack(c1_dat[:-2])
x2 = np.stack(c2_dat[:-2])
x3 = np.stack(c3_dat[:-2])
# In [10]
y = np.stack(c4_dat[:-2])
# In [11]
n_fac = 42


# In [12]
def embedding_input(name, n_in, n_out):
    inp = Input(shape=(1,), dtype='int64', name=name)
    emb = Embedding(n_in, n_out, input_length=1)(inp)
    return inp, Flatten()(emb)


# In [13]
c1_in, c1 = embedding_input('c1', vocab_size, n_fac)
c2_in, c2 = embedding_input('c2', vocab_size, n_fac)
c3_in, c3 = embedding_input('c3', vocab_size, n_fac)
# In [14]
n_hidden = 256
# In [15]
dense_in = Dense(n_hidden, activation='relu')
# In [16]
c1_hidden = dense_in(c1)
# In [17]
dense_hidden = Dense(n_hidden, activation='tanh')
# In [18]
c2_dense = dense_in(c2)
hidden_2 = dense_hidden(c1_hidden)
c2_hidden = merge([c2_dense, hidden_2])
# In [19]
c3_dense = dense_in(c3)
hidden_3 = dense_hidden(c2_hidden)
c3_hidden = merge([c3_dense, hidden_3])
# In [20]
dense_out = Dense(vocab_size, activation='softmax')
# In [21]
c4_out = dense_out(c3_hidden)
# In [22]
model = Model([c1_in, c2_in, c3_in], c4_out)
# In [23]
model.compile(loss='sparse_categorical_crossentropy', optimizer=Adam())
# In [24]
hist = model.fit([x1, x2, x3], y, batch_size=64, nb_epoch=4)
beside("4-char model loss after 4 epochs", round(hist.history['loss'][-1], 4), 2.1662)


# In [25]
def get_next(inp):
    idxs = [char_indices[c] for c in inp]
    arrs = [np.array(i)[np.newaxis] for i in idxs]
    p = model.predict(arrs)
    i = np.argmax(p)
    return chars[i]


# In [26], [27], [28]
beside("get_next('phi')", get_next('phi'), 'l')
beside("get_next(' th')", get_next(' th'), 'e')
beside("get_next(' an')", get_next(' an'), 'd')

# ---- the n-character model ---------------------------------------------------------------------
# In [29]
cs = 8
# In [30]
c_in_dat = [[idx[i+n] for i in xrange(0, len(idx)-1-cs, cs)]
            for n in range(cs)]
# In [31]
c_out_dat = [idx[i+cs] for i in xrange(0, len(idx)-1-cs, cs)]
# In [32]
xs = [np.stack(c[:-2]) for c in c_in_dat]
# In [33]
y = np.stack(c_out_dat[:-2])
# In [34]
n_fac = 42


# In [35]
def embedding_input(name, n_in, n_out):
    inp = Input(shape=(1,), dtype='int64', name=name+'_in')
    emb = Embedding(n_in, n_out, input_length=1, name=name+'_emb')(inp)
    return inp, Flatten()(emb)


# In [36]
c_ins = [embedding_input('c'+str(n), vocab_size, n_fac) for n in range(cs)]
# In [37]
n_hidden = 256
# In [38]
dense_in = Dense(n_hidden, activation='relu')
dense_hidden = Dense(n_hidden, activation='relu', init='identity')
dense_out = Dense(vocab_size, activation='softmax')
# In [39]
hidden = dense_in(c_ins[0][1])
# In [40]
for i in range(1, cs):
    c_dense = dense_in(c_ins[i][1])
    hidden = dense_hidden(hidden)
    hidden = merge([c_dense, hidden])
# In [41]
c_out = dense_out(hidden)
# In [42]
model = Model([c[0] for c in c_ins], c_out)
model.compile(loss='sparse_categorical_crossentropy', optimizer=Adam())
# In [43]
hist = model.fit(xs, y, batch_size=64, nb_epoch=12)
beside("n-char model loss after 12 epochs", round(hist.history['loss'][-1], 4), "not shown")


# In [44]
def get_next(inp):
    idxs = [np.array(char_indices[c])[np.newaxis] for c in inp]
    p = model.predict(idxs)
    return chars[np.argmax(p)]


# In [45], [46], [47]
beside("get_next('for thos')", get_next('for thos'), 'e')
beside("get_next('part of ')", get_next('part of '), 't')
beside("get_next('queens a')", get_next('queens a'), 'n')

# ---- the same model with Keras's SimpleRNN -----------------------------------------------------
# In [48]
n_hidden, n_fac, cs, vocab_size = (256, 42, 8, 86)
# In [49]
model = Sequential([
        Embedding(vocab_size, n_fac, input_length=cs),
        SimpleRNN(n_hidden, activation='relu', inner_init='identity'),
        Dense(vocab_size, activation='softmax')
    ])
# In [50]
model.summary()
beside("Total params", model.count_params(), 102258)  # [scanrnn]
# In [51]
model.compile(loss='sparse_categorical_crossentropy', optimizer=Adam())
# In [52]
hist = model.fit(np.concatenate(xs, axis=1), y, batch_size=64, nb_epoch=8)
beside("SimpleRNN loss after 8 epochs", round(hist.history['loss'][-1], 4), "not shown")


# In [53]
def get_next_keras(inp):
    idxs = [char_indices[c] for c in inp]
    arrs = np.array(idxs)[np.newaxis, :]
    p = model.predict(arrs)[0]
    return chars[np.argmax(p)]


# In [54], [55], [56]
beside("get_next_keras('this is ')", get_next_keras('this is '), 't')
beside("get_next_keras('part of ')", get_next_keras('part of '), 't')
beside("get_next_keras('queens a')", get_next_keras('queens a'), 'n')

# ---- the 2-to-n sequence model -----------------------------------------------------------------
# In [57]
c_out_dat = [[idx[i+n] for i in xrange(1, len(idx)-cs, cs)]
             for n in range(cs)]
# In [58]
ys = [np.stack(c[:-2]) for c in c_out_dat]
# In [59]
dense_in = Dense(n_hidden, activation='relu')
dense_hidden = Dense(n_hidden, activation='relu', init='identity')
dense_out = Dense(vocab_size, activation='softmax', name='output')
# In [60]
inp1 = Input(shape=(n_fac,), name='zeros')
hidden = dense_in(inp1)
# In [61]
outs = []

for i in range(cs):
    c_dense = dense_in(c_ins[i][1])
    hidden = dense_hidden(hidden)
    hidden = merge([c_dense, hidden], mode='sum')
    # every layer now has an output
    outs.append(dense_out(hidden))
# In [62]
model = Model([inp1] + [c[0] for c in c_ins], outs)
model.compile(loss='sparse_categorical_crossentropy', optimizer=Adam())
# In [63]
zeros = np.tile(np.zeros(n_fac), (len(xs[0]), 1))
# In [64]
hist = model.fit([zeros]+xs, ys, batch_size=64, nb_epoch=12)
beside("2-to-n model loss after 12 epochs", round(hist.history['loss'][-1], 4), "not shown")


# In [65]
def get_nexts(inp):
    idxs = [char_indices[c] for c in inp]
    arrs = [np.array(i)[np.newaxis] for i in idxs]
    p = model.predict([np.zeros(n_fac)[np.newaxis, :]] + arrs)
    print(list(inp))
    return [chars[np.argmax(o)] for o in p]


# In [66], [67]
beside("get_nexts(' this is')", "".join(get_nexts(' this is')), "thet sn ")
beside("get_nexts(' part of')", "".join(get_nexts(' part of')), "tort of ")

# In [68]
model = Sequential([
        Embedding(vocab_size, n_fac, input_length=cs),
        SimpleRNN(n_hidden, return_sequences=True, activation='relu', inner_init='identity'),
        TimeDistributed(Dense(vocab_size, activation='softmax')),
    ])
# In [69]
model.summary()
beside("Total params", model.count_params(), 102258)  # [scanrnn]
# In [70]
model.compile(loss='sparse_categorical_crossentropy', optimizer=Adam())
# In [71]
x_rnn = np.stack(np.squeeze(xs), axis=1)
y_rnn = np.atleast_3d(np.stack(ys, axis=1))
# In [72]
hist = model.fit(x_rnn, y_rnn, batch_size=64, nb_epoch=8)
beside("return_sequences loss after 8 epochs", round(hist.history['loss'][-1], 4), "not shown")


# In [73]
def get_nexts_keras(inp):
    idxs = [char_indices[c] for c in inp]
    arr = np.array(idxs)[np.newaxis, :]
    p = model.predict(arr)[0]
    print(list(inp))
    return [chars[np.argmax(o)] for o in p]


# In [74]
beside("get_nexts_keras(' this is')", "".join(get_nexts_keras(' this is')), "then ss ")

# ---- the stateful model --------------------------------------------------------------------------
# In [75]
bs = 64
# In [76]
model = Sequential([
        Embedding(vocab_size, n_fac, input_length=cs, batch_input_shape=(bs, 8)),
        BatchNormalization(),
        LSTM(n_hidden, return_sequences=True, stateful=True),
        TimeDistributed(Dense(vocab_size, activation='softmax')),
    ])
# In [77]
model.compile(loss='sparse_categorical_crossentropy', optimizer=Adam())
# In [78]
mx = len(x_rnn)//bs*bs
# In [79]
hist = model.fit(x_rnn[:mx], y_rnn[:mx], batch_size=bs, nb_epoch=4, shuffle=False)
beside("stateful LSTM loss, epochs 1-4", round(hist.history['loss'][-1], 4), "not shown")
# In [80]
model.optimizer.lr = 1e-4
# In [81]
hist = model.fit(x_rnn[:mx], y_rnn[:mx], batch_size=bs, nb_epoch=4, shuffle=False)
beside("stateful LSTM loss, epochs 5-8", round(hist.history['loss'][-1], 4), "not shown")
# In [344]
hist = model.fit(x_rnn[:mx], y_rnn[:mx], batch_size=bs, nb_epoch=4, shuffle=False)
beside("stateful LSTM loss, epochs 9-12", round(hist.history['loss'][-1], 4), "not shown")

print(f"done in {time.time() - START:.0f} s" + (" (--quick)" if args.quick else ""))  # [scanrnn]
