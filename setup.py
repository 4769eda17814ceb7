from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="scanrnn",
    version="0.1.0",
    description="Theano-style recurrent networks on PyTensor: step functions, scan, "
                "compiled training on CPU and GPU (JAX), and a Keras-like layer API.",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["scanrnn", "scanrnn.*"]),
    package_data={"scanrnn": ["py.typed"]},
    install_requires=[
        "pytensor>=3.0.7",
        "numpy",
        # the progress bar of `scanrnn train` and `fit`: tqdm does it better than we would
        "tqdm",
    ],
    extras_require={
        "jax": ["jax>=0.4.30"],
        "plot": ["matplotlib"],
        "dev": ["pytest", "jax>=0.4.30"],
        "bench": ["jax>=0.4.30", "torch", "keras>=3"],
    },
    entry_points={"console_scripts": ["scanrnn=scanrnn.cli:main"]},
)
