"""Before vs after rewriting: what happened to each Scan's inputs and outputs."""

from __future__ import annotations

from collections import Counter



from .analysis import GraphStats, ScanSummary

__all__ = ["compare_scans"]


# -- before vs after ---------------------------------------------------------------------
def _kind_counts(summary: ScanSummary, side: str) -> Counter:
    slots = summary.inputs if side == "in" else summary.outputs
    return Counter(s.kind for s in slots)


def compare_scans(before: GraphStats, after: GraphStats) -> None:
    """Fill ``changes`` of each Scan in ``after`` with what rewriting did to it.

    Scans are matched by name (forward ``rnn``, gradient ``grad_of_rnn``).  Reported:
    inner nodes removed or added by op, new sequences computed outside the loop (the
    hoisted work), non-sequences no longer needed inside, states turned untraced, and
    outputs dropped.
    """
    pool = list(before.scans)
    for scan in after.scans:
        match = next((b for b in pool if b.name == scan.name and b.role == scan.role), None)
        if match is None:
            scan.changes = ["no Scan of this name before rewriting (created by a rewrite)"]
            continue
        pool.remove(match)
        changes = []
        if scan.inner_nodes != match.inner_nodes:
            changes.append(f"loop body: {match.inner_nodes} -> {scan.inner_nodes} nodes")
        b_ops, a_ops = Counter(match.inner_ops), Counter(scan.inner_ops)
        gone = b_ops - a_ops
        new = a_ops - b_ops
        if gone:
            changes.append("gone from the loop body (moved out, fused or replaced): "
                           + ", ".join(f"{k} x{v}" for k, v in gone.most_common()))
        if new:
            changes.append("new in the loop body: "
                           + ", ".join(f"{k} x{v}" for k, v in new.most_common()))
        b_seqs = [s for s in match.inputs if s.kind == "sequence"]
        a_seqs = [s for s in scan.inputs if s.kind == "sequence"]
        b_comp = [s.outer for s in b_seqs if s.computed]
        a_comp = [s.outer for s in a_seqs if s.computed]
        if len(a_seqs) != len(b_seqs):
            changes.append(f"sequences {len(b_seqs)} -> {len(a_seqs)}")
        if len(a_comp) > len(b_comp):
            changes.append(f"{len(a_comp) - len(b_comp)} sequence(s) now computed before the "
                           "loop for all steps at once (hoisted): "
                           + "; ".join(s for s in a_comp if s not in b_comp))
        b_ns = [s.inner for s in match.inputs if s.kind == "non-sequence"]
        a_ns = [s.inner for s in scan.inputs if s.kind == "non-sequence"]
        dropped = [n for n in b_ns if n not in a_ns]
        if len(a_ns) != len(b_ns):
            text = f"non-sequences {len(b_ns)} -> {len(a_ns)}"
            if dropped:
                text += f" (no longer read inside the loop: {', '.join(dropped)})"
            changes.append(text)
        bi, ai = _kind_counts(match, "in"), _kind_counts(scan, "in")
        if ai["untraced"] > bi["untraced"]:
            changes.append(f"{ai['untraced'] - bi['untraced']} traced state(s) made untraced "
                           "(only the last value is kept)")
        bo, ao = _kind_counts(match, "out"), _kind_counts(scan, "out")
        lost = [f"{k} x{bo[k] - ao[k]}" for k in ("nit-sot", "sit-sot", "mit-mot", "mit-sot")
                if ao[k] < bo[k]]
        if lost:
            changes.append("outputs dropped or converted: " + ", ".join(lost))
        if not changes:
            changes.append("unchanged")
        scan.changes = changes


