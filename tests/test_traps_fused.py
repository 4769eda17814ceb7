"""scanrnn.fused and cell subclasses: supports() and recurrence() agree on which cells fuse.

A subclass that keeps the built-in math (adds an attribute, an initialiser, a helper) runs
the fused recurrence of its built-in parent; one that overrides ``step`` runs its own step
through ``scan`` -- never the parent's fused math, never a KeyError.
"""

from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt
import pytest

import scanrnn
from scanrnn import cells, fused
from scanrnn.recurrent import unroll


@dataclass
class TaggedLSTM(cells.LSTMCell):
    """Keeps the LSTM math: only adds a field and a method."""

    tag: str = "mine"

    def describe(self):
        return f"{self.tag}: {self.hidden_size}"


@dataclass
class TaggedGRU(cells.GRUCell):
    tag: str = "mine"


@dataclass
class CoupledLSTM(cells.LSTMCell):
    """Its own step: the input gate is tied to the forget gate (i = 1 - f)."""

    def step(self, xp_t, h_prev, c_prev, W_h):
        z = xp_t + pt.dot(h_prev, W_h)
        f = pt.sigmoid(self.gate(z, 1))
        c = f * c_prev + (1 - f) * pt.tanh(self.gate(z, 2))
        return pt.sigmoid(self.gate(z, 3)) * pt.tanh(c), c


def _run(cell, fused_flag):
    """Outputs, final states and gradients of a small loss, as numbers."""
    params = cell.init_params(0)
    x = pt.tensor("x", shape=(5, 2, 3), dtype="float32")
    hs, final = unroll(cell, x, params, fused=fused_flag)
    loss = (hs ** 2).sum() + 0.3 * sum((s * s).sum() for s in final)
    f = scanrnn.function([x], [hs, *final, *pt.grad(loss, [*params.values(), x])],
                         backend="jax")
    return f(np.random.default_rng(0).normal(size=(5, 2, 3)))


@pytest.mark.parametrize("cls, base", [(TaggedLSTM, cells.LSTMCell),
                                       (TaggedGRU, cells.GRUCell)])
def test_a_subclass_that_keeps_step_runs_fused(cls, base):
    cell = cls(3, 4)
    assert fused.fused_class(cell) is base and fused.supports(cell)
    with_fused, without = _run(cell, True), _run(cell, False)    # KeyError before
    for a, b in zip(with_fused, without):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_subclass_with_its_own_step_never_runs_the_parents_math():
    cell = CoupledLSTM(3, 4)
    assert fused.fused_class(cell) is None and not fused.supports(cell)
    with pytest.raises(ValueError, match="fused=True needs"):
        unroll(cell, pt.tensor("x", shape=(5, 2, 3), dtype="float32"), cell.init_params(0),
               fused=True)
    with pytest.raises(ValueError, match="no fused recurrence for CoupledLSTM"):
        fused.recurrence(cell, pt.tensor3("xp"), [pt.matrix("h"), pt.matrix("c")],
                         [pt.matrix("W")], pt.vector("b"), "x")
    default = _run(cell, None)                  # the default picks scan over its own step
    np.testing.assert_allclose(default[0], _run(cell, False)[0], rtol=1e-6)
    parent = _run(cells.LSTMCell(3, 4), None)   # same weights, the parent's math differs
    assert np.abs(default[0] - parent[0]).max() > 1e-3


def test_a_subclass_with_its_own_gate_activations_is_not_fused():
    @dataclass
    class HardGates(cells.LSTMCell):
        def gate_activations(self, z):
            return pt.clip(z, 0, 1)

    assert fused.fused_class(HardGates(3, 4)) is None
    assert fused.fused_class(cells.LSTMCell(3, 4)) is cells.LSTMCell
    assert fused.fused_class(object()) is None and not fused.supports(object())
