"""What setup.py declares, read without installing anything (tests)."""

import os
import runpy

import setuptools


def console_scripts(root):
  """setup.py's console scripts, {script name: "module:function"}.

  Runs `root/setup.py` with setuptools.setup replaced by a recorder, so the
  tests read the same entry points pip would install.

  Args:
    root: str, the checkout holding setup.py.

  >>> console_scripts(".")["fastbert-train"]  # from the checkout
  'fastbert_tf.commands.train:run'
  """
  captured = {}
  real = setuptools.setup
  setuptools.setup = captured.update
  try:
    runpy.run_path(os.path.join(root, "setup.py"))
  finally:
    setuptools.setup = real
  return dict(line.split("=") for line in
              captured["entry_points"]["console_scripts"])
