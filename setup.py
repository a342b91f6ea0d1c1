"""Installable package for fastbert_tf (pip install -e .)."""
import pathlib

import setuptools

_HERE = pathlib.Path(__file__).parent


def _requirements():
  lines = (_HERE / "requirements.txt").read_text().splitlines()
  return [l.strip() for l in lines if l.strip() and not l.startswith("#")]


setuptools.setup(
    name="fastbert_tf",
    version="0.1.0",
    description="FastBERT (ACL 2020) in TensorFlow/Keras: self-distilled BERT "
    "with per-sample early exit compiled into the graph.",
    long_description=(_HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=setuptools.find_packages(include=["fastbert_tf", "fastbert_tf.*"]),
    python_requires=">=3.10",
    install_requires=_requirements(),
    extras_require={"test": ["pytest"], "torch": ["torch"]},
    entry_points={
        "console_scripts": [
            "fastbert-train=fastbert_tf.train:run",
            "fastbert-flops=fastbert_tf.flops:run",
        ]
    },
)
