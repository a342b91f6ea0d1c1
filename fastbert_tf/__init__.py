"""fastbert_tf: FastBERT (Liu et al., ACL 2020) in TensorFlow / Keras 3.

A BERT with a small classifier after every transformer layer, trained by
self-distillation, that answers each input at the first layer confident enough.
"""

__version__ = "0.1.0"
