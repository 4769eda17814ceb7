"""The version of scanrnn (one place; setup.py repeats it for packaging)."""

__version__ = "0.1.0"
