"""Seed 003's sequence model: a noisy sine, 1-step and k-step-ahead predictions.

``x_t = sin(0.01 t) + N(0, 0.2^2)`` for t = 1..1000; features are the previous tau = 4 values,
the first 600 windows train, the rest validate. The seed fits an MLP (4 -> 32 -> 1, Adam,
10 epochs, batch 20); here an RNN regressor reads the 4 values as a sequence (a GRU cell from
scanrnn.cells, unrolled with scanrnn.unroll, a dense output, mean squared error, Adam from
scanrnn.optim, compiled with scanrnn.function) and then predicts k = 1, 4, 16, 64 steps
ahead by feeding its own predictions back, as the seed does.

The seed's "valid_loss" (about 1.16 after 10 epochs) sums squared errors over batches of
20, i.e. 20 x the mean squared error: 0.058 per point. The noise alone gives 0.04.

    python examples/sine_wave.py            # 10 epochs
    python examples/sine_wave.py --quick
"""

import argparse
import time

import numpy as np
import pytensor.tensor as pt

import scanrnn
from scanrnn.cells import make_cell
from scanrnn.losses import mean_squared_error
from scanrnn.optim import adam

SEED_VALID_LOSS = 1.1640   # epoch 7 of the seed's run (batch 20 x MSE); epoch 10: 1.258
T, TAU, N_TRAIN, MAX_STEPS, BATCH = 1000, 4, 600, 64, 20


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs, args.hidden = 3, 8
    rng = np.random.default_rng(0)
    t = np.arange(1, T + 1, dtype=np.float32)
    x = (np.sin(0.01 * t) + rng.normal(0, 0.2, T)).astype(np.float32)
    features = np.stack([x[i:T - TAU + i] for i in range(TAU)], axis=1)   # (996, 4)
    labels = x[TAU:]

    # the model: (tau, N, 1) time-major windows -> GRU -> last state -> dense -> (N,)
    cell = make_cell("gru", 1, args.hidden, name="gru")
    params = cell.init_params(rng)
    W = scanrnn.init.glorot_uniform((args.hidden, 1), name="out.W", rng=rng)
    b = scanrnn.init.zeros((1,), name="out.b")
    weights = [*params.values(), W, b]
    window = pt.matrix("window")                          # (N, tau)
    target = pt.vector("target")                          # (N,)
    h_last, _ = scanrnn.unroll(cell, window.T[:, :, None], params, return_sequences=False)
    prediction = (pt.dot(h_last, W) + b)[:, 0]
    loss = mean_squared_error(prediction, target)
    train = scanrnn.function([window, target], loss, updates=adam(loss, weights, 0.01),
                             backend=args.backend, name="train")
    predict = scanrnn.function([window], prediction, backend=args.backend, name="predict")

    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(N_TRAIN)
        losses = [float(train(features[idx], labels[idx]))
                  for idx in order.reshape(-1, BATCH)]
        valid = float(np.mean((predict(features[N_TRAIN:]) - labels[N_TRAIN:]) ** 2))
        print(f"epoch {epoch:>2}: train MSE {np.mean(losses):.4f}, valid MSE {valid:.4f} "
              f"(seed's units: {BATCH * valid:.3f})")
    print(f"valid MSE per point: ours {valid:.4f} | seed (MLP) {SEED_VALID_LOSS / BATCH:.4f} "
          f"| noise floor {0.2 ** 2:.4f}; {time.perf_counter() - start:.1f} s")

    # k-step-ahead predictions over the whole series, feeding predictions back (the seed's
    # `features` matrix: column tau + k - 1 holds the k-step-ahead predictions)
    n = T - TAU - MAX_STEPS + 1
    grid = np.zeros((n, TAU + MAX_STEPS), np.float32)
    for i in range(TAU):
        grid[:, i] = x[i:i + n]
    for i in range(TAU, TAU + MAX_STEPS):
        grid[:, i] = predict(grid[:, i - TAU:i])
    for k in (1, 4, 16, 64):
        truth = x[TAU + k - 1:T - MAX_STEPS + k]
        print(f"{k:>2}-step-ahead MSE: {np.mean((grid[:, TAU + k - 1] - truth) ** 2):.4f}")
    # the seed's "multistep" line: from time n_train + tau on, only predictions are fed back
    multi = x.copy()
    for i in range(N_TRAIN + TAU, T):
        multi[i] = predict(multi[None, i - TAU:i])[0]
    free_mse = np.mean((multi - x)[N_TRAIN + TAU:] ** 2)
    tail = multi[N_TRAIN + TAU:]
    print(f"free-running from t={N_TRAIN + TAU}: MSE {free_mse:.4f}, predictions in "
          f"[{tail.min():.2f}, {tail.max():.2f}] (errors compound when predictions are fed "
          f"back; the seed's MLP settles to a constant)")


if __name__ == "__main__":
    main()
