"""fastbert_tf.data."""
