"""The model classes: the functional ``Model(inputs, outputs)`` and ``Sequential([...])``.

A model is a graph of layer calls (nodes) from ``Input`` tensors to output
tensors.  It turns that graph into PyTensor expressions when it needs a
compiled function (its training half, :class:`~.fit_loop.FitLoop`), prints a
Keras summary, and saves itself as arrays plus a JSON architecture
(:mod:`.npz_format`; Keras 3 weight files load through :mod:`.keras_io`).
:mod:`scanrnn.keras.models` is the public home of these names.

A layer used in several places of the graph (the lesson's ``dense_in``
applied to every character) is one layer: one set of weights.
"""

from __future__ import annotations

import json

import numpy as np
import pytensor.tensor as pt

from . import keras_io, npz_format
from .engine import (Context, Input, InputLayer, KerasTensor, Layer, as_list, shape_str,
                     unique_name)
from .recurrent import Recurrent
from .fit_loop import FitLoop
from .registry import deserialize, serialize

FORMAT = "scanrnn.keras/2"
# In format 1 (before Keras 3's hard_sigmoid was added) "hard_sigmoid" meant Keras 1's.
_FORMAT_1 = "scanrnn.keras/1"


class Model(FitLoop):
    """A graph of layers from ``inputs`` to ``outputs`` (Keras 1: ``input=``, ``output=``).

    Parameters
    ----------
    inputs : KerasTensor or list
        Tensors returned by :func:`Input`.
    outputs : KerasTensor or list
        Tensors computed from them by calling layers.
    name : str, optional
    """

    def __init__(self, inputs=None, outputs=None, name=None, *, input=None, output=None):
        super().__init__()
        if input is not None:
            if inputs is not None:
                raise ValueError("give the model inputs once (inputs= or input=)")
            inputs = input
        if output is not None:
            if outputs is not None:
                raise ValueError("give the model outputs once (outputs= or output=)")
            outputs = output
        if inputs is None or outputs is None:
            raise ValueError("Model needs inputs and outputs: Model(inputs=[...], outputs=...)")
        self.name = name or unique_name("model")
        self._init_graph(inputs, outputs)

    # -- the graph -----------------------------------------------------------------------------
    def _init_graph(self, inputs, outputs):
        self._list_inputs = isinstance(inputs, (list, tuple))
        self._list_outputs = isinstance(outputs, (list, tuple))
        self.inputs, self.outputs = as_list(inputs), as_list(outputs)
        if not self.inputs or not self.outputs:
            raise ValueError("a model needs at least one input and one output")
        for role, tensors in (("input", self.inputs), ("output", self.outputs)):
            for t in tensors:
                if not isinstance(t, KerasTensor):
                    raise TypeError(f"model {role}s must be tensors made by Input(...) and "
                                    f"layer calls, got {type(t).__name__}")
        for t in self.inputs:
            if not isinstance(t.node.layer, InputLayer):
                raise ValueError(f"model inputs must come from Input(...); {t!r} is the output of "
                                 f"layer {t.node.layer.name!r}")
        if len({id(t) for t in self.inputs}) != len(self.inputs):
            raise ValueError("the same Input is listed twice among the model inputs")
        self._nodes = self._topological_nodes()
        layers = []
        for node in self._nodes:
            if node.layer not in layers:
                layers.append(node.layer)
        names = [layer.name for layer in layers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"layer names must be unique in a model; repeated: "
                             f"{', '.join(duplicates)}")
        self._graph_layers = layers
        self.input_names = [t.node.layer.name for t in self.inputs]
        self.output_names = [t.node.layer.name for t in self.outputs]
        self._invalidate()

    def _topological_nodes(self):
        order, seen = [], set()
        given = {id(t.node) for t in self.inputs}
        stack = [(t.node, False) for t in reversed(self.outputs)]
        while stack:
            node, expanded = stack.pop()
            if id(node) in seen:
                continue
            if expanded:
                seen.add(id(node))
                order.append(node)
                continue
            if isinstance(node.layer, InputLayer) and id(node) not in given:
                raise ValueError(
                    f"the model outputs depend on input {node.layer.name!r}, which is not among "
                    f"the model inputs ({', '.join(t.node.layer.name for t in self.inputs)}); "
                    f"add it to Model(inputs=[...])")
            stack.append((node, True))
            for t in reversed(node.inputs):
                if id(t.node) not in seen:
                    stack.append((t.node, False))
        for t in self.inputs:
            if id(t.node) not in seen:
                order.insert(0, t.node)
                seen.add(id(t.node))
        return order

    @property
    def layers(self) -> list[Layer]:
        """Every layer of the model, in the order they are first applied."""
        return list(self._graph_layers)

    def get_layer(self, name=None, index=None) -> Layer:
        """A layer by name or by position in :attr:`layers`."""
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r}; layers: "
                         f"{', '.join(lay.name for lay in self.layers)}")

    @property
    def built(self) -> bool:
        return bool(getattr(self, "outputs", None))

    def build_graph(self, ctx: Context, batch_size=None):
        """PyTensor inputs and output expressions of the whole model.

        Inputs are ``pt.tensor`` variables of the Keras input shapes with the batch
        axis left free (``batch_size`` fixes it); ``ctx`` collects updates and masks.
        """
        values = {}
        inputs = []
        for t in self.inputs:
            shape = (batch_size, *t.shape[1:])
            var = pt.tensor(name=t.node.layer.name, shape=shape, dtype=t.dtype)
            values[id(t)] = var
            inputs.append(var)
        for node in self._nodes:
            if isinstance(node.layer, InputLayer):
                continue
            ins = [values[id(t)] for t in node.inputs]
            arg = ins if node.list_input else ins[0]
            out = node.layer.call(arg, ctx)
            mask = node.layer.compute_mask(arg, ctx)
            many = len(node.outputs) > 1
            outs = list(out) if many else [out]
            masks = (list(mask) if mask is not None else [None] * len(outs)) if many else [mask]
            for t, var, m in zip(node.outputs, outs, masks):
                values[id(t)] = var
                if m is not None:
                    ctx.masks[var] = m
        return inputs, [values[id(t)] for t in self.outputs]

    # -- weights -------------------------------------------------------------------------------
    def _unique(self, attr):
        seen, out = set(), []
        for layer in self.layers:
            for var in getattr(layer, attr):
                if id(var) not in seen:
                    seen.add(id(var))
                    out.append(var)
        return out

    @property
    def weights(self) -> list:
        return self._unique("weights")

    @property
    def trainable_weights(self) -> list:
        return self._unique("trainable_weights")

    @property
    def non_trainable_weights(self) -> list:
        return self._unique("non_trainable_weights")

    def get_weights(self) -> list[np.ndarray]:
        """Every weight as a numpy array, layer by layer."""
        return [np.asarray(v.get_value()) for v in self.weights]

    def set_weights(self, arrays) -> None:
        """Set every weight from a list like :meth:`get_weights`'s, or like a Keras 3
        model's ``get_weights()`` (a GRU's two biases as one ``(2, 3H)`` array)."""
        arrays, start, parts, seen = list(arrays), 0, [], set()
        for layer in self.layers:
            if not layer.weights or all(id(v) in seen for v in layer.weights):
                continue
            seen.update(id(v) for v in layer.weights)
            n = layer.count_arrays(arrays[start:])
            parts.append((layer, arrays[start:start + n]))
            start += n
        if start != len(arrays):
            raise ValueError(f"model {self.name!r} has {len(self.weights)} weight(s) "
                             f"({', '.join(v.name for v in self.weights)}), got "
                             f"{len(arrays)} array(s)")
        for layer, part in parts:
            layer.set_weights(part)

    def count_params(self) -> int:
        return int(sum(np.prod(np.shape(v.get_value(borrow=True))) for v in self.weights))

    # -- stateful layers -----------------------------------------------------------------------
    def stateful_layers(self) -> list[Recurrent]:
        return [layer for layer in self.layers
                if isinstance(layer, Recurrent) and layer.stateful and layer.built]

    def reset_states(self, batch_size: int | None = None) -> None:
        """Zero the state of every stateful layer; ``batch_size`` resizes it (e.g. to 1)."""
        for layer in self.stateful_layers():
            layer.reset_states(batch_size)

    def stateful_batch_size(self) -> int | None:
        sizes = {layer.state_batch_size for layer in self.stateful_layers()}
        if len(sizes) > 1:
            raise ValueError(f"stateful layers of {self.name!r} carry states of different batch "
                             f"sizes {sorted(sizes)}; call model.reset_states(batch_size=...)")
        return sizes.pop() if sizes else None

    # -- summary -------------------------------------------------------------------------------
    def _node_index(self, node):
        """Index of ``node`` among its layer's calls inside this model."""
        mine = [n for n in node.layer._nodes if n in self._nodes]
        return mine.index(node)

    def summary(self, line_length=None, print_fn=None):
        """Print the layers, their output shapes and parameter counts (Keras's table)."""
        lines = self._summary_lines(line_length)
        (print_fn or print)("\n".join(lines))

    def _summary_lines(self, line_length=None):
        if not self.built:
            raise ValueError(f"model {self.name!r} is not built yet: give its first layer an "
                             f"input shape (input_shape=, input_length=, batch_input_shape=) or "
                             f"call fit/predict once")
        sequential = isinstance(self, Sequential)
        if sequential:
            widths = [33, 26, 12]
            header = ["Layer (type)", "Output Shape", "Param #"]
        else:
            widths = [33, 26, 12, 30]
            header = ["Layer (type)", "Output Shape", "Param #", "Connected to"]
        total_width = line_length or sum(widths)

        def row(fields):
            text = ""
            for field, width in zip(fields, widths):
                text = (text + str(field))[:len(text) + width - 1].ljust(len(text) + width)
            return text.rstrip()

        lines = [f'Model: "{self.name}"', "_" * total_width, row(header), "=" * total_width]
        layers = [lay for lay in self.layers if not (sequential and isinstance(lay, InputLayer))]
        for i, layer in enumerate(layers):
            shape = layer_output_shape(layer, self)
            params = f"{layer.count_params():,}"
            name = f"{layer.name} ({type(layer).__name__})"
            if sequential:
                lines.append(row([name, shape, params]))
            else:
                links = []
                for node in (n for n in layer._nodes if n in self._nodes):
                    links += [f"{t.node.layer.name}[{self._node_index(t.node)}][{t.index}]"
                              for t in node.inputs]
                lines.append(row([name, shape, params, links[0] if links else ""]))
                lines += [row(["", "", "", link]) for link in links[1:]]
            lines.append(("=" if i == len(layers) - 1 else "_") * total_width)
        trainable = sum(int(np.prod(np.shape(v.get_value(borrow=True))))
                        for v in self.trainable_weights)
        total = self.count_params()
        lines += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                  f"Non-trainable params: {total - trainable:,}", "_" * total_width]
        return lines

    # -- configuration and saving ----------------------------------------------------------------
    def get_config(self) -> dict:
        node_ids = {id(node): i for i, node in enumerate(self._nodes)}

        def ref(t):
            return [node_ids[id(t.node)], t.index]
        return {
            "name": self.name,
            "layers": [serialize(layer) for layer in self.layers],
            "nodes": [{"layer": node.layer.name, "inputs": [ref(t) for t in node.inputs],
                       "list_input": node.list_input, "kwargs": node.kwargs}
                      for node in self._nodes],
            "inputs": [ref(t) for t in self.inputs],
            "outputs": [ref(t) for t in self.outputs],
            "list_inputs": self._list_inputs,
            "list_outputs": self._list_outputs,
        }

    @classmethod
    def from_config(cls, config: dict) -> Model:
        layers = {}
        for spec in config["layers"]:
            layer = deserialize(spec)
            layers[layer.name] = layer
        made = []
        for node in config["nodes"]:
            layer = layers[node["layer"]]
            if isinstance(layer, InputLayer):
                made.append(layer._nodes[0].outputs)
                continue
            ins = [made[i][k] for i, k in node["inputs"]]
            n_initial = node.get("kwargs", {}).get("initial_state", 0)
            if n_initial:
                out = layer(ins[0], initial_state=ins[len(ins) - n_initial:])
            elif node["list_input"]:
                out = layer(ins)
            else:
                out = layer(ins[0])
            made.append(as_list(out))
        inputs = [made[i][k] for i, k in config["inputs"]]
        outputs = [made[i][k] for i, k in config["outputs"]]
        return cls(inputs if config.get("list_inputs", True) else inputs[0],
                   outputs if config.get("list_outputs", True) else outputs[0],
                   name=config["name"])

    def to_json(self, **kwargs) -> str:
        """The architecture as JSON (no weights); :func:`model_from_json` rebuilds it."""
        return json.dumps({"format": FORMAT, "class_name": type(self).__name__,
                           "config": self.get_config()}, **kwargs)

    def save_weights(self, filepath) -> None:
        """Write every weight to ``filepath`` as ``.npz`` (keys ``layer/weight``)."""
        npz_format.save_weights(self, filepath)

    def load_weights(self, filepath, by_name: bool = False) -> None:
        """Read weights written by :meth:`save_weights` (or :meth:`save`).

        By default layer by layer in order (names may differ); ``by_name=True``
        matches layer names and skips layers the file does not have.  A Keras 3
        ``.weights.h5`` file (needs h5py) loads by layer order as Keras does,
        its layouts converted to scanrnn's.
        """
        if keras_io.is_hdf5(filepath):
            keras_io.load_weights_h5(self, filepath)
            return
        npz_format.load_weights(self, filepath, by_name=by_name)

    def save(self, filepath) -> None:
        """Architecture (JSON), weights, compile settings and optimizer state in one ``.npz``."""
        npz_format.save_model(self, filepath)

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"


class Sequential(Model):
    """A stack of single-input, single-output layers: ``Sequential([Embedding(...), ...])``.

    The input is declared by the first layer (``input_shape``, ``input_dim``,
    ``input_length``, ``batch_input_shape``) or by an ``Input(...)`` first in
    the list; otherwise the model is built from the first data it sees.
    """

    def __init__(self, layers=None, name=None):
        FitLoop.__init__(self)
        self.name = name or unique_name("sequential")
        self._layers: list[Layer] = []
        self._input_tensor = None
        self.inputs = self.outputs = None
        self._graph_layers = []
        for layer in layers or []:
            self.add(layer)

    @property
    def layers(self) -> list[Layer]:
        return list(self._layers)

    def add(self, layer) -> None:
        """Append a layer (or, first, an ``Input(...)`` tensor)."""
        if isinstance(layer, KerasTensor):
            if self._layers or self._input_tensor is not None:
                raise ValueError("an Input can only come first in a Sequential")
            if not isinstance(layer.node.layer, InputLayer):
                raise ValueError("Sequential takes layers (and an Input first), not layer "
                                 "outputs")
            self._input_tensor = layer
            return
        if not isinstance(layer, Layer) or isinstance(layer, InputLayer):
            raise TypeError(f"Sequential takes layers, got {type(layer).__name__}")
        self._layers.append(layer)
        if self.built:
            self._build_stack(self.inputs[0])
        elif self._input_tensor is not None:
            self._build_stack(self._input_tensor)
        elif len(self._layers) == 1 and layer.batch_input_shape is not None:
            dtype = layer.declared_dtype or "float32"
            first = Input(batch_shape=layer.batch_input_shape, dtype=dtype,
                          name=f"{layer.name}_input")
            self._build_stack(first)

    def _build_stack(self, inp):
        x = inp
        for layer in self._layers:
            x = layer(x)
            if isinstance(x, list):
                raise ValueError(f"layer {layer.name!r} has {len(x)} outputs (return_state=True?); "
                                 f"a Sequential needs one output per layer: use the functional "
                                 f"Model")
        self._init_graph(inp, x)

    def build(self, input_shape=None, dtype=None) -> None:
        """Build from a batch input shape, e.g. ``model.build((None, 8))``."""
        if not self._layers:
            raise ValueError("add layers to the Sequential before building it")
        if self.built:
            return
        first = self._layers[0]
        shape = tuple(input_shape) if input_shape is not None else first.batch_input_shape
        if shape is None:
            raise ValueError("give build() the batch input shape, e.g. model.build((None, 8))")
        kind = dtype or first.declared_dtype or "float32"
        self._build_stack(Input(batch_shape=shape, dtype=kind, name=f"{first.name}_input"))

    def ensure_built_from(self, arrays) -> None:
        if self.built:
            return
        if len(arrays) != 1:
            raise ValueError(f"a Sequential takes one input array, got {len(arrays)}")
        array = np.asarray(arrays[0])
        if array.ndim < 1:
            raise ValueError("inputs need a batch axis")
        first = self._layers[0] if self._layers else None
        if first is None:
            raise ValueError("the Sequential has no layers")
        dtype = first.declared_dtype or ("int32" if array.dtype.kind in "iub" else "float32")
        self.build((None, *array.shape[1:]), dtype)

    def get_config(self) -> dict:
        config = {"name": self.name, "layers": [serialize(lay) for lay in self._layers]}
        if self.built:
            config["build_input_shape"] = list(self.inputs[0].shape)
            config["input_dtype"] = self.inputs[0].dtype
        return config

    @classmethod
    def from_config(cls, config: dict) -> Sequential:
        model = cls(name=config["name"])
        for spec in config["layers"]:
            model.add(deserialize(spec))
        if not model.built and config.get("build_input_shape") is not None:
            model.build(config["build_input_shape"], config.get("input_dtype"))
        return model


def layer_output_shape(layer: Layer, model: Model) -> str:
    shapes = {tuple(tuple(t.shape) for t in n.outputs) for n in layer._nodes if n in model._nodes}
    if len(shapes) != 1:
        return "multiple"
    outs = shapes.pop()
    return shape_str(outs[0]) if len(outs) == 1 else "[" + ", ".join(map(shape_str, outs)) + "]"


def model_from_config(spec: dict) -> Model:
    """A model from ``{"class_name": "Sequential" | "Model", "config": {...}}``."""
    kinds = {"Sequential": Sequential, "Model": Model, "Functional": Model}
    if spec.get("format") == _FORMAT_1:
        spec = _keras1_hard_sigmoid(spec)
    kind = spec.get("class_name")
    if kind not in kinds:
        raise ValueError(f"not a model config: class_name={kind!r}")
    return kinds[kind].from_config(spec["config"])


def _keras1_hard_sigmoid(config):
    """A format-1 config with its ``"hard_sigmoid"`` activations named as Keras 1's."""
    if isinstance(config, list):
        return [_keras1_hard_sigmoid(item) for item in config]
    if not isinstance(config, dict):
        return config
    return {key: ("keras1_hard_sigmoid" if key.endswith("activation") and value == "hard_sigmoid"
                  else _keras1_hard_sigmoid(value)) for key, value in config.items()}


def model_from_json(text: str) -> Model:
    """Rebuild a model (fresh weights) from :meth:`Model.to_json`."""
    return model_from_config(json.loads(text))
