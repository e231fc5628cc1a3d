"""cljax: JAX/Flax research code for the theory of contrastive learning."""

import pathlib

import setuptools

_HERE = pathlib.Path(__file__).parent
_README = (_HERE / "README.md").read_text(encoding="utf-8")

# Lower bounds only; the exact versions CI tested live in constraints.txt,
# which the README's set-up commands pass to pip.
_INSTALL_REQUIRES = [
    "jax>=0.10.2",
    "jaxlib>=0.10.2",
    "flax>=0.12.8",
    "optax>=0.2.8",
    "orbax-checkpoint>=0.12.8",
    "chex>=0.1.92",
    "ml-collections>=1.1.0",
    "tensorflow-datasets>=4.9.10",
    # The streaming training input pipeline (cljax/data/_stream.py).
    "grain>=0.2.18",
    "numpy>=2.0",
    "absl-py>=2.1",
    # Its bundled 8x8 digits are one of the embedded default datasets.
    "scikit-learn>=1.5",
    # The train loop's progress bar, training-curve plot and TensorBoard
    # event files (tensorboardX needs no TensorFlow).
    "tqdm>=4.66",
    "matplotlib>=3.8",
    "tensorboardX>=2.6",
]

_EXTRAS = {
    # nbclient + ipykernel execute the colabs in the tests; mkdocs and
    # mkdocstrings build the docs site (tests/test_docs.py).
    "test": ["pytest>=8", "pytest-xdist>=3.6", "pytest-timeout>=2.3",
             "scipy>=1.13",
             "nbclient>=0.10", "nbformat>=5.10", "ipykernel>=6.29",
             "mkdocs>=1.6", "mkdocstrings>=1.0", "mkdocstrings-python>=2.0"],
    # Peer benchmarks. torch must be the CPU build: install it as
    # `pip install "torch==2.13.0+cpu"` first (see benchmarks/README.md);
    # constraints.txt pins that build.
    "bench": ["torch>=2.4", "pytorch-metric-learning>=2.8", "psutil>=5.9"],
    # umap-learn draws figure (d) of colabs/luthra.ipynb (PCA without it).
    "colabs": ["jupyter>=1.1", "nbclient>=0.10", "umap-learn>=0.5.7"],
}

setuptools.setup(
    name="cljax",
    version="0.1.0",
    description="Losses, geometry, probes and theory of contrastive learning "
                "in JAX.",
    long_description=_README,
    long_description_content_type="text/markdown",
    packages=setuptools.find_packages(include=["cljax", "cljax.*"]),
    python_requires=">=3.11",
    install_requires=_INSTALL_REQUIRES,
    extras_require=_EXTRAS,
    license="Apache-2.0",
)
