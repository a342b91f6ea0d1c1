"""fastbert_tf.inference."""
