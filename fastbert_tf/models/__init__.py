"""fastbert_tf.models."""
