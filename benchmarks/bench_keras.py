"""Tokens/s of ``model.fit`` against the bare compiled training step of the same model.

    SCANRNN_DATA=/work/shared/data python benchmarks/bench_keras.py
    python benchmarks/bench_keras.py --models rnn --batches 200 --repeats 5 --write

For each of the fast.ai lesson's Keras models (on nietzsche.txt, vocabulary 86,
``cs=8``, batch 64): the bare step is ``model.train_function()`` called in a
Python loop over pre-sliced int32 batches (the result read back once at the
end); ``fit`` is ``model.fit(x, y, batch_size=64, epochs=1, shuffle=...)`` on
the same samples, which includes its per-epoch shuffle copy, per-batch slicing,
argument checks, loss bookkeeping and (``verbose=1``) the progress bar.  Both
run after a warm-up that compiles the function.  Reports the median of
``--repeats`` timings; ``--write`` writes benchmarks/RESULTS_keras.md with the
command.  Target: fit within 10% of the bare step.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).with_name("RESULTS_keras.md")
VOCAB, N_FAC, N_HIDDEN, CS, BS = 86, 42, 256, 8, 64


def lesson_data(n_samples):
    """The lesson's x_rnn / y_rnn (cells 30, 57, 71) from nietzsche.txt."""
    from scanrnn.keras.utils import get_file
    with open(get_file("nietzsche.txt"), encoding="utf-8") as f:
        text = f.read()
    chars = ["\0"] + sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    ids = np.array([index[c] for c in text[:(n_samples + 1) * CS + 1]], dtype=np.int32)
    starts = np.arange(0, n_samples * CS, CS)
    x = ids[starts[:, None] + np.arange(CS)]
    y = ids[starts[:, None] + np.arange(CS) + 1]
    return x, y


def build(kind):
    from scanrnn.keras import (
        LSTM,
        Adam,
        BatchNormalization,
        Dense,
        Embedding,
        Sequential,
        SimpleRNN,
        TimeDistributed,
    )
    if kind == "rnn":
        model = Sequential([Embedding(VOCAB, N_FAC, input_length=CS),
                            SimpleRNN(N_HIDDEN, activation="relu", inner_init="identity"),
                            Dense(VOCAB, activation="softmax")])
    elif kind == "rnn_seq":
        model = Sequential([Embedding(VOCAB, N_FAC, input_length=CS),
                            SimpleRNN(N_HIDDEN, return_sequences=True, activation="relu",
                                      inner_init="identity"),
                            TimeDistributed(Dense(VOCAB, activation="softmax"))])
    elif kind == "lstm_seq":
        model = Sequential([Embedding(VOCAB, N_FAC, input_length=CS),
                            LSTM(N_HIDDEN, return_sequences=True),
                            TimeDistributed(Dense(VOCAB, activation="softmax"))])
    elif kind == "lstm_stateful":
        model = Sequential([Embedding(VOCAB, N_FAC, input_length=CS, batch_input_shape=(BS, CS)),
                            BatchNormalization(),
                            LSTM(N_HIDDEN, return_sequences=True, stateful=True),
                            TimeDistributed(Dense(VOCAB, activation="softmax"))])
    else:
        raise ValueError(kind)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=Adam())
    return model


MODELS = {
    "rnn": "Embedding-SimpleRNN(256)-Dense (cell 49), last char",
    "rnn_seq": "Embedding-SimpleRNN(256, seq)-TimeDistributed(Dense) (cell 68)",
    "lstm_stateful": "Embedding-BN-LSTM(256, stateful)-TimeDistributed(Dense) (cell 76)",
    "lstm_seq": "Embedding-LSTM(256, seq)-TimeDistributed(Dense); core: the same in scanrnn",
}


def core_step(model, batches):
    """The bare scanrnn core step of ``model`` (Embedding-LSTM-Dense, sparse cross-entropy,
    Adam): ``scanrnn.cells`` + ``unroll`` + ``losses.cross_entropy`` + ``optim.adam`` on
    time-major ``(T, B)`` ids, its own copies of the model's initial weights.  Returns a
    function running one pass over ``batches`` (pre-transposed outside the timer)."""
    import pytensor.tensor as pt

    import scanrnn
    from scanrnn import cells, losses, optim
    from scanrnn.recurrent import unroll

    embed, lstm, dense = (layer.get_weights() for layer in model.layers)
    x = pt.tensor("x", shape=(CS, BS), dtype="int32")
    y = pt.tensor("y", shape=(CS, BS), dtype="int32")
    E = scanrnn.init.shared(embed[0], name="core.E")
    cell = cells.make_cell("lstm", N_FAC, N_HIDDEN, name="core.lstm")
    p = {k: scanrnn.init.shared(v, name=f"core.{k}") for k, v in zip(("W_x", "W_h", "b"), lstm)}
    W_y, b_y = (scanrnn.init.shared(v, name=f"core.{k}") for k, v in zip(("W_y", "b_y"), dense))
    h, _ = unroll(cell, E[x], p)
    loss = losses.cross_entropy(pt.dot(h, W_y) + b_y, y)
    params = [E, *p.values(), W_y, b_y]
    fn = scanrnn.function([x, y], loss, updates=optim.adam(loss, params, 1e-3, epsilon=1e-7),
                          backend="jax", return_numpy=False)
    tm = [(np.ascontiguousarray(bx.T), np.ascontiguousarray(by.T)) for bx, by, *_ in batches]

    def run():
        out = None
        for bx, by in tm:
            out = fn(bx, by)
        np.asarray(out)
    return run



def measure(kind, n_batches, repeats):
    model = build(kind)
    x, y = lesson_data(n_batches * BS)
    if kind == "rnn":
        y = y[:, -1]
    shuffle = kind != "lstm_stateful"
    xs, ys = model._standardize_x(x), model._weighted_targets(y)   # targets, then weights
    fn = model.train_function()
    batches = [[a[i * BS:(i + 1) * BS] for a in xs + ys] for i in range(n_batches)]

    def bare():
        out = None
        for args in batches:
            out = fn(*args)
        np.asarray(out[0])

    def fit(verbose):
        def run():
            with redirect_stdout(io.StringIO()):
                model.fit(x, y, batch_size=BS, epochs=1, verbose=verbose, shuffle=shuffle)
        return run

    t0 = time.perf_counter()
    model.fit(x[:BS], y[:BS], batch_size=BS, epochs=1, verbose=0, shuffle=False)
    compile_s = time.perf_counter() - t0
    runs = {"bare step": bare, "fit verbose=0": fit(0), "fit verbose=1": fit(1)}
    if kind == "lstm_seq":
        runs = {"bare step": core_step(model, batches), "keras step": bare,
                "fit verbose=0": fit(0)}
    for run in runs.values():
        run()
    times = {name: [] for name in runs}
    cpu = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            t, c = time.perf_counter(), time.process_time()
            run()
            times[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    tokens = n_batches * BS * CS
    rates = {name: tokens / statistics.median(ts) for name, ts in times.items()}
    # paired ratios (each fit against the bare run just before it) resist the load of other jobs
    ratios = {name: statistics.median(b / f for b, f in zip(times["bare step"], ts))
              for name, ts in times.items()}
    # CPU seconds this process used: insensitive to time lost waiting for other jobs
    cpu_ratios = {name: statistics.median(cpu["bare step"]) / statistics.median(cs)
                  for name, cs in cpu.items()}
    best = {name: tokens / min(ts) for name, ts in times.items()}
    return compile_s, rates, ratios, best, cpu_ratios


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    import jax
    import pytensor

    import scanrnn
    rows, core_rows = [], []
    for kind in args.models.split(","):
        compile_s, rates, ratios, best, cpu_ratios = measure(kind, args.batches, args.repeats)
        cells = [f"{rates[name]:,.0f} (best {best[name]:,.0f})" +
                 ("" if name == "bare step" else
                  f"; {ratios[name]:.2f}x wall, {cpu_ratios[name]:.2f}x CPU")
                 for name in rates]
        line = f"| {MODELS[kind]} | " + " | ".join(cells) + f" | {compile_s:.1f} |"
        print(line, flush=True)
        (core_rows if kind == "lstm_seq" else rows).append(line)
    command = "python benchmarks/bench_keras.py " + " ".join(argv if argv is not None
                                                              else sys.argv[1:])
    tables = []
    if rows:
        tables.append("\n".join([
            ("| model (batch 64, 8 steps, Adam, JAX) | bare step tokens/s | fit verbose=0 "
             "tokens/s; fit/bare | fit verbose=1 tokens/s; fit/bare | first fit s (compile) |"),
            "|---|---|---|---|---|", *rows]))
    if core_rows:
        tables.append("\n".join([
            ("| model (batch 64, 8 steps, Adam, JAX) | core step tokens/s | keras "
             "train_function step tokens/s; keras/core | fit verbose=0 tokens/s; fit/core | "
             "first fit s (compile) |"),
            "|---|---|---|---|---|", *core_rows]))
    table = "\n\n".join(tables)
    print(table)
    if args.write:
        RESULTS.write_text(
            "# scanrnn.keras: fit vs the bare compiled step\n\n"
            f"Command: `SCANRNN_DATA=/work/shared/data {command.strip()}`\n\n"
            f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
            f"(shared with other jobs: timings are noisy); Python {platform.python_version()}, "
            f"pytensor {pytensor.__version__}, jax {jax.__version__} "
            f"({jax.devices()[0].platform}), scanrnn {scanrnn.__version__}. Median of "
            f"{args.repeats} runs of {args.batches} batches each (best run in brackets); tokens = "
            f"batch x 8 steps; fit/bare (throughput) is the median of the ratios of back-to-back "
            f"runs in wall time, and the ratio of median CPU seconds used by this process "
            f"(which time lost to other jobs does not inflate).\n\n"
            + table + "\n\nThe bare step is `model.train_function()` called in a Python loop on "
            "pre-sliced batches; fit adds the epoch's shuffle copy, batch slicing, argument "
            "checks, loss bookkeeping and the progress bar (verbose=1, output not a terminal: "
            "one line per epoch).  The core step (second table) is the same model written "
            "with the scanrnn core (cells, unroll, losses.cross_entropy, optim.adam) on "
            "time-major batches transposed outside the timer.\n")
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
