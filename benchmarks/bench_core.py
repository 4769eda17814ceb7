"""Tokens/s of one training step (forward + backward + clipped SGD update), side by side.

    python benchmarks/bench_core.py                     # all configs, every peer installed
    python benchmarks/bench_core.py --configs rnn --backends jax,numba --repeats 7
    python benchmarks/bench_core.py --configs lm --host-devices 2   # + the batch split over 2
    python benchmarks/bench_core.py --configs lm,lstm2 --cold 3     # cold compile, fresh processes

Runs in ONE process, for each config: scanrnn on each requested backend (on JAX
as ``scanrnn.function`` compiles it by default -- on the CPU the fused scans, on a GPU
cuDNN -- and as the row "scanrnn jax, vendor kernels": the recurrences forced onto oneDNN /
cuDNN, scanrnn.kernels, ``kernels=True``), a hand-written ``jax.lax.scan`` + ``jax.jit``
step, Keras 3 on JAX, and PyTorch on the CPU (from-scratch loop and
``nn.RNN``/``nn.GRU``/``nn.LSTM``; on a machine with a GPU, JAX, Keras and PyTorch all run
there, PyTorch's RNNs on cuDNN).
Config ``lm`` is the default ``scanrnn train`` model (the trainer's own step graph, Adam)
against the same model in Keras 3 and PyTorch.
Peers that are not installed are skipped.  Every timer stops after the result is on the host
(JAX dispatches asynchronously).  Reports the median of ``--repeats`` timings of
``--steps`` steps each -- the implementations are timed round-robin, so a change
of load on a shared machine hits all of them alike -- and ratios against the
peers; ``--write`` appends the table to benchmarks/RESULTS.md with the command.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402


@dataclass
class Config:
    name: str
    cell: str
    vocab: int
    hidden: int
    batch: int
    steps: int
    layers: int = 1
    lr: float = 1.0
    clip: float = 1.0


CONFIGS = {
    "rnn": Config("tanh RNN, H 512, B 32, T 35", "rnn", 28, 512, 32, 35),
    "lstm": Config("LSTM, H 256, B 32, T 64", "lstm", 28, 256, 32, 64),
    "lstm2": Config("2-layer LSTM, H 512, B 64, T 64", "lstm", 28, 512, 64, 64, layers=2),
    "gru": Config("GRU, H 256, B 32, T 64", "gru", 28, 256, 32, 64),
    # the default `scanrnn train` model: embedding 64, 2 x LSTM 256, dropout 0.3 between the
    # layers and before the output, Adam (lr 5e-3), clip 1.0, vocabulary 66, B 32, T 64
    "lm": Config("default train model: emb 64, 2×LSTM 256, dropout 0.3, Adam, V 66, B 32, T 64",
                 "lm", 66, 256, 32, 64, layers=2, lr=5e-3),
}
EMBED, DROPOUT = 64, 0.3  # the "lm" config's embedding width and dropout rate


def batch(cfg, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, cfg.vocab, size=(cfg.steps, cfg.batch)).astype(np.int32)
    return x, np.roll(x, -1, axis=0)


# -- scanrnn ---------------------------------------------------------------------

def scanrnn_train_function(cfg, backend, fused=None, kernels="auto", devices=None):
    """The compiled training step of ``cfg`` (a ``scanrnn.Function``) and a batch ``(X, Y)``.

    ``kernels``: as :func:`scanrnn.function` (``"auto"``: its default; ``True``: the
    recurrences on oneDNN / cuDNN, scanrnn.kernels).  ``devices``: the step data parallel
    over that many devices, the batch split (``scanrnn train``'s default on a CPU: one
    host device per core).
    """
    import pytensor.tensor as pt

    import scanrnn
    from scanrnn import cells, losses, optim
    from scanrnn.recurrent import unroll

    x = pt.tensor("x", shape=(cfg.steps, cfg.batch), dtype="int32")
    y = pt.tensor("y", shape=(cfg.steps, cfg.batch), dtype="int32")
    if cfg.cell == "lm":  # the trainer's own step graph (scanrnn.lm.step)
        from scanrnn.lm.model import CharLM
        from scanrnn.lm.step import training_step
        model = CharLM(vocab_size=cfg.vocab, hidden=cfg.hidden, layers=cfg.layers, embed=EMBED,
                       dropout=DROPOUT)
        step = training_step(model, x, y, optimizer="adam", lr=cfg.lr, clip=cfg.clip)
        fn = scanrnn.function([x, y], step.loss, updates=step.updates, backend=backend,
                              return_numpy=False, kernels=kernels, devices=devices)
        return fn, batch(cfg)
    h, params, size = x, [], cfg.vocab
    for layer in range(cfg.layers):
        cell = cells.make_cell(cfg.cell, size, cfg.hidden, name=f"{cfg.cell}_{layer}")
        p = cell.init_params(layer)
        h, _ = unroll(cell, h, p, fused=fused)
        params += list(p.values())
        size = cfg.hidden
    W_y = scanrnn.init.glorot_uniform((cfg.hidden, cfg.vocab), name="W_y")
    b_y = scanrnn.init.zeros(cfg.vocab, name="b_y")
    params += [W_y, b_y]
    loss = losses.cross_entropy(pt.dot(h, W_y) + b_y, y)
    grads, _ = optim.clip_by_global_norm(pt.grad(loss, params), cfg.clip)
    fn = scanrnn.function([x, y], loss, updates=optim.sgd(grads, params, cfg.lr),
                          backend=backend, return_numpy=False, kernels=kernels, devices=devices)
    return fn, batch(cfg)


def scanrnn_step(cfg, backend, fused=None, kernels="auto", devices=None):
    fn, (X, Y) = scanrnn_train_function(cfg, backend, fused, kernels, devices)
    np.asarray(fn(X, Y))  # the first call compiles (Numba compiles only then)

    def step():
        np.asarray(fn(X, Y))
    return step


def cold_compile(cfg_key, kernels="auto"):
    """Seconds from the symbolic graph to the first result of ``cfg``'s training function.

    Run in a fresh process (``--cold``): scanrnn, PyTensor's JAX backend and JAX's CPU
    client are loaded first and not timed; JAX's persistent compilation cache is off, so
    PyTensor's rewrites, the JAX linker and XLA's compile are all in the figure (a
    vendor-kernel library counts only as a cached build).
    """
    import scanrnn  # noqa: F401  (float32 default before JAX is configured)
    from scanrnn import kernels as vendor

    import jax
    import pytensor.link.jax.dispatch  # noqa: F401
    jax.config.update("jax_enable_compilation_cache", False)
    jax.devices()
    vendor.status()  # builds or loads the kernel library outside the timer
    start = time.perf_counter()
    fn, (X, Y) = scanrnn_train_function(CONFIGS[cfg_key], "jax", kernels=kernels)
    built = time.perf_counter()
    np.asarray(fn(X, Y))
    done = time.perf_counter()
    return built - start, done - start


def cold_table(keys, rounds):
    """``--cold``: each config's cold compile in ``rounds`` fresh processes, alternating."""
    import json
    import subprocess
    runs = {key: [] for key in keys}
    for _ in range(rounds):
        for key in keys:
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--cold-one", key],
                                 capture_output=True, text=True, check=True).stdout
            runs[key].append(json.loads(out.strip().splitlines()[-1]))
    lines = ["| config | graph built (s) | built + first call (s), median | rounds |",
             "| --- | ---: | ---: | --- |"]
    for key, got in runs.items():
        total = [t for _, t in got]
        lines.append(f"| {CONFIGS[key].name} | {statistics.median(b for b, _ in got):.2f} | "
                     f"{statistics.median(total):.2f} | "
                     f"{', '.join(f'{t:.2f}' for t in total)} |")
    print("\n".join(lines))
    return lines


# -- hand-written JAX --------------------------------------------------------------

def jax_step(cfg):
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    G = {"lstm": 4, "gru": 3}.get(cfg.cell, 1)
    params, size = [], cfg.vocab
    for _ in range(cfg.layers):
        params.append({
            "W_x": jnp.asarray(rng.normal(0, 0.05, (size, G * cfg.hidden)), jnp.float32),
            "W_h": jnp.asarray(rng.normal(0, 0.05, (cfg.hidden, G * cfg.hidden)), jnp.float32),
            "b": jnp.zeros(G * cfg.hidden, jnp.float32)})
        size = cfg.hidden
    params = {"layers": params,
              "W_y": jnp.asarray(rng.normal(0, 0.05, (cfg.hidden, cfg.vocab)), jnp.float32),
              "b_y": jnp.zeros(cfg.vocab, jnp.float32)}
    H = cfg.hidden

    def layer(p, xs):
        xp = (p["W_x"][xs] if xs.ndim == 2 else xs @ p["W_x"]) + p["b"]
        B = xp.shape[1]
        if cfg.cell == "lstm":
            def body(carry, xp_t):
                h, c = carry
                z = xp_t + h @ p["W_h"]
                i, f, g, o = (jax.nn.sigmoid(z[:, :H]), jax.nn.sigmoid(z[:, H:2 * H]),
                              jnp.tanh(z[:, 2 * H:3 * H]), jax.nn.sigmoid(z[:, 3 * H:]))
                c = f * c + i * g
                h = o * jnp.tanh(c)
                return (h, c), h
            init = (jnp.zeros((B, H)), jnp.zeros((B, H)))
        elif cfg.cell == "gru":  # reset gate after the product (b_h folded into b here)
            def body(h, xp_t):
                hh = h @ p["W_h"]
                z = jax.nn.sigmoid(xp_t[:, :H] + hh[:, :H])
                r = jax.nn.sigmoid(xp_t[:, H:2 * H] + hh[:, H:2 * H])
                h = z * h + (1 - z) * jnp.tanh(xp_t[:, 2 * H:] + r * hh[:, 2 * H:])
                return h, h
            init = jnp.zeros((B, H))
        else:
            def body(h, xp_t):
                h = jnp.tanh(xp_t + h @ p["W_h"])
                return h, h
            init = jnp.zeros((B, H))
        _, hs = jax.lax.scan(body, init, xp)
        return hs

    def loss_fn(params, xs, ys):
        h = xs
        for p in params["layers"]:
            h = layer(p, h)
        logits = h @ params["W_y"] + params["b_y"]
        logp = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.take_along_axis(logp, ys[..., None], axis=-1).mean()

    @jax.jit
    def train(params, xs, ys):
        loss, grads = jax.value_and_grad(loss_fn)(params, xs, ys)
        leaves = jax.tree_util.tree_leaves(grads)
        norm = jnp.sqrt(sum(jnp.sum(g * g) for g in leaves))
        scale = jnp.minimum(1.0, cfg.clip / (norm + 1e-7))
        return loss, jax.tree_util.tree_map(lambda p, g: p - cfg.lr * scale * g, params, grads)

    X, Y = (jnp.asarray(a) for a in batch(cfg))
    state = {"params": params}
    train(params, X, Y)[0].block_until_ready()

    def step():
        loss, state["params"] = train(state["params"], X, Y)
        loss.block_until_ready()
    return step


# -- Keras 3 on JAX --------------------------------------------------------------------

def keras_step(cfg):
    import keras

    lm = cfg.cell == "lm"
    layers = [keras.layers.Input(shape=(cfg.steps,), batch_size=cfg.batch, dtype="int32"),
              keras.layers.Embedding(cfg.vocab, EMBED if lm else cfg.vocab)]
    rnn = {"lstm": keras.layers.LSTM, "lm": keras.layers.LSTM,
           "gru": keras.layers.GRU}.get(cfg.cell, keras.layers.SimpleRNN)
    for _ in range(cfg.layers):
        layers.append(rnn(cfg.hidden, return_sequences=True))
        if lm:
            layers.append(keras.layers.Dropout(DROPOUT))
    layers.append(keras.layers.Dense(cfg.vocab))
    model = keras.Sequential(layers)
    optimizer = keras.optimizers.Adam if lm else keras.optimizers.SGD
    model.compile(optimizer=optimizer(cfg.lr, global_clipnorm=cfg.clip),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    X, Y = batch(cfg)
    Xb, Yb = X.T.copy(), Y.T.copy()
    model.train_on_batch(Xb, Yb)

    def step():
        model.train_on_batch(Xb, Yb)
    return step


# -- PyTorch CPU ------------------------------------------------------------------------

def torch_device():
    """``"cuda"`` when PyTorch sees a GPU (cuDNN's RNN kernels), else ``"cpu"``."""
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def torch_step(cfg, fused: bool, device: str = "cpu"):
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    V, H = cfg.vocab, cfg.hidden
    if cfg.cell == "lm":
        embed = torch.nn.Embedding(V, EMBED).to(device)
        rnn = torch.nn.LSTM(EMBED, H, num_layers=cfg.layers, dropout=DROPOUT).to(device)
        drop = torch.nn.Dropout(DROPOUT)
        head = torch.nn.Linear(H, V).to(device)
        params = [*embed.parameters(), *rnn.parameters(), *head.parameters()]

        def forward(x):
            return head(drop(rnn(embed(x))[0]))
    elif fused:
        rnn_cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}.get(cfg.cell, torch.nn.RNN)
        rnn = rnn_cls(V, H, num_layers=cfg.layers).to(device)
        head = torch.nn.Linear(H, V).to(device)
        params = list(rnn.parameters()) + list(head.parameters())

        def forward(x):
            out, _ = rnn(torch.nn.functional.one_hot(x, V).float())
            return head(out)
    else:  # d2l's from-scratch RNN
        W_xh = (torch.randn(V, H, device=device) * 0.01).requires_grad_()
        W_hh = (torch.randn(H, H, device=device) * 0.01).requires_grad_()
        b_h = torch.zeros(H, requires_grad=True, device=device)
        W_hq = (torch.randn(H, V, device=device) * 0.01).requires_grad_()
        b_q = torch.zeros(V, requires_grad=True, device=device)
        params = [W_xh, W_hh, b_h, W_hq, b_q]

        def forward(x):
            h = torch.zeros(x.shape[1], H, device=device)
            outs = []
            for x_t in torch.nn.functional.one_hot(x, V).float():
                h = torch.tanh(x_t @ W_xh + h @ W_hh + b_h)
                outs.append(h @ W_hq + b_q)
            return torch.stack(outs)
    opt = (torch.optim.Adam if cfg.cell == "lm" else torch.optim.SGD)(params, lr=cfg.lr)
    X, Y = (torch.from_numpy(a.astype(np.int64)).to(device) for a in batch(cfg))

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(forward(X).reshape(-1, V), Y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.clip)
        opt.step()
        loss.item()  # waits for the device
    step()
    return step


# -- harness ----------------------------------------------------------------------------

def time_interleaved(steps, n_steps, repeats, settle=0.3):
    """Median seconds per step of each callable in ``steps``, timed round-robin.

    Every repeat times ``n_steps`` steps of each implementation in turn, so a
    change of load on a shared machine hits all of them alike and the ratios
    stay meaningful.  ``settle`` seconds of sleep before each timing: OpenMP
    (PyTorch) and XLA worker threads keep spinning for a while after their
    work ends and would otherwise slow down whichever implementation runs next.
    """
    for step in steps.values():
        step()  # warm
    timings = {label: [] for label in steps}
    for _ in range(repeats):
        for label, step in steps.items():
            time.sleep(settle)  # let the previous library's worker threads stop spinning
            start = time.perf_counter()
            for _ in range(n_steps):
                step()
            timings[label].append((time.perf_counter() - start) / n_steps)
    return {label: statistics.median(t) for label, t in timings.items()}


def devices():
    """What the peers run on: JAX's devices and PyTorch's, in words."""
    found = []
    if installed("jax"):
        import jax
        found.append("JAX on " + ", ".join(sorted({d.platform for d in jax.devices()})))
    if installed("torch"):
        found.append(f"PyTorch on {torch_device()}")
    return "; ".join(found) or "no peers"


def installed(module):
    return importlib.util.find_spec(module) is not None


def candidates(cfg, backends, autodiff=False, kernel_row=True, host_devices=0, scan_row=False):
    out = []
    for backend in backends:
        out.append((f"scanrnn {backend}", lambda b=backend: scanrnn_step(cfg, b)))
    if host_devices > 1 and "jax" in backends:  # scanrnn train's default on a CPU
        out.append((f"scanrnn jax, {host_devices} host devices",
                    lambda: scanrnn_step(cfg, "jax", devices=host_devices)))
    if kernel_row and "jax" in backends:  # what the vendor kernels buy
        out.append(("scanrnn jax, vendor kernels",
                    lambda: scanrnn_step(cfg, "jax", kernels=True)))
    if scan_row and "jax" in backends:  # the same graph without them (on a GPU: no cuDNN)
        out.append(("scanrnn jax, fused scan",
                    lambda: scanrnn_step(cfg, "jax", kernels=False)))
    if autodiff and cfg.cell != "lm":  # what the fused backward pass buys: PyTensor's own
        out.append(("scanrnn jax, scan autodiff",  # scan gradient
                    lambda: scanrnn_step(cfg, "jax", False, kernels=False)))
    if installed("jax") and cfg.cell != "lm":
        out.append(("hand-written JAX", lambda: jax_step(cfg)))
    if installed("keras") and installed("jax"):
        out.append(("Keras 3 on JAX", lambda: keras_step(cfg)))
    if installed("torch"):
        if cfg.cell == "rnn" and cfg.layers == 1:
            out.append(("PyTorch scratch", lambda: torch_step(cfg, False, torch_device())))
        name = f"PyTorch nn.{'LSTM' if cfg.cell == 'lm' else cfg.cell.upper()}" + \
            (" (cuDNN)" if torch_device() == "cuda" else "")
        out.append((name, lambda: torch_step(cfg, True, torch_device())))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="rnn,lstm,lstm2", help="of: " + ", ".join(CONFIGS))
    parser.add_argument("--backends", default="jax", help="scanrnn backends (jax,numba,c)")
    parser.add_argument("--steps", type=int, default=10, help="steps per timing")
    parser.add_argument("--repeats", type=int, default=5, help="timings; the median is kept")
    parser.add_argument("--only", default="", help="comma-separated subset of implementations")
    parser.add_argument("--no-kernel-row", action="store_true",
                        help="skip the 'scanrnn jax, vendor kernels' row (kernels=True)")
    parser.add_argument("--scan-row", action="store_true",
                        help="also time scanrnn with kernels=False (the fused scan; on a GPU "
                             "the default row runs cuDNN)")
    parser.add_argument("--autodiff", action="store_true",
                        help="also time scanrnn with PyTensor's own scan gradient (fused=False)")
    parser.add_argument("--host-devices", type=int, default=0, metavar="N",
                        help="also time scanrnn's step data parallel over N host devices "
                             "(scanrnn.function(..., devices=N)), what `scanrnn train` does by "
                             "default on an N-core CPU")
    parser.add_argument("--cold", type=int, default=0, metavar="N",
                        help="instead: time each config's scanrnn training function from graph "
                             "to first result in N fresh processes (no persistent cache)")
    parser.add_argument("--cold-one", help=argparse.SUPPRESS)
    parser.add_argument("--write", action="store_true", help="append to benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    if args.cold_one:
        import json
        print(json.dumps(cold_compile(args.cold_one)))
        return
    if args.cold:
        lines = cold_table(args.configs.split(","), args.cold)
        if args.write:
            write_results(argv, [f"Cold compile, {args.cold} fresh processes per config.", "",
                                 *lines, ""])
        return
    import scanrnn  # noqa: F401  (float32 default before JAX is configured)
    if args.host_devices > 1:
        from scanrnn.parallel import request_cpu_devices
        request_cpu_devices(args.host_devices)   # before JAX starts; the others use device 0

    lines = []
    for key in args.configs.split(","):
        cfg = CONFIGS[key]
        tokens = cfg.batch * cfg.steps
        print(f"\n## {cfg.name}  ({tokens} tokens per step)")
        built, setup = {}, {}
        for label, make in candidates(cfg, args.backends.split(","), args.autodiff,
                                      not args.no_kernel_row, args.host_devices,
                                      args.scan_row):
            if args.only and not any(o in label for o in args.only.split(",")):
                continue
            start = time.perf_counter()
            try:
                built[label] = make()
            except Exception as exc:  # a peer failing must not hide the others
                print(f"{label:<26} failed: {type(exc).__name__}: {exc}")
                continue
            setup[label] = time.perf_counter() - start
        seconds = time_interleaved(built, args.steps, args.repeats)
        rows = [(label, tokens / seconds[label], setup[label]) for label in built]
        for label, tps, compile_s in rows:
            print(f"{label:<26} {tps:>10,.0f} tokens/s  (step {tokens / tps * 1e3:7.2f} ms, "
                  f"setup+first call {compile_s:5.1f} s)")
        ours = {label: tps for label, tps, _ in rows if label.startswith("scanrnn")
                and "autodiff" not in label}
        peers = {label: tps for label, tps, _ in rows if not label.startswith("scanrnn")}
        table = [f"#### {cfg.name}", "", "| implementation | tokens/s | setup + first call (s) |",
                 "| --- | ---: | ---: |"]
        table += [f"| {label} | {tps:,.0f} | {c:.1f} |" for label, tps, c in rows]
        for mine, tps in ours.items():
            ratios = ", ".join(f"{tps / p:.2f}× {peer}" for peer, p in peers.items())
            print(f"{mine}: {ratios}")
            table += ["", f"{mine}: {ratios}"]
        lines += table + [""]
    if args.write:
        write_results(argv, [f"median of {args.repeats} × {args.steps} steps.", "", *lines])


def write_results(argv, lines):
    """Append ``lines`` to benchmarks/RESULTS.md under the command and the machine."""
    header = [f"### Run: {time.strftime('%Y-%m-%d %H:%M')} — `python benchmarks/bench_core.py "
              f"{' '.join(argv if argv is not None else sys.argv[1:])}`", "",
              f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
              f"{devices()}; " + lines[0]]
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")
    with open(path, "a", encoding="utf-8") as out:
        out.write("\n".join(header + lines[1:]) + "\n")


if __name__ == "__main__":
    main()
