"""PyTensor Ops for oneDNN's RNN kernels: :class:`OneDNNRecurrence` and its gradient.

``OneDNNRecurrence(kind, activation, vocab, training)`` takes scanrnn's
canonical parameters and runs the whole recurrence in one oneDNN primitive::

    inputs : src (T, B, I) float32  -- or token ids (T, B) int when vocab > 0
             W_x (I, G*H), W_h (H, G*H), [b_h (3H,) GRU], b (G*H,), h0 (B, H), [c0 (B, H) LSTM]
    outputs: hs (T, B, H), hT (B, H), [cT (B, H) LSTM], [workspace (N,) uint8 when training]

With ``vocab > 0`` the ids are one-hot encoded inside the Op (oneDNN always
multiplies its input by ``W_x``; for a small vocabulary that costs little).
Its ``pullback`` is :class:`OneDNNRecurrenceGrad`, whose JAX implementation
is oneDNN's backward primitive reading the forward's workspace.  With
``vendor="cudnn"`` (LSTM only, a GPU) the same pair calls cuDNN through
``jax.experimental.rnn`` (:mod:`.cudnn_rnn`), its reserve space as the workspace.  Both Ops run
on the JAX backend (``jax_funcify``) and, through JAX, in ``perform``.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, disconnected_type
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

from . import jax_rnn

N_GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def _param_names(kind):
    return ["W_x", "W_h"] + (["b_h"] if kind == "gru" else []) + ["b", "h0"] + \
        (["c0"] if kind == "lstm" else [])


class _Base(Op):
    __props__ = ("kind", "activation", "vocab", "vendor", "mesh")

    def __init__(self, kind: str, activation: str = "tanh", vocab: int = 0,
                 vendor: str = "onednn", mesh=None):
        if kind not in N_GATES or vendor not in ("onednn", "cudnn") or \
                (vendor == "cudnn" and kind != "lstm"):
            raise ValueError(f"no {vendor} kernel for cell kind {kind!r}")
        self.kind, self.activation, self.vocab, self.vendor = kind, activation, int(vocab), vendor
        self.mesh = mesh  # a data-parallel mesh: each device runs the kernel on its rows

    def _on_rows(self, fn):
        """``fn`` run per device on its rows under ``self.mesh`` (:mod:`.sharded`)."""
        if self.mesh is None:
            return fn
        from . import sharded
        roles = sharded.backward_roles(self.kind, self.vocab) \
            if isinstance(self, OneDNNRecurrenceGrad) else \
            sharded.forward_roles(self.kind, self.training)
        return sharded.wrap(fn, self.mesh, *roles)

    def _where(self) -> str:
        if self.mesh is None:
            return ""
        from .sharded import num_devices
        return f", per device on its rows x{num_devices(self.mesh)}"

    @property
    def kernel_name(self) -> str:
        """What the kernel is called in graph listings, e.g. ``oneDNN lbr_gru``."""
        if self.vendor == "cudnn":
            return "cuDNN lstm"
        name = {"rnn": f"vanilla_rnn[{self.activation}]", "gru": "lbr_gru",
                "lstm": "lstm"}[self.kind]
        return f"oneDNN {name}"

    def _module(self):
        if self.vendor == "cudnn":
            from . import cudnn_rnn
            return cudnn_rnn
        return jax_rnn

    def _src(self, src):
        """The kernel's float input: token ids one-hot encoded (as int32, so that uint8 ids
        of a vocabulary over 256 do not wrap; a negative id counts from the end, as
        ``W_x[ids]`` does)."""
        import jax
        import jax.numpy as jnp
        if self.vocab:
            ids = jnp.asarray(src).astype(jnp.int32)
            ids = jnp.where(ids < 0, ids + self.vocab, ids)
            return jax.nn.one_hot(ids, self.vocab, dtype=jnp.float32)
        return src

    def _check_shapes(self, src, W_x, W_h, b_h, b, h0, c0):
        """Refuse, while JAX traces, shapes that do not fit (the kernel would read past its
        buffers): ``src (T, B, I)``, ``W_x (I, G*H)``, ``W_h (H, G*H)``, biases ``(G*H,)``,
        states ``(B, H)``."""
        T, B, I = src.shape
        H = h0.shape[-1]
        GH = N_GATES[self.kind] * H
        want = {"W_x": (I, GH), "W_h": (H, GH), "b": (GH,), "h0": (B, H)}
        got = {"W_x": W_x.shape, "W_h": W_h.shape, "b": b.shape, "h0": h0.shape}
        if b_h is not None:
            want["b_h"], got["b_h"] = (GH,), b_h.shape
        if c0 is not None:
            want["c0"], got["c0"] = (B, H), c0.shape
        wrong = [f"{name} {tuple(got[name])} (needs {want[name]})" for name in want
                 if tuple(got[name]) != want[name]]
        if wrong:
            what = f"{self.vocab} token ids" if self.vocab else f"{I} features"
            raise ValueError(
                f"{self.kernel_name}: shapes that do not fit an input of T={T}, B={B} with "
                f"{what} and H={H}: {', '.join(wrong)}. Check that the arguments' shapes "
                "fit the graph's parameters.")

    def perform(self, node, inputs, outputs):
        results = self.jax_function()(*inputs)
        for storage, value, var in zip(outputs, results, node.outputs):
            storage[0] = np.asarray(value, dtype=var.dtype)


class OneDNNRecurrence(_Base):
    """The forward recurrence on oneDNN (see the module docstring)."""

    __props__ = ("kind", "activation", "vocab", "vendor", "mesh", "training")

    def __init__(self, kind, activation="tanh", vocab=0, vendor="onednn", training=True,
                 mesh=None):
        super().__init__(kind, activation, vocab, vendor, mesh)
        self.training = bool(training) or vendor == "cudnn"  # cuDNN: always its reserve space

    def __str__(self):
        training = ", training" if self.training else ""
        return f"OneDNNRecurrence{{{self.kernel_name}{training}{self._where()}}}"

    def make_node(self, src, *params):
        src = pt.as_tensor_variable(src)
        params = [pt.as_tensor_variable(p) for p in params]
        if len(params) != len(_param_names(self.kind)):
            raise ValueError(f"{self} takes src and {', '.join(_param_names(self.kind))}")
        f32 = "float32"
        outs = [pt.tensor(dtype=f32, shape=(None, None, None)), pt.matrix(dtype=f32)]
        if self.kind == "lstm":
            outs.append(pt.matrix(dtype=f32))
        if self.training:
            outs.append(pt.vector(dtype="float32" if self.vendor == "cudnn" else "uint8"))
        return Apply(self, [src, *params], outs)

    def infer_shape(self, *args):  # (fgraph, node, shapes) or (node, shapes): both lines
        node, shapes = args[-2:]
        T, B = shapes[0][0], shapes[0][1]
        H = shapes[-1][1]
        out = [(T, B, H), (B, H)] + ([(B, H)] if self.kind == "lstm" else [])
        if self.training:
            out.append(None)  # oneDNN's workspace size: known once the kernel runs
        return out

    def connection_pattern(self, node):
        n_out = len(node.outputs)
        data = [[not self.training or o < n_out - 1 for o in range(n_out)]
                for _ in node.inputs]
        if self.vocab:
            data[0] = [False] * n_out
        return data

    def jax_function(self):
        kind, act, training, cudnn = self.kind, self.activation, self.training, \
            self.vendor == "cudnn"

        def run(src, W_x, W_h, *rest):
            b_h = rest[0] if kind == "gru" else None
            rest = rest[1:] if kind == "gru" else rest
            b, h0 = rest[0], rest[1]
            c0 = rest[2] if kind == "lstm" else None
            src = self._src(src)
            self._check_shapes(src, W_x, W_h, b_h, b, h0, c0)
            if cudnn:
                return self._module().forward(src, W_x, W_h, b, h0, c0)
            bias = jax_rnn.kernel_bias(kind, b, b_h)
            return jax_rnn.forward(kind, act, training, src, W_x, W_h, bias, h0, c0)
        return self._on_rows(run)

    def pullback(self, inputs, outputs, output_grads):
        if not self.training:  # an inference node: differentiate its training twin
            twin = OneDNNRecurrence(self.kind, self.activation, self.vocab, self.vendor, True,
                                    self.mesh)
            outputs = twin(*inputs, return_list=True)
        n_state = 3 if self.kind == "lstm" else 2
        grads = [g if not isinstance(g.type, DisconnectedType) else pt.zeros_like(o)
                 for g, o in zip(output_grads[:n_state], outputs[:n_state])]
        grad_op = OneDNNRecurrenceGrad(self.kind, self.activation, self.vocab, self.vendor,
                                       self.mesh)
        results = grad_op(*inputs, *outputs[:n_state], outputs[-1], *grads, return_list=True)
        if self.vocab:
            results = [disconnected_type(), *results]
        return results


class OneDNNRecurrenceGrad(_Base):
    """oneDNN's backward primitive: the gradients of :class:`OneDNNRecurrence`'s inputs.

    inputs : the forward's inputs, its ``hs, hT, [cT], workspace``, then the gradients
             ``dhs (T, B, H), dhT (B, H), [dcT (B, H)]``.
    outputs: ``[dsrc (float src only)], dW_x, dW_h, [db_h], db, dh0, [dc0]``.
    """

    def __str__(self):
        return f"OneDNNRecurrenceGrad{{{self.kernel_name}{self._where()}}}"

    def make_node(self, *inputs):
        inputs = [pt.as_tensor_variable(v) for v in inputs]
        n_params = len(_param_names(self.kind))
        wrt = inputs[int(bool(self.vocab)):1 + n_params]
        outs = [v.type() for v in wrt]
        return Apply(self, inputs, outs)

    def infer_shape(self, *args):
        node, shapes = args[-2:]
        start = int(bool(self.vocab))
        return list(shapes[start:start + len(node.outputs)])

    def jax_function(self):
        kind, act, vocab, cudnn = self.kind, self.activation, self.vocab, self.vendor == "cudnn"
        n_params = len(_param_names(kind))

        def run(src, *rest):
            params, rest = rest[:n_params], rest[n_params:]
            W_x, W_h = params[0], params[1]
            b_h = params[2] if kind == "gru" else None
            b, h0 = params[-2 if kind != "lstm" else -3], params[-1 if kind != "lstm" else -2]
            c0 = params[-1] if kind == "lstm" else None
            if kind == "lstm":
                hs, hT, cT, ws, dhs, dhT, dcT = rest
            else:
                (hs, hT, ws, dhs, dhT), cT, dcT = rest, None, None
            if cudnn:
                d = self._module().backward(self._src(src), W_x, W_h, b, h0, c0, hs, hT, cT,
                                            ws, dhs, dhT, dcT)
                return ([] if vocab else [d[0]]) + [d[1], d[2], d[3], d[4], d[5]]
            bias = jax_rnn.kernel_bias(kind, b, b_h)
            d = jax_rnn.backward(kind, act, self._src(src), W_x, W_h, bias, h0, c0, hs, hT, cT,
                                 ws, dhs, dhT, dcT)
            dsrc, dW_x, dW_h, dbias, dh0 = d[:5]
            grads = [dW_x, dW_h, *jax_rnn.scanrnn_bias_grads(kind, dbias), dh0] + d[5:]
            return ([] if vocab else [dsrc]) + grads
        return self._on_rows(run)


def _register_jax():
    from ..pytensor_compat import jax_dispatch
    jax_funcify = jax_dispatch().jax_funcify

    @jax_funcify.register(OneDNNRecurrence)
    @jax_funcify.register(OneDNNRecurrenceGrad)
    def _funcify(op, **kwargs):
        fn = op.jax_function()

        def call(*inputs):
            out = fn(*inputs)
            return tuple(out) if len(out) > 1 else out[0]
        return call


_register_jax()
