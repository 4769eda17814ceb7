"""The functional graph: symbolic Keras tensors, nodes, the Layer base class, ``Input``.

Calling a layer on :class:`KerasTensor` objects records a :class:`Node` (which
layer, which inputs) and returns new Keras tensors that know only their shape
and dtype; nothing is computed.  A model later walks the nodes and asks each
layer for a PyTensor expression (:meth:`Layer.call`) with a :class:`Context`
that says whether it is training and collects shared-variable updates
(stateful RNN state, batch-norm statistics, dropout RNG), masks and the
logits behind softmax outputs.

Shapes are batch-major tuples whose first entry is the batch size (``None``
unless fixed, as for a stateful model); other entries may be ``None`` too.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Variable

from .. import init as initializers
from .._config import floatx
from .registry import register

_NAME_COUNTS: dict[str, int] = defaultdict(int)
_WEIGHT_RNG = [np.random.default_rng(0)]

# Arguments of Keras layers that only tune speed or memory there; accepted and ignored here.
IGNORED_ARGUMENTS = ("consume_less", "implementation", "unroll")
# Arguments accepted only at their "off" value, with the reason.
UNSUPPORTED_UNLESS_NONE = ("W_regularizer", "U_regularizer", "b_regularizer",
                           "activity_regularizer", "kernel_regularizer",
                           "recurrent_regularizer", "bias_regularizer", "W_constraint",
                           "U_constraint", "b_constraint", "kernel_constraint",
                           "recurrent_constraint", "bias_constraint",
                           "embeddings_regularizer", "embeddings_constraint")


def unique_name(prefix: str) -> str:
    """``prefix_1``, ``prefix_2``, ... (Keras 1's automatic layer names)."""
    _NAME_COUNTS[prefix] += 1
    return f"{prefix}_{_NAME_COUNTS[prefix]}"


def set_random_seed(seed: int) -> None:
    """Seed the generator that initialises layer weights (and numpy's, used by ``shuffle``)."""
    _WEIGHT_RNG[0] = np.random.default_rng(seed)
    np.random.seed(seed)


def weight_rng() -> np.random.Generator:
    """The generator new layer weights are drawn from."""
    return _WEIGHT_RNG[0]


def input_dtype(dtype) -> str:
    """The dtype of a model input: integer ids are int32 (JAX runs without x64), floats floatX."""
    if dtype is None:
        return floatx()
    kind = np.dtype(dtype).kind
    if kind in "iub":
        return "int32"
    if kind == "f":
        return floatx()
    raise ValueError(f"unsupported input dtype {dtype!r}; use an integer dtype for token ids "
                     f"or a float dtype")


def as_list(x) -> list:
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


def shape_str(shape) -> str:
    return "(" + ", ".join("None" if s is None else str(s) for s in shape) + \
        ("," if len(shape) == 1 else "") + ")"


def _clean_shape(shape, what: str) -> tuple:
    try:
        out = tuple(None if s is None else int(s) for s in shape)
    except TypeError as exc:
        raise ValueError(f"{what} must be a tuple of ints or None, got {shape!r}") from exc
    if any(s is not None and s <= 0 for s in out):
        raise ValueError(f"{what} must hold positive sizes, got {shape!r}")
    return out


def assign_weights(owner: str, weights, arrays) -> None:
    """Set shared ``weights`` from ``arrays`` (same count and shapes), naming what differs."""
    arrays = list(arrays)
    if len(arrays) != len(weights):
        raise ValueError(f"{owner} has {len(weights)} weight(s) "
                         f"({', '.join(v.name for v in weights)}), got {len(arrays)} array(s)")
    for var, value in zip(weights, arrays):
        value = np.asarray(value)
        want = np.shape(var.get_value(borrow=True))
        if value.shape != want:
            raise ValueError(f"weight {var.name!r} has shape {want}, got {value.shape}")
        var.set_value(value.astype(var.dtype))


class KerasTensor:
    """A symbolic tensor of the functional API: a shape, a dtype and the node that made it."""

    def __init__(self, shape, dtype, node=None, index=0):
        self.shape = tuple(shape)
        self.dtype = dtype
        self.node = node
        self.index = index

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def layer(self):
        return self.node.layer

    def __repr__(self):
        origin = f" from layer {self.node.layer.name!r}" if self.node else ""
        return f"<KerasTensor shape={shape_str(self.shape)} dtype={self.dtype}{origin}>"


class Node:
    """One call of a layer: its input tensors, output tensors and JSON-able call arguments."""

    def __init__(self, layer, inputs, outputs, kwargs=None, list_input=False):
        self.layer = layer
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.kwargs = dict(kwargs or {})
        self.list_input = list_input
        for i, t in enumerate(self.outputs):
            t.node, t.index = self, i
        layer._nodes.append(self)


class Context:
    """What one graph build collects.

    Attributes
    ----------
    training : bool
        Dropout drops and batch normalisation uses batch statistics when True.
    updates : dict
        ``{shared: new value}`` from stateful layers, batch norm and dropout.
    masks : dict
        ``{output variable: (B, T) mask}`` for layers that produce or pass on a mask.
    logits : dict
        ``{softmax output: its logits}``, so a loss can use the stable log-softmax.
    """

    def __init__(self, training: bool = False):
        self.training = bool(training)
        self.updates: dict = {}
        self.masks: dict = {}
        self.logits: dict = {}

    def add_update(self, variable, value, layer):
        if variable in self.updates:
            raise ValueError(
                f"layer {layer.name!r} updates {variable.name!r} twice in one model (the layer is "
                f"applied more than once and keeps state); use separate layers")
        self.updates[variable] = value


class Layer:
    """Base class: a thin wrapper that turns input expressions into output expressions.

    Subclasses implement :meth:`build` (create weights from the input shape),
    :meth:`compute_output_shape` and :meth:`call`.

    Parameters (common to all layers, Keras 1 and Keras 3 spellings)
    ----------
    name : str, optional
        Default ``<classname>_<n>`` (``dense_1``); weights are named ``"<name>.<param>"``.
    trainable : bool
        Frozen layers are left out of the optimizer.
    input_shape, batch_input_shape, batch_size, input_dim, input_length
        Declare the model input on the first layer of a ``Sequential``.
    weights : list of arrays, optional
        Initial weights (Keras 1), set when the layer is built.
    """

    supports_masking = False
    keras_prefix = None

    def __init__(self, name=None, trainable=True, input_shape=None, batch_input_shape=None,
                 batch_size=None, input_dim=None, input_length=None, dtype=None, weights=None,
                 **kwargs):
        for key in IGNORED_ARGUMENTS:
            kwargs.pop(key, None)
        for key in UNSUPPORTED_UNLESS_NONE:
            if kwargs.pop(key, None) is not None:
                raise ValueError(f"{type(self).__name__}: {key} is not supported by scanrnn; "
                                 f"add a penalty to the loss instead")
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unknown argument(s): "
                            f"{', '.join(sorted(kwargs))}")
        prefix = self.keras_prefix or type(self).__name__.lower()
        self.name = name or unique_name(prefix)
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            raise ValueError(f"layer name must be a non-empty string without '/', got {name!r}")
        self.trainable = bool(trainable)
        self.built = False
        self.built_input_shape = None
        self._weights: list[tuple[str, Variable, bool]] = []
        self._nodes: list[Node] = []
        self._initial_weights = None if weights is None else [np.asarray(w) for w in weights]
        self.declared_dtype = None if dtype is None else input_dtype(dtype)
        self.batch_input_shape = self._declared_shape(input_shape, batch_input_shape,
                                                      batch_size, input_dim, input_length)

    def _declared_shape(self, input_shape, batch_input_shape, batch_size, input_dim,
                        input_length):
        if batch_input_shape is not None:
            return _clean_shape(batch_input_shape, "batch_input_shape")
        if input_shape is not None:
            return _clean_shape((batch_size, *input_shape), "input_shape")
        if input_dim is not None:
            shape = (input_length, input_dim) if input_length is not None else (input_dim,)
            return _clean_shape((batch_size, *shape), "input_dim")
        if input_length is not None:
            raise ValueError(f"{type(self).__name__}: input_length needs input_dim")
        return None

    # -- weights --------------------------------------------------------------------------
    def add_weight(self, short_name: str, shape, initializer="glorot_uniform",
                   trainable: bool = True):
        """Create, track and return a float shared variable named ``"<layer>.<short_name>"``."""
        value = initializers.get(initializer)(tuple(shape), weight_rng())
        var = initializers.shared(value, name=f"{self.name}.{short_name}")
        self._weights.append((short_name, var, trainable))
        return var

    def track_weight(self, short_name: str, var, trainable: bool = True):
        """Track a shared variable made elsewhere (e.g. by a core cell)."""
        self._weights.append((short_name, var, trainable))
        return var

    @property
    def weights(self) -> list:
        return [v for _, v, _ in self._weights]

    @property
    def trainable_weights(self) -> list:
        return [v for _, v, t in self._weights if t and self.trainable]

    @property
    def non_trainable_weights(self) -> list:
        return [v for _, v, t in self._weights if not (t and self.trainable)]

    def weight_names(self) -> list[str]:
        return [v.name for v in self.weights]

    def get_weights(self) -> list[np.ndarray]:
        """The weights as numpy arrays, in creation order."""
        return [np.asarray(v.get_value()) for v in self.weights]

    def set_weights(self, arrays) -> None:
        """Set every weight from a list of arrays of the same shapes (creation order);
        Keras 3's layouts are accepted too (see :meth:`canonical_arrays`)."""
        assign_weights(f"layer {self.name!r}", self.weights, self.canonical_arrays(list(arrays)))

    def canonical_arrays(self, arrays: list) -> list:
        """This layer's weights in scanrnn's layout from Keras's (the same by default)."""
        return arrays

    def count_arrays(self, arrays: list) -> int:
        """How many of ``arrays`` (a model's weight list from this layer on) are its own."""
        return len(self.weights)

    def count_params(self) -> int:
        if not self.built:
            raise ValueError(f"layer {self.name!r} is not built yet: call it on an input "
                             f"(or give the model an input shape) first")
        return int(sum(np.prod(np.shape(v.get_value(borrow=True))) for v in self.weights))

    # -- to override ------------------------------------------------------------------------
    def build(self, input_shape) -> None:
        """Create the weights for inputs of ``input_shape``."""

    def compute_output_shape(self, input_shape):
        return input_shape

    def output_dtype(self, input_dtypes) -> str:
        return floatx()

    def call(self, inputs, ctx: Context):
        """The output expression(s) of ``inputs`` (PyTensor variables, batch-major)."""
        raise NotImplementedError

    def compute_mask(self, inputs, ctx: Context):
        """The mask of the output (``None``: no mask)."""
        if not self.supports_masking:
            return None
        first = as_list(inputs)[0]
        return ctx.masks.get(first)

    def check_input_shape(self, input_shape) -> None:
        """Raise if a built layer is called on inputs it cannot take (default: last axis)."""
        built = self.built_input_shape
        if not self._weights or built is None or isinstance(built, list):
            return
        if input_shape[-1] is not None and built[-1] is not None and input_shape[-1] != built[-1]:
            raise ValueError(
                f"layer {self.name!r} was built for inputs of shape {shape_str(built)} and "
                f"cannot take {shape_str(input_shape)} (last axis {input_shape[-1]} != "
                f"{built[-1]}); use a new layer")

    def get_config(self) -> dict:
        config = {"name": self.name, "trainable": self.trainable}
        if self.batch_input_shape is not None:
            config["batch_input_shape"] = list(self.batch_input_shape)
        if self.declared_dtype is not None:
            config["dtype"] = self.declared_dtype
        return config

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    # -- building and calling -----------------------------------------------------------------
    def ensure_built(self, input_shape) -> None:
        if self.built:
            self.check_input_shape(input_shape)
            return
        self.build(input_shape)
        self.built = True
        self.built_input_shape = input_shape
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def _call_kwargs(self, kwargs) -> tuple[list, dict]:
        """Extra input tensors and JSON-able arguments of a call (none by default)."""
        if kwargs:
            raise TypeError(f"{type(self).__name__} call got unknown argument(s): "
                            f"{', '.join(sorted(kwargs))}")
        return [], {}

    def __call__(self, inputs, **kwargs):
        items = as_list(inputs)
        list_input = isinstance(inputs, (list, tuple))
        if items and all(isinstance(t, KerasTensor) for t in items):
            return self._call_symbolic(items, list_input, kwargs)
        if items and all(isinstance(t, Variable) for t in items):
            ctx = kwargs.pop("ctx", None) or Context(training=kwargs.pop("training", False))
            extra, _ = self._call_kwargs(kwargs)
            shapes = [tuple(t.type.shape) for t in items + extra]
            in_shape = shapes if list_input or extra else shapes[0]
            self.ensure_built(in_shape)
            arg = items + extra if (list_input or extra) else items[0]
            out = self.call(arg, ctx)
            out_shape = self.compute_output_shape(in_shape)
            if isinstance(out, Variable) and isinstance(out_shape, tuple) \
                    and len(out_shape) == out.ndim and out.type.shape != out_shape:
                # keep the static sizes Keras knows (scan and indexing lose them)
                known = tuple(k if k is not None else s for k, s in zip(out_shape, out.type.shape))
                out = pt.specify_shape(out, known)
            return out
        raise TypeError(
            f"layer {self.name!r} must be called on tensors made by Input(...) (or on PyTensor "
            f"variables); got {type(inputs).__name__}. To run a layer on numpy data, put it in "
            f"a Model or Sequential and call predict().")

    def _call_symbolic(self, items, list_input, kwargs):
        extra, node_kwargs = self._call_kwargs(kwargs)
        tensors = items + extra
        multi = list_input or bool(extra)
        shapes = [t.shape for t in tensors]
        in_shape = shapes if multi else shapes[0]
        self.ensure_built(in_shape)
        out_shape = self.compute_output_shape(in_shape)
        dtypes = [t.dtype for t in tensors]
        if isinstance(out_shape, list):
            outputs = [KerasTensor(s, floatx()) for s in out_shape]
        else:
            outputs = [KerasTensor(out_shape, self.output_dtype(dtypes))]
        Node(self, tensors, outputs, node_kwargs, list_input=multi)
        return outputs if isinstance(out_shape, list) else outputs[0]

    @property
    def output_shape(self):
        """The output shape of the layer's only call (``"multiple"`` after several)."""
        if not self._nodes:
            raise AttributeError(f"layer {self.name!r} has not been called yet")
        shapes = {tuple(t.shape for t in n.outputs) for n in self._nodes}
        if len(shapes) > 1:
            return "multiple"
        outs = self._nodes[0].outputs
        return outs[0].shape if len(outs) == 1 else [t.shape for t in outs]

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"


@register
class InputLayer(Layer):
    """The source of a model input; :func:`Input` makes one and returns its tensor."""

    keras_prefix = "input"

    def __init__(self, batch_shape=None, dtype=None, name=None, input_shape=None,
                 batch_input_shape=None, sparse=False, batch_size=None):
        if sparse:
            raise ValueError("sparse inputs are not supported; pass dense arrays")
        super().__init__(name=name)
        if batch_shape is None:
            batch_shape = batch_input_shape
        if batch_shape is None:
            if input_shape is None:
                raise ValueError("Input needs shape=(...) (without the batch axis) or "
                                 "batch_shape=(batch, ...)")
            batch_shape = (batch_size, *as_list(input_shape))
        self.batch_shape = _clean_shape(batch_shape, "Input shape")
        self.dtype = input_dtype(dtype)
        self.built = True
        self.built_input_shape = self.batch_shape
        Node(self, [], [KerasTensor(self.batch_shape, self.dtype)])

    def get_config(self):
        return {"name": self.name, "batch_shape": list(self.batch_shape), "dtype": self.dtype}

    def call(self, inputs, ctx):
        raise TypeError("an InputLayer has no call; the model feeds it")


def Input(shape=None, batch_shape=None, name=None, dtype=None, sparse=False, tensor=None,
          batch_size=None):
    """A symbolic model input (batch axis left out of ``shape``).

    ``dtype``: integer dtypes (``'int64'`` in the lesson) become int32 token ids;
    anything else is floatX (float32).
    """
    if tensor is not None:
        raise ValueError("Input(tensor=...) is not supported; declare shape=... instead")
    if shape is not None and not isinstance(shape, (tuple, list)):
        shape = (shape,)
    layer = InputLayer(batch_shape=batch_shape, dtype=dtype, name=name, input_shape=shape,
                       sparse=sparse, batch_size=batch_size)
    return layer._nodes[0].outputs[0]
