"""fastbert_tf.serving."""
