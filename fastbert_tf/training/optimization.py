"""AdamW with linear warmup and linear decay, sized to one phase."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="fastbert_tf")
class LinearWarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
  """Rises linearly from 0 to `peak` over `warmup_steps`, then falls linearly
  to 0 at `total_steps` (BERT's schedule).

  Each phase gets its own schedule sized to its own steps; the authors' code
  sized phase 2's to phase 1's epochs, so its rate hit 0 early (PAPER.md §3).
  """

  def __init__(self, peak, total_steps, warmup_steps):
    self.peak = float(peak)
    self.total_steps = int(max(total_steps, 1))
    self.warmup_steps = int(min(max(warmup_steps, 0), self.total_steps))

  def __call__(self, step):
    step = ops.cast(step, "float32")
    warmup = ops.cast(max(self.warmup_steps, 1), "float32")
    decay_span = ops.cast(max(self.total_steps - self.warmup_steps, 1), "float32")
    rising = self.peak * step / warmup
    falling = self.peak * (ops.cast(self.total_steps, "float32") - step) / decay_span
    rate = ops.where(step < self.warmup_steps, rising, falling)
    return ops.maximum(rate, 0.0)

  def get_config(self):
    return dict(peak=self.peak, total_steps=self.total_steps,
                warmup_steps=self.warmup_steps)


def make_optimizer(learning_rate, total_steps, warmup_fraction=0.1,
                   weight_decay=0.01):
  """keras.optimizers.AdamW on a LinearWarmupDecay schedule.

  LayerNorm and bias parameters are excluded from weight decay, as in BERT.
  epsilon is 1e-6, the authors' value.
  """
  schedule = LinearWarmupDecay(learning_rate, total_steps,
                               int(round(warmup_fraction * total_steps)))
  optimizer = keras.optimizers.AdamW(learning_rate=schedule,
                                     weight_decay=weight_decay, epsilon=1e-6)
  optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
  return optimizer
