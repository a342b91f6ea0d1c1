"""fastbert_tf.layers."""
