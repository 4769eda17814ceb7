"""A guided walk through what PyTensor's compiler does to the seed's Theano RNN.

Seed: shared/seeds/004, fast.ai lesson 6, "Building an RNN in Theano": a relu RNN whose
``step`` computes ``x W_x + b_x + h W_h + b_h`` and the softmax output inside the loop,
unrolled with ``scan``, differentiated with ``grad``, trained by plain SGD.

Printed step by step, every figure measured on this machine (scanrnn.inspect.explain):

1. the symbolic ``step`` and the Scan it becomes (kinds of its inputs and outputs);
2. the second Scan that ``grad`` creates (mit-mot accumulators, the recomputed body);
3. the rewrites that fire: what moves out of the loop, fusion, in-place updates,
   traces dropped; the loop bodies before and after;
4. what each backend runs, how long it compiles and how fast one step is;
5. the same model written with scanrnn's cell (input projection hoisted by hand).

    python examples/graph_study.py            # seed sizes (V=86, H=256, T=8), every backend
    python examples/graph_study.py --quick    # tiny sizes, JAX and Python backends only

Numba compiles the training graph in 30-70 s the first time on 2 cores (cached after).
"""

import argparse
import time

import scanrnn
from scanrnn.inspect import explain, theano_seed_spec
from scanrnn.inspect.render import format_bytes

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--quick", action="store_true",
                    help="tiny sizes (V=8, H=8, T=5) and only the JAX and Python backends")
parser.add_argument("--backend", default=None,
                    help="comma list of backends (default: all installed; --quick: jax,python)")
args = parser.parse_args()

sizes = dict(vocab=8, hidden=8, seq=5) if args.quick else dict(vocab=86, hidden=256, seq=8)
installed = scanrnn.backends()["installed"]
if args.backend:
    backends = args.backend
else:
    backends = [b for b in installed if b in ("jax", "python")] if args.quick else "all"


def title(text):
    print(f"\n{'=' * 100}\n{text}\n{'=' * 100}")


def show_slots(scan, kinds=None):
    for slot in scan.inputs:
        if slot.kind == "n_steps" or (kinds and slot.kind not in kinds):
            continue
        where = " (computed before the loop)" if slot.computed else ""
        print(f"    in  {slot.kind:<13} {slot.inner:<26} <- {slot.outer[:60]}{where}")
    for slot in scan.outputs:
        if kinds and slot.kind not in kinds:
            continue
        print(f"    out {slot.kind:<13} {slot.inner[:26]:<26} -> {slot.outer}")


def first(scans, role):
    return next((s for s in scans if s.role == role), None)


start = time.perf_counter()
spec = theano_seed_spec(**sizes)
report = explain(spec, backends=backends, min_time_s=0.2 if args.quick else 1.0)
primary = report.primary
before_fwd, before_grad = first(report.before.scans, "forward"), first(report.before.scans,
                                                                        "gradient")

# -- 1 ---------------------------------------------------------------------------------------
title(f"1. The symbolic step and the Scan it becomes   ({spec.name})")
print("The seed's step, as written (nnet.relu -> pt.maximum, nnet.softmax -> softmax):\n")
print("    " + spec.step_source.rstrip().replace("\n", "\n    "))
print("\nscan(step, sequences=inp, outputs_info=[h0, None], non_sequences=w_all) builds one "
      f"Scan op named {before_fwd.name!r}.\nIts inputs and outputs, by kind (ScanInfo):")
show_slots(before_fwd)
print(f"\n  The loop body has {before_fwd.inner_nodes} nodes: "
      + ", ".join(f"{k} x{v}" for k, v in before_fwd.inner_ops.items()))
print("  h is a sit-sot: a recurrent state fed back at t-1 and traced (every step kept);")
print("  y, with None in outputs_info, is a nit-sot: a per-step output with no recurrence.")

# -- 2 ---------------------------------------------------------------------------------------
title("2. The second Scan: what grad(error, w_all) adds")
print(f"grad builds {before_grad.name!r}, a Scan that runs backwards over the same steps. "
      "Its inputs and outputs:")
show_slots(before_grad)
print(f"\n  Its body has {before_grad.inner_nodes} nodes before rewriting (the forward step is "
      f"rebuilt inside it): " + ", ".join(f"{k} x{v}" for k, v in
                                          list(before_grad.inner_ops.items())[:8]))
print("  The mit-mot input is the gradient flowing back through h (read at t and t+1); each "
      "sit-sot accumulates one weight's gradient over the steps.")
print(f"\n  Whole training graph before rewriting: {report.before.n_nodes} nodes.")

# -- 3 ---------------------------------------------------------------------------------------
title(f"3. The rewrites that fire ({', '.join(r.backend for r in report.runs if r.ok)})")
for run in [r for r in report.runs if r.ok]:
    scan_rewrites = [(n, c) for n, c in run.rewrites if n.startswith("scan")]
    fusion = sum(c for n, c in run.rewrites if "Fusion" in n)
    inplace = [(n, c) for n, c in run.rewrites if "inplace" in n.lower()]
    print(f"\n{run.backend}: {len(run.rewrites)} distinct rewrites, "
          f"{sum(c for _, c in run.rewrites)} replacements; {report.before.n_nodes} -> "
          f"{run.n_nodes} nodes")
    print("  scan rewrites, in the order they first fired: "
          + ", ".join(f"{n} x{c}" for n, c in scan_rewrites))
    print(f"  elementwise fusion: FusionOptimizer x{fusion}; in-place: "
          + (", ".join(f"{n} x{c}" for n, c in inplace) or "none (this backend's mode has no "
                                                                "in-place rewrites)"))
    for scan in run.scans:
        print(f"  Scan {scan.name!r} ({scan.role}):")
        for change in scan.changes:
            print(f"    - {change}")

fwd = first(primary.scans, "forward")
dots_before = before_fwd.inner_ops.get("Dot", 0)
dots_after = fwd.inner_ops.get("Dot", 0)
hoisted = [s for s in fwd.inputs if s.kind == "sequence" and s.computed]
print(f"\nOn {primary.backend}, the forward body computes {dots_before} -> {dots_after} "
      "matrix products per step: " + (
          "the input projection x_t W_x moved out of the loop." if dots_after < dots_before
          or hoisted else
          "x_t W_x is still computed inside the loop, one step at a time; section 5 hoists "
          "it by hand."))
grad = first(primary.scans, "gradient")
print(f"The gradient body: {before_grad.inner_nodes} -> {grad.inner_nodes} nodes; "
      f"products per step {before_grad.inner_ops.get('Dot', 0)} -> "
      f"{grad.inner_ops.get('Dot', 0)}.")
untraced = [s for s in grad.outputs if s.kind == "untraced"]
if untraced:
    print(f"{len(untraced)} gradient accumulator(s) became untraced: only their last value is "
          "kept (" + ", ".join(s.outer for s in untraced) + ").")
print(f"\nThe forward loop body on {primary.backend} after rewriting ({fwd.inner_nodes} nodes; "
      "Composite = fused elementwise ops):")
print("      " + fwd.inner_text.rstrip().replace("\n", "\n      "))
print(f"The gradient body ({grad.inner_nodes} nodes): "
      + ", ".join(f"{k} x{v}" for k, v in grad.inner_ops.items()))
for run in [r for r in report.runs if r.ok and r.rewrite_failures]:
    for failure in run.rewrite_failures:
        print(f"({run.backend}: PyTensor skipped a rewrite that failed: {failure[:150]})")

# -- 4 ---------------------------------------------------------------------------------------
title("4. What each backend runs, and how fast")
print(f"{'backend':<8} {'nodes':>6} {'rewrite s':>10} {'build s':>9} {'first call s':>13} "
      f"{'step ms':>9}   memory kept by the loops")
for run in report.runs:
    if not run.ok:
        print(f"{run.backend:<8} failed: {run.error}")
        continue
    mem = "; ".join(f"{s.name}: {format_bytes(s.traced_bytes)} traced + "
                    f"{format_bytes(s.untraced_bytes)} untraced" for s in run.scans)
    step = f"{run.step_ms:9.3f}" if run.step_ms is not None else f"{'-':>9}"
    print(f"{run.backend:<8} {run.n_nodes:>6} {run.rewrite_s:>10.2f} {run.build_s:>9.2f} "
          f"{run.first_call_s or 0:>13.2f} {step}   {mem}")
print("rewrite = graph rewriting inside pytensor.function; build = linking and code "
      "generation;\nfirst call = Numba/JAX compile to machine code; step = median of the "
      "following calls.")
fwd_mem = first(primary.scans, "forward")
print(f"The forward scan writes {format_bytes(fwd_mem.per_step_bytes)} per step and keeps a "
      f"{format_bytes(fwd_mem.traced_bytes)} trace"
      + (" that the gradient scan reads back." if fwd_mem.read_by_gradient else "."))

# -- 5 ---------------------------------------------------------------------------------------
title("5. The same model written with scanrnn's cell: the projection hoisted by hand")
hand = explain(f"relu:vocab={sizes['vocab']},hidden={sizes['hidden']},seq={sizes['seq']},"
               "batch=1,optimizer=sgd,lr=0.01,clip=0", backends=primary.backend,
               stage="both", min_time_s=0.2 if args.quick else 1.0,
               kernels=False)   # the scan is what we study here (JAX would use oneDNN)
run = hand.primary
hand_fwd = first(run.scans, "forward")
print("scanrnn.cells.RNNCell.project computes x W_x + b for all steps in one product before "
      "the loop;\nthe step only adds h W_h (scanrnn.lm.CharLM, relu, one-hot input, "
      "batch 1, SGD):")
show_slots(hand_fwd, kinds=("sequence", "sit-sot", "non-sequence"))
print(f"  forward body: {hand_fwd.inner_nodes} nodes, {hand_fwd.inner_ops.get('Dot', 0)} "
      f"product per step (seed's step: {dots_after}).")
print(f"  {primary.backend}: {run.n_nodes} nodes, step {run.step_ms:.3f} ms "
      f"(seed's graph: {primary.n_nodes} nodes, {primary.step_ms:.3f} ms; whole training "
      "steps, with CharLM's mean loss and gradient clipping).")
for failure in run.rewrite_failures:
    print(f"  (PyTensor skipped a rewrite that failed here: {failure[:150]})")
print(f"\n(total {time.perf_counter() - start:.1f} s; scanrnn {scanrnn.__version__}, "
      + ", ".join(f"{k} {v}" for k, v in report.versions.items()) + ")")
