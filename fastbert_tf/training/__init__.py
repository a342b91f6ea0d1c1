"""fastbert_tf.training."""
