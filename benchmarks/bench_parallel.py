"""Data-parallel training of the default language model: tokens/s on 1, 2, 4 forced host
devices, the bytes all-reduced per step, and the expected scaling on 8 GPUs on paper.

Each device count runs in its own child process (``XLA_FLAGS`` must be set before JAX
starts), in round-robin rounds so that load from other jobs spreads over all of them; the
table gives medians.  The all-reduce bytes are read from the compiled (partitioned) HLO
of the training step: every ``all-reduce`` op and the shapes it reduces.

    python benchmarks/bench_parallel.py                # writes benchmarks/RESULTS_parallel.md
    python benchmarks/bench_parallel.py --quick        # a small model, one round, no file
"""

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).with_name("RESULTS_parallel.md")
BYTES = {"f64": 8, "s64": 8, "u64": 8, "f32": 4, "s32": 4, "u32": 4, "f16": 2, "bf16": 2,
         "s16": 2, "u16": 2, "s8": 1, "u8": 1, "pred": 1}
SHAPE = re.compile(r"\b(" + "|".join(BYTES) + r")\[([\d,]*)\]")
COLLECTIVES = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "collective-permute")
COLLECTIVE = re.compile(r"=\s*(.*?)\s+(" + "|".join(COLLECTIVES) + r")(?:-start)?\(")
# On paper: NVLink 4 (H100/H200 SXM): 450 GB/s each way per GPU; NCCL's ring all-reduce
# reaches a bus bandwidth of about 360 GB/s on large messages; each of its 2(N-1) steps
# costs some latency too.
LINK_GBPS = 360.0
HOP_LATENCY_US = 5.0
ASSUMED_GPU_STEP_MS = (2.0, 5.0, 20.0)


def collective_bytes(hlo_text: str) -> dict:
    """``{op: [bytes, count]}``: the bytes of every collective's result in one call."""
    found = {op: [0, 0] for op in COLLECTIVES}
    for line in hlo_text.splitlines():
        match = COLLECTIVE.search(line)
        if not match:
            continue
        entry = found[match.group(2)]
        entry[1] += 1
        for dtype, dims in SHAPE.findall(match.group(1)):
            entry[0] += BYTES[dtype] * int(np.prod([int(d) for d in dims.split(",") if d]))
    return found


def ring_allreduce_ms(n_bytes: int, n_gpus: int) -> float:
    """A ring all-reduce of ``n_bytes`` over ``n_gpus``: 2(N-1)/N x bytes / bandwidth + latency."""
    transfer = 2 * (n_gpus - 1) / n_gpus * n_bytes / (LINK_GBPS * 1e9)
    return 1e3 * (transfer + 2 * (n_gpus - 1) * HOP_LATENCY_US * 1e-6)


def child(devices: int, steps: int, model_kw: dict) -> dict:
    """In a process with ``devices`` forced host devices: time the training step."""
    import scanrnn
    from scanrnn.data import Vocab, load_corpus
    from scanrnn.lm import CharLM, LMConfig, TrainConfig, Trainer
    text = load_corpus("timemachine")
    vocab = Vocab(text)
    ids = vocab.encode(text)[:150_000]
    model = CharLM(LMConfig(vocab_size=len(vocab), **model_kw))
    cfg = TrainConfig(backend="jax", minutes=None, eval_every=0, patience=None,
                      restore_best=False, progress=False, verbose=False,
                      devices=None if devices == 1 else devices)
    trainer = Trainer(model, cfg, ids, None, vocab)
    Xs, Ys = trainer.epoch_batches(0)
    t0 = time.perf_counter()
    trainer.train_step(Xs[0], Ys[0])
    compile_s = time.perf_counter() - t0
    found = collective_bytes(trainer.train_fn.compiled_text(Xs[0], Ys[0])) \
        if devices > 1 else collective_bytes("")
    for k in range(3):  # warm-up
        trainer.train_step(Xs[k % len(Xs)], Ys[k % len(Ys)])
    t0 = time.perf_counter()
    for k in range(steps):
        trainer.train_step(Xs[k % len(Xs)], Ys[k % len(Ys)])
    seconds = time.perf_counter() - t0
    B, T = cfg.batch_size, cfg.seq_len
    return {"devices": devices, "tokens_per_s": steps * B * T / seconds,
            "step_ms": 1e3 * seconds / steps, "compile_s": compile_s,
            "allreduce_bytes": found["all-reduce"][0], "allreduce_ops": found["all-reduce"][1],
            "allgather_bytes": found["all-gather"][0], "allgather_ops": found["all-gather"][1],
            "params": model.n_params(),
            "batch": B, "seq_len": T, "versions": scanrnn.backends()["versions"]}


def run_child(devices: int, steps: int, quick: bool) -> dict:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
               JAX_PLATFORMS="cpu")
    command = [sys.executable, __file__, "--child", str(devices), "--steps", str(steps)]
    done = subprocess.run(command + (["--quick"] if quick else []), capture_output=True,
                          text=True, env=env, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"the {devices}-device run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def paper_rows(n_bytes: int, n_gpus: int = 8) -> list[str]:
    comm = ring_allreduce_ms(n_bytes, n_gpus)
    rows = []
    for step in ASSUMED_GPU_STEP_MS:
        efficiency = step / (step + comm)
        rows.append(f"| {step:g} | {comm:.3f} | {step + comm:.3f} | {efficiency:.1%} | "
                    f"{n_gpus * efficiency:.2f}x |")
    return rows


def report(args, runs, load_before, load_after) -> str:
    by = {n: [r for r in runs if r["devices"] == n] for n in args.devices}
    first = runs[0]
    base = np.median([r["tokens_per_s"] for r in by[args.devices[0]]])
    lines = [
        "# Data-parallel training (`benchmarks/bench_parallel.py`)", "",
        f"Command: `python benchmarks/bench_parallel.py {' '.join(args.argv)}`".rstrip(),
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"{'no other job running' if load_before < 1.5 else '**shared with other jobs**'} "
        f"(load average {load_before:.1f} before, {load_after:.1f} after); "
        f"{first['versions']}", "",
        "## Tokens/s on forced host devices", "",
        f"Model: {first['params']:,} parameters, global batch {first['batch']} x "
        f"{first['seq_len']} (the per-device batch shrinks as devices grow), "
        f"`Trainer.train_step` (placement, the step, the loss read back); {args.rounds} "
        f"round-robin rounds of {args.steps} steps, a fresh process per device count and round.",
        "", "| devices | median tokens/s | vs 1 device | median step ms | rounds (tokens/s) | "
        "all-reduce ops, bytes per step | all-gather ops, bytes per step |",
        "|---|---|---|---|---|---|---|"]
    for n, rs in by.items():
        tps = [r["tokens_per_s"] for r in rs]
        lines.append(f"| {n} | {np.median(tps):,.0f} | {np.median(tps) / base:.2f}x | "
                     f"{np.median([r['step_ms'] for r in rs]):.1f} | "
                     f"{', '.join(f'{t:,.0f}' for t in tps)} | {rs[0]['allreduce_ops']}, "
                     f"{rs[0]['allreduce_bytes']:,} | {rs[0]['allgather_ops']}, "
                     f"{rs[0]['allgather_bytes']:,} |")
    reduced = max(r["allreduce_bytes"] for r in runs)
    gathered = max(r["allgather_bytes"] for r in runs)
    grads = 4 * first["params"]
    paper = reduced or grads
    lines += ["", "All forced host devices share this machine's cores, so splitting the batch "
              "cannot add compute: each device runs the same recurrence on fewer rows (smaller, "
              "less efficient GEMMs), XLA runs the devices' programs on one thread pool, and "
              "collectives are copies in memory. No speed-up is expected from more devices; "
              "what can change is how the 2 cores are used (a 1-device step runs the small "
              "per-step products of the recurrence partly on one core, two devices run their "
              "halves side by side). The figures show the cost of partitioning, not "
              "scaling.", "",
              "## What the partitioned step communicates", "",
              f"All-reduced per step: {reduced:,} bytes in "
              f"{max(r['allreduce_ops'] for r in runs)} all-reduce op(s); all-gathered: "
              f"{gathered:,} bytes; the float32 gradients of the {first['params']:,} parameters "
              f"are {grads:,} bytes (the step reduces the gradient of the folded input "
              f"projection of layer 1, vocabulary x 4H, instead of those of the embedding and "
              f"W_x, hence the difference). "
              + ("No activation crosses between devices: each device works on its rows and "
                 "only the weight gradients (and the loss) are summed over the devices, "
                 "because the core writes the products of time-major tensors so that they "
                 "keep the batch axis (scanrnn.contract; docs/parallel.md)."
                 if not gathered else
                 "All-gathers mean XLA did not keep the step purely data parallel: some "
                 "product or indexing flattens the (T, B/N, ...) activations, so the "
                 "partitioner gathers the whole batch onto every device (see "
                 "docs/parallel.md, 'What crosses between devices')."), "",
              "## On paper: 8 GPUs", "",
              f"Data parallelism all-reduces what the compiled step reduces: {paper:,} bytes "
              f"({paper / 1e6:.2f} MB) per step. A ring all-reduce over N GPUs moves 2(N-1)/N "
              f"of them through each link; assumed: NVLink 4 at a NCCL bus bandwidth of "
              f"{LINK_GBPS:g} GB/s and {HOP_LATENCY_US:g} us per ring step (2(N-1) steps), no "
              f"overlap of communication with the backward pass (pessimistic). Weak scaling: "
              f"each GPU keeps a batch of {first['batch']}, so 8 GPUs train 8x the tokens per "
              f"step. The one-GPU step time is not measured (no GPU was lent): three assumed "
              f"values.", "",
              "| one-GPU step ms (assumed) | all-reduce ms | 8-GPU step ms | efficiency | "
              "speed-up on 8 GPUs |", "|---|---|---|---|---|", *paper_rows(paper), "",
              f"Over PCIe 4 (~25 GB/s) the transfer term alone would be "
              f"{1e3 * 2 * 7 / 8 * paper / 25e9:.2f} ms."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", default="1,2,4", help="device counts, comma-separated")
    ap.add_argument("--steps", type=int, default=30, help="timed steps per run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="a small model, one round, no file")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    model_kw = dict(hidden=32, embed=8, layers=1) if args.quick else {}
    if args.child is not None:
        print(json.dumps(child(args.child, args.steps, model_kw)))
        return
    args.argv = argv
    args.devices = [int(n) for n in args.devices.split(",")]
    if args.quick:
        args.rounds, args.steps = 1, min(args.steps, 5)
    load_before = os.getloadavg()[0]
    runs = [run_child(n, args.steps, args.quick) for _ in range(args.rounds)
            for n in args.devices]
    text = report(args, runs, load_before, os.getloadavg()[0])
    print(text)
    if not args.quick:
        RESULTS.write_text(text)
        print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
