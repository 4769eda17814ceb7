from pathlib import Path

from setuptools import find_packages, setup

# oneDNN 3.2 built with GNU OpenMP (headers + libdnnl.so into sys.prefix): scanrnn.kernels compiles
# its RNN kernels against it at first use. The newer "onednn" wheel needs Intel's SYCL/TBB runtimes.
KERNELS = [f'{name}>=2023.2; platform_system == "Linux" and platform_machine == "x86_64"'
           for name in ("onednn-cpu-gomp", "onednn-devel-cpu-gomp")]

setup(
    name="scanrnn",
    version="0.1.0",
    description="Theano-style recurrent networks on PyTensor: step functions, scan, "
                "compiled training on CPU and GPU (JAX), and a Keras-like layer API.",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    # CI runs the whole suite on Python 3.11, 3.12 and 3.13 (README: "Tested versions").
    python_requires=">=3.11",
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
    ],
    packages=find_packages(include=["scanrnn", "scanrnn.*"]),
    package_data={"scanrnn": ["py.typed", "kernels/*.cc"]},
    # Lower bounds are versions the suite passed with; no upper bounds: no newer release is
    # known to break scanrnn (what differs between PyTensor lines: scanrnn/pytensor_compat.py).
    install_requires=[
        "pytensor>=3.0.7",  # 3.0.7 is the last release for Python 3.11; 3.3.x on 3.12/3.13
        "numpy>=2.0",  # PyTensor 3 needs numpy 2
        # the progress bar of `scanrnn train` and `fit`: tqdm does it better than we would
        "tqdm>=4.62",
        # loss.png of every run: a curve is read faster than metrics.csv (Agg backend, no GUI)
        "matplotlib>=3.8",
    ],
    extras_require={
        "jax": ["jax>=0.4.30", *KERNELS],  # the recurrences on oneDNN's kernels (CPU)
        "kernels": KERNELS,
        "plot": [],  # kept so that `pip install scanrnn[plot]` still works: now a dependency
        # .weights.h5 / .keras files from Keras 3 (scanrnn.keras.load_weights, load_model)
        "keras-io": ["h5py>=3.16"],  # the version the suite ran with
        "dev": ["pytest", "jax>=0.4.30", *KERNELS, "h5py>=3.16", "ruff>=0.17"],
        "bench": ["jax>=0.4.30", *KERNELS, "torch", "keras>=3"],
    },
    entry_points={"console_scripts": ["scanrnn=scanrnn.cli:main"]},
)
