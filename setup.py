"""Installable package for fastbert_tf (pip install -e .)."""
import pathlib

import setuptools

_HERE = pathlib.Path(__file__).parent


# requirements.txt pins the one environment the project is tested in; a
# library installed beside other packages takes compatible ranges instead:
# TensorFlow's family within its minor version (tensorflow-text's ops are
# built against one TF minor), the rest within their major (minor for 0.x).
# protobuf admits 6.31.1+ so the beam extra (Apache Beam 2.77 needs protobuf
# < 7) resolves beside it: `pip install .[beam]`.
_INSTALL_REQUIRES = [
    "tensorflow>=2.21,<2.22",
    "tensorflow-text>=2.21,<2.22",
    "keras>=3.15,<4",
    "keras-hub>=0.32,<0.33",
    "tensorflow-serving-api>=2.21,<2.22",
    "tensorflow-datasets>=4.9.10,<5",
    "importlib_resources>=6",
    "absl-py>=2.1,<3",
    "tensorboard>=2.21,<2.22",
    "ai-edge-litert>=2.3,<3",
    "grpcio>=1.80,<2",
    "numpy>=2,<3",
    "protobuf>=6.31.1,<8",
    "safetensors>=0.7,<1",
    "matplotlib>=3.8,<4",
    "snownlp>=0.12.3,<0.13",
    "sentencepiece>=0.2,<0.3",
]


def _pinned_names():
  lines = (_HERE / "requirements.txt").read_text().splitlines()
  return {l.split("==")[0].strip().lower() for l in lines
          if l.strip() and not l.startswith("#")}


# Every pinned package has a range, and nothing else is required.
assert _pinned_names() == {r.split(">")[0].split("<")[0].lower()
                           for r in _INSTALL_REQUIRES}, "setup.py ranges"


setuptools.setup(
    name="fastbert_tf",
    version="0.1.0",
    description="FastBERT (ACL 2020) in TensorFlow/Keras: self-distilled BERT "
    "with per-sample early exit compiled into the graph.",
    long_description=(_HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=setuptools.find_packages(include=["fastbert_tf", "fastbert_tf.*"]),
    python_requires=">=3.10",
    install_requires=_INSTALL_REQUIRES,
    extras_require={
        "test": ["pytest"],
        "torch": ["torch"],
        # Offline inference on Beam (fastbert_tf.beam); make test-beam.
        "beam": ["apache-beam[tfrecord]>=2.77,<3"],
    },
    entry_points={
        "console_scripts": [
            "fastbert-train=fastbert_tf.commands.train:run",
            "fastbert-sweep=fastbert_tf.commands.sweep:run",
            "fastbert-predict=fastbert_tf.commands.predict:run",
            "fastbert-export=fastbert_tf.commands.export:run",
            "fastbert-serve=fastbert_tf.commands.serve:run",
            "fastbert-flops=fastbert_tf.commands.flops:run",
            "fastbert-beam=fastbert_tf.commands.beam:run",
        ]
    },
)
