"""Every command line of fastbert_tf, each a thin absl main over the library.

  train.py          fastbert-train     fine-tune, self-distill, evaluate
  sweep.py          fastbert-sweep     accuracy / speedup at every speed
  predict.py        fastbert-predict   classify a file of texts
  flops.py          fastbert-flops     FLOPs per sample, the paper's unit
  export.py         fastbert-export    a TF Serving SavedModel version
  export_tflite.py                     an export converted to TFLite
  serve.py          fastbert-serve     the local TF Serving-compatible server
  client.py                            one gRPC request to a served model
  beam.py           fastbert-beam      classify files on Apache Beam
  flags.py, server_flags.py            the flags they share
  common.py         what every command does first (quiet logs, --help)

Each parses its flags, turns them into arguments or a frozen config, calls
the library and prints; nothing outside this package imports it (the
`python -m fastbert_tf.X` shims aside). Each module's `run()` is its console
script (setup.py) and runs under `python -m fastbert_tf.commands.X` too.
"""

from fastbert_tf import tf_logs

# A process that imports a command is running one: quiet TensorFlow's C++
# start-up logs now, before any command module imports TensorFlow (the
# console scripts, the `python -m` shims and `python -m
# fastbert_tf.commands.X` all pass through here first).
tf_logs.quiet_tensorflow_logs()
