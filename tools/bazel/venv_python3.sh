#!/bin/sh
# Python interpreter used by Bazel's py_binary / py_test targets (the
# py_runtime in tools/bazel/BUILD.bazel). Bazel does not build Python or
# TensorFlow: this hands over to the project's virtualenv.
#
# Order: $FASTBERT_PYTHON (make bazel-test pins it through --test_env), then
# <workspace>/.venv/bin/python (found by resolving this script's runfiles
# symlink back to the source tree), then python3 on PATH.
if [ -n "${FASTBERT_PYTHON:-}" ] && [ -x "${FASTBERT_PYTHON}" ]; then
  exec "${FASTBERT_PYTHON}" "$@"
fi
self=$(readlink -f "$0" 2>/dev/null || echo "$0")
root=$(cd "$(dirname "$self")/../.." 2>/dev/null && pwd)
if [ -n "$root" ] && [ -x "$root/.venv/bin/python" ]; then
  exec "$root/.venv/bin/python" "$@"
fi
exec python3 "$@"
