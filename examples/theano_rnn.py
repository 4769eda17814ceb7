"""The fast.ai lesson's "Building an RNN in Theano", ported to PyTensor — twice.

Part 1 is the seed's program line for line in spirit: one-hot inputs and targets,
a ``step`` with relu and softmax, ``scan(step, sequences=..., outputs_info=[h0,
None], non_sequences=w_all)``, summed categorical cross-entropy, ``grad``, the
``upd_dict`` SGD update, one compiled ``fn`` called once per 8-character
sequence, the mean error printed every 1,000 sequences, then ``f_y``'s
predicted characters.  Part 2 is the same model written with scanrnn's pieces.

    python examples/theano_rnn.py            # one pass over 75,110 sequences, both parts
    python examples/theano_rnn.py --quick    # a few seconds

Seed figures (its corpus kept upper case: vocabulary 86): error per sequence
falling from about 25 to about 14.5 over one pass at lr 0.01.  Our mirror of
nietzsche.txt is lowercased (vocabulary 58 with the padding character), so the
curve starts lower; the shape is what to compare.
"""

import argparse
import math
import time
from itertools import chain

import numpy as np
import pytensor.tensor as T  # the seed's `import theano.tensor as T`
from numpy.random import normal

import scanrnn
from scanrnn import data
from scanrnn.init import shared

SEED_ERRORS = [25.158, 21.460, 20.904, 19.906, 18.812, 19.281, 19.061, 18.505, 17.926, 18.193]
SEED_LAST = [14.677, 14.297, 14.682, 15.249, 14.802, 15.153, 14.698, 14.446, 14.519, 14.449]


def load_sequences(cs=8):
    """The seed's arrays: (N, cs) input and target ids, and the sorted vocabulary."""
    text = data.load_corpus("nietzsche")
    vocab = data.Vocab(text, pad="\0", unk=None, order="sorted")
    xs, ys = data.char_ngrams(vocab.encode(text), cs, targets="sequence")
    return xs, ys, vocab


def to_categorical(ids, n):
    return np.eye(n, dtype=np.float32)[ids]


def part1_theano(xs, ys, vocab_size, n_hidden, l_rate, backend, report_every):
    """The seed's cells In [82]-[99], with `theano` replaced by PyTensor + scanrnn.scan."""
    n_input = vocab_size
    n_output = vocab_size

    def init_wgts(rows, cols):
        scale = math.sqrt(2 / rows)
        return shared(normal(scale=scale, size=(rows, cols)).astype(np.float32))

    def init_bias(rows):
        return shared(np.zeros(rows, dtype=np.float32))

    def wgts_and_bias(n_in, n_out):
        return init_wgts(n_in, n_out), init_bias(n_out)

    def id_and_bias(n):
        return shared(np.eye(n, dtype=np.float32)), init_bias(n)

    t_inp = T.matrix("inp")
    t_outp = T.matrix("outp")
    t_h0 = T.vector("h0")
    lr = T.scalar("lr")
    all_args = [t_h0, t_inp, t_outp, lr]

    W_h = id_and_bias(n_hidden)
    W_x = wgts_and_bias(n_input, n_hidden)
    W_y = wgts_and_bias(n_hidden, n_output)
    w_all = list(chain.from_iterable([W_h, W_x, W_y]))

    def step(x, h, W_h, b_h, W_x, b_x, W_y, b_y):
        h = T.maximum(T.dot(x, W_x) + b_x + T.dot(h, W_h) + b_h, 0)   # nnet.relu
        y = T.special.softmax(T.dot(h, W_y) + b_y, axis=-1)            # nnet.softmax
        return h, y

    [v_h, v_y] = scanrnn.scan(step, sequences=t_inp, outputs_info=[t_h0, None],
                              non_sequences=w_all, name="theano_rnn")
    error = scanrnn.losses.categorical_crossentropy(v_y, t_outp).sum()
    g_all = T.grad(error, w_all)

    def upd_dict(wgts, grads, lr):
        return {w: w - g * lr for (w, g) in zip(wgts, grads)}

    upd = upd_dict(w_all, g_all, lr)
    fn = scanrnn.function(all_args, error, updates=upd, backend=backend)

    X = to_categorical(xs, vocab_size)
    Y = to_categorical(ys, vocab_size)
    print(f"X.shape, Y.shape = {X.shape}, {Y.shape}")
    errors = []
    err = 0.0
    start = time.perf_counter()
    for i in range(len(X)):
        err += fn(np.zeros(n_hidden), X[i], Y[i], l_rate)
        if i % report_every == report_every - 1:
            errors.append(err / report_every)
            print(f"Error:{err / report_every:.3f}")
            err = 0.0
    elapsed = time.perf_counter() - start
    f_y = scanrnn.function([t_h0, t_inp], v_y, backend=backend)
    return errors, elapsed, f_y, X


def part2_library(xs, ys, vocab_size, n_hidden, l_rate, backend, report_every, batch_size):
    """The same model with scanrnn's pieces: a cell, unroll, a loss, an update rule."""
    cell = scanrnn.cells.RNNCell(vocab_size, n_hidden, name="rnn", activation="relu",
                                 kernel_init="he_normal", recurrent_init="identity")
    params = cell.init_params(rng=0)
    W_y = scanrnn.init.he_normal((n_hidden, vocab_size), name="W_y")
    b_y = scanrnn.init.zeros(vocab_size, name="b_y")
    x = T.tensor("x", shape=(xs.shape[1], batch_size), dtype="int32")   # (T, B) ids
    y = T.tensor("y", shape=(xs.shape[1], batch_size), dtype="int32")
    hs, _ = scanrnn.unroll(cell, x, params)
    error = scanrnn.losses.cross_entropy(T.dot(hs, W_y) + b_y, y, reduction="sum") / batch_size
    updates = scanrnn.optim.sgd(error, [*params.values(), W_y, b_y], l_rate)
    fn = scanrnn.function([x, y], error, updates=updates, backend=backend)

    errors, err, seen = [], 0.0, 0
    start = time.perf_counter()
    for i in range(0, len(xs) - batch_size + 1, batch_size):
        err += fn(xs[i:i + batch_size].T, ys[i:i + batch_size].T) * batch_size
        seen += batch_size
        if seen % report_every < batch_size:
            errors.append(err / seen)
            print(f"Error:{err / seen:.3f}")
            err, seen = 0.0, 0
    return errors, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3,000 sequences, a few seconds")
    parser.add_argument("--sequences", type=int, default=None,
                        help="how many sequences to train on (default: all 75,110)")
    parser.add_argument("--hidden", type=int, default=256, help="n_hidden (default 256)")
    parser.add_argument("--lr", type=float, default=0.01, help="l_rate (default 0.01)")
    parser.add_argument("--backend", default="auto", help="auto, jax, numba, c or python")
    parser.add_argument("--batch-size", type=int, default=1,
                        help="part 2's batch size (default 1, as the seed)")
    args = parser.parse_args(argv)
    n = args.sequences or (3000 if args.quick else None)
    report_every = 1000

    xs, ys, vocab = load_sequences()
    xs, ys = xs[:n], ys[:n]
    print(f"vocab_size = {len(vocab)} (seed: 86), sequences = {len(xs):,} (seed: 75,110)")

    print("\n== Part 1: the seed's Theano program on PyTensor ==")
    errors, elapsed, f_y, X = part1_theano(xs, ys, len(vocab), args.hidden, args.lr,
                                           args.backend, report_every)
    print(f"{len(xs):,} sequences in {elapsed:.1f} s ({len(xs) / elapsed:,.0f} sequences/s)")
    act = np.argmax(X[6], axis=1)
    pred = np.argmax(f_y(np.zeros(args.hidden), X[6]), axis=1)
    print("input:    ", [vocab.idx_to_token[o] for o in act])
    print("predicted:", [vocab.idx_to_token[o] for o in pred])

    print("\n== Part 2: the same model with scanrnn's cells, unroll, losses and optim ==")
    errors2, elapsed2 = part2_library(xs, ys, len(vocab), args.hidden, args.lr, args.backend,
                                      report_every, args.batch_size)
    print(f"{len(xs):,} sequences in {elapsed2:.1f} s")

    print("\n== Mean error per 8-character sequence, every 1,000 sequences ==")
    print(f"{'':>8} {'seed':>8} {'part 1':>8} {'part 2':>8}")
    rows = max(len(errors), len(errors2))
    seed = SEED_ERRORS + [None] * 55 + SEED_LAST
    for k in range(rows):
        cells = [seed[k] if k < len(seed) else None,
                 errors[k] if k < len(errors) else None,
                 errors2[k] if k < len(errors2) else None]
        print(f"{(k + 1) * 1000:>8,} " + " ".join(f"{c:8.3f}" if c is not None else f"{'':>8}"
                                               for c in cells))
    return errors, errors2


if __name__ == "__main__":
    main()
