"""Quiet TensorFlow's C++ start-up logs on machines without a GPU driver.

Every command calls `quiet_tensorflow_logs` before TensorFlow is imported,
and so do Beam workers (beam/inference.py), which load a model in a process
no command started.
"""

import os

# TensorFlow's C++ side logs `E0000 ... cuda_platform.cc ... failed call to
# cuInit: ... CUDA error` when it first looks for a GPU on a machine without
# the NVIDIA driver: an ERROR line that means "no GPU, running on the CPU".
_NVIDIA_DRIVER = ("/proc/driver/nvidia/version", "/dev/nvidia0")


def quiet_tensorflow_logs(environ=None):
  """Hides TensorFlow's C++ INFO/WARNING logs, and on a machine without an
  NVIDIA driver its C++ ERROR logs too (the misleading cuInit line).

  Call before TensorFlow is imported. A TF_CPP_MIN_LOG_LEVEL already set
  (e.g. `TF_CPP_MIN_LOG_LEVEL=0` to see everything) is left alone. Python
  exceptions are unaffected: TensorFlow's real errors still surface as
  exceptions with their messages.

  Args:
    environ: the environment to change (default os.environ).

  Returns:
    the TF_CPP_MIN_LOG_LEVEL now in effect (str).
  """
  environ = os.environ if environ is None else environ
  if "TF_CPP_MIN_LOG_LEVEL" not in environ:
    has_driver = any(os.path.exists(p) for p in _NVIDIA_DRIVER)
    environ["TF_CPP_MIN_LOG_LEVEL"] = "2" if has_driver else "3"
  return environ["TF_CPP_MIN_LOG_LEVEL"]
