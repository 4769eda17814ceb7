"""Vendor RNN kernels for the JAX backend (oneDNN on the CPU)."""
