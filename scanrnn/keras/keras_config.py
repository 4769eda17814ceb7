"""Keras 3 model configs (a ``.keras`` file's ``config.json``) as scanrnn.keras models.

Every layer of the config must be one scanrnn.keras has; its Keras 3 arguments
are translated (dtype policies, seeds and initializer objects are dropped: the
weights come from the file), and an argument or layer scanrnn cannot honour is a
``ValueError`` naming the layer.  The functional graph is rebuilt from each
layer's ``inbound_nodes``; Keras's mask operations (``NotEqual`` nodes feeding a
``mask=`` argument) are skipped, since scanrnn layers pass masks on by themselves.
"""

from __future__ import annotations

from .engine import Input
from .layers import LAYERS
from .functional import Model, Sequential

# Keras 3 arguments with nothing to translate: they only matter to Keras.
DROPPED = ("dtype", "seed", "module", "registered_name", "build_config", "unroll",
           "quantization_config", "synchronized", "optional", "lora_rank", "lora_alpha",
           "renorm_clipping", "renorm_momentum", "data_format")
# Arguments that must hold the given value here (scanrnn has only that behaviour).
REQUIRED = {"zero_output_for_mask": False, "sparse": False, "ragged": False, "renorm": False}


def _keras_tensor_history(item):
    if isinstance(item, dict) and item.get("class_name") == "__keras_tensor__":
        return tuple(item["config"]["keras_history"])
    return None


def layer_kwargs(class_name: str, config: dict) -> dict:
    """Our constructor arguments from a Keras 3 layer ``config``; raises on what we lack."""
    kwargs = {}
    name = config.get("name", "?")
    for key, value in config.items():
        if key in DROPPED or key.endswith("_initializer"):
            continue
        if key in REQUIRED:
            if bool(value) != REQUIRED[key]:
                raise ValueError(f"Keras layer {name!r} ({class_name}) has {key}={value!r}, "
                                 f"which scanrnn.keras does not support")
            continue
        if (key.endswith("_regularizer") or key.endswith("_constraint")) and value is None:
            continue
        kwargs[key] = value
    if class_name == "InputLayer":
        kwargs = {"batch_shape": config["batch_shape"], "dtype": _dtype(config.get("dtype")),
                  "name": name}
    if class_name == "TimeDistributed":
        kwargs["layer"] = build_layer(config["layer"])
    if class_name == "Bidirectional":   # its halves zero padded steps, as ours do
        for key in ("layer", "backward_layer"):
            if config.get(key) is not None:
                inner = {**config[key], "config": dict(config[key]["config"])}
                inner["config"].pop("zero_output_for_mask", None)
                kwargs[key] = build_layer(inner)
    return kwargs


def _dtype(dtype):
    if isinstance(dtype, dict):
        dtype = dtype.get("config", {}).get("name")
    return dtype


def build_layer(spec: dict):
    """One scanrnn.keras layer from a Keras 3 ``{"class_name", "config"}`` spec."""
    class_name = spec.get("class_name")
    config = spec.get("config", {})
    name = config.get("name", spec.get("name", "?"))
    if class_name not in LAYERS:
        raise ValueError(f"Keras layer {name!r} is a {class_name}, which scanrnn.keras cannot "
                         f"build; it has {', '.join(sorted(LAYERS))}")
    kwargs = layer_kwargs(class_name, config)
    try:
        return LAYERS[class_name](**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot build Keras layer {name!r} ({class_name}): {exc}") from exc


def model_from_keras_config(spec: dict):
    """A scanrnn.keras model (fresh weights) from a Keras 3 model config."""
    kind = spec.get("class_name")
    if kind == "Sequential":
        return _sequential(spec["config"])
    if kind in ("Functional", "Model"):
        return _functional(spec["config"])
    raise ValueError(f"cannot build a Keras {kind!r} model: scanrnn.keras builds Sequential and "
                     f"functional models (a subclassed model has no config to build from)")


def _sequential(config):
    specs = list(config["layers"])
    model = Sequential(name=config.get("name"))
    if specs and specs[0]["class_name"] == "InputLayer":
        first = specs.pop(0)["config"]
        model.add(Input(batch_shape=first["batch_shape"], dtype=_dtype(first.get("dtype")),
                        name=first.get("name")))
    for spec in specs:
        model.add(build_layer(spec))
    if not model.built and config.get("build_input_shape"):
        model.build(config["build_input_shape"])
    return model


def _refs(refs):
    """``[name, node, index]`` or a list of them -> a list of tuples."""
    return [tuple(refs)] if refs and isinstance(refs[0], str) else [tuple(r) for r in refs]


def _functional(config):
    made = {}                     # (layer name, node index, tensor index) -> KerasTensor
    skipped = set()               # outputs of Keras mask operations
    for spec in config["layers"]:
        name = spec.get("name") or spec["config"]["name"]
        if str(spec.get("module", "")).startswith("keras.src.ops"):
            skipped.update((name, k, 0) for k in range(len(spec.get("inbound_nodes", []))))
            continue
        layer = build_layer(spec)
        if spec["class_name"] == "InputLayer":
            made[(name, 0, 0)] = layer._nodes[0].outputs[0]
            continue
        for k, node in enumerate(spec.get("inbound_nodes", [])):
            outputs = _call_node(layer, node, made, skipped)
            for i, t in enumerate(outputs if isinstance(outputs, list) else [outputs]):
                made[(name, k, i)] = t
    inputs = [made[r] for r in _refs(config["input_layers"])]
    outputs = [made[r] for r in _refs(config["output_layers"])]
    single_in = isinstance(config["input_layers"][0], str)
    single_out = isinstance(config["output_layers"][0], str)
    return Model(inputs[0] if single_in else inputs, outputs[0] if single_out else outputs,
                 name=config.get("name"))


def _tensor(item, made, skipped, layer):
    ref = _keras_tensor_history(item)
    if ref is None:
        raise ValueError(f"Keras layer {layer.name!r} is called on {item!r}, which scanrnn.keras "
                         f"cannot rebuild")
    if ref in skipped:
        raise ValueError(f"Keras layer {layer.name!r} takes the output of operation "
                         f"{ref[0]!r}, which scanrnn.keras cannot build")
    return made[ref]


def _call_node(layer, node, made, skipped):
    args, kwargs = node.get("args", []), dict(node.get("kwargs", {}))
    kwargs.pop("training", None)
    kwargs.pop("mask", None)                  # our layers pass their masks on themselves
    first = args[0]
    if isinstance(first, list):
        x = [_tensor(item, made, skipped, layer) for item in first]
    else:
        x = _tensor(first, made, skipped, layer)
    call = {}
    if kwargs.get("initial_state") is not None:
        call["initial_state"] = [_tensor(item, made, skipped, layer)
                                 for item in kwargs.pop("initial_state")]
    kwargs.pop("initial_state", None)
    if kwargs or len(args) > 1:
        raise ValueError(f"Keras layer {layer.name!r} is called with arguments scanrnn.keras "
                         f"does not take: {sorted(kwargs) or args[1:]}")
    return layer(x, **call)
