"""Installable package for fastbert_tf (pip install -e .)."""
import pathlib

import setuptools

_HERE = pathlib.Path(__file__).parent


# requirements.txt pins the environment the project is tested in. Installed
# as a library, the package accepts the protobuf range TensorFlow 2.21 and
# tensorflow-serving-api 2.21 accept, so the beam extra (Apache Beam 2.77
# needs protobuf < 7) resolves beside it: `pip install .[beam]`.
_RANGES = {"protobuf": "protobuf>=6.31.1,<8"}


def _requirements():
  lines = (_HERE / "requirements.txt").read_text().splitlines()
  pins = [l.strip() for l in lines if l.strip() and not l.startswith("#")]
  return [_RANGES.get(p.split("==")[0], p) for p in pins]


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
    extras_require={
        "test": ["pytest"],
        "torch": ["torch"],
        # Offline inference on Beam (fastbert_tf.beam); make test-beam.
        "beam": ["apache-beam[tfrecord]>=2.77,<3"],
    },
    entry_points={
        "console_scripts": [
            "fastbert-train=fastbert_tf.cli:train",
            "fastbert-sweep=fastbert_tf.cli:sweep",
            "fastbert-predict=fastbert_tf.predict:run",
            "fastbert-export=fastbert_tf.cli:export",
            "fastbert-serve=fastbert_tf.cli:serve",
            "fastbert-flops=fastbert_tf.cli:flops",
            "fastbert-beam=fastbert_tf.beam.run:run",
        ]
    },
)
