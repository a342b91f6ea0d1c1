"""fastbert_tf.checkpoints."""
