"""Layer classes by name, for rebuilding a model from its JSON config.

Each layer class that a config may name registers itself with :func:`register`
where it is defined; :func:`serialize` and :func:`deserialize` turn a layer into
``{"class_name": ..., "config": {...}}`` (``get_config``'s format) and back.  This
module imports nothing of the package, so every layer module (wrappers included)
can use it without importing the others.
"""

from __future__ import annotations

#: ``{class name: layer class}``, filled as the layer modules are imported.
LAYERS: dict[str, type] = {}


def register(cls):
    """Class decorator: make ``cls`` known to :func:`deserialize` by its class name."""
    LAYERS[cls.__name__] = cls
    return cls


def serialize(layer) -> dict:
    """``{"class_name": ..., "config": layer.get_config()}``."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(spec: dict):
    """A layer from ``{"class_name": ..., "config": {...}}`` (:func:`serialize`'s format)."""
    name = spec.get("class_name")
    if name not in LAYERS:
        raise ValueError(f"unknown layer class {name!r} in the model config; known: "
                         f"{', '.join(sorted(LAYERS))}")
    return LAYERS[name].from_config(dict(spec.get("config", {})))
