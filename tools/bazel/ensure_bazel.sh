#!/usr/bin/env bash
# Installs Debian's Bazel (bazel-bootstrap 4.2.3) and the repositories the
# offline bazelrc points at, when `bazel` is missing. Used by `make bazel-test`
# so that it works on a fresh machine. Needs apt-get (and root or sudo).
#
# Usage: tools/bazel/ensure_bazel.sh [BAZEL]   (default: bazel)
set -euo pipefail

bazel=${1:-bazel}
packages=(bazel-bootstrap bazel-platforms bazel-skylib bazel-rules-java)

if command -v "$bazel" >/dev/null 2>&1; then
  exit 0
fi
if [[ "$bazel" != bazel ]]; then
  echo "ensure_bazel.sh: '$bazel' not found (BAZEL=$bazel)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure_bazel.sh: bazel not found and no apt-get; install Bazel" \
       "(tested: Debian's bazel-bootstrap 4.2.3)" >&2
  exit 1
fi
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "ensure_bazel.sh: need root or sudo to apt-get install" \
         "${packages[*]}" >&2
    exit 1
  fi
fi
echo "ensure_bazel.sh: installing ${packages[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q "${packages[@]}"
command -v bazel >/dev/null
