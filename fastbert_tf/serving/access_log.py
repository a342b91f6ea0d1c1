"""The local server's access log: one line per request, failed ones too.

  2026-11-23T10:00:00.123Z peer=ipv4:127.0.0.1:53422 method=Predict
  model=fastbert version=2 signature=serving_default batch=5 speed=0.5
  latency_ms=12.3 status=OK

(one line; wrapped here). Fields not known when a request fails early (an
unknown model has no version) are "-"; a failure adds `error="..."`.
A per-example speed is shown as `min..max` with its count.
"""

import datetime
import json
import sys
import threading

import numpy as np
from absl import logging


def format_speed(speed):
  """Scalar -> "0.5"; [n] -> "0.1..0.8(n=4)" ("-" when unknown)."""
  if speed is None:
    return "-"
  speed = np.asarray(speed, np.float32).reshape(-1)
  if speed.size == 1:
    return f"{float(speed[0]):g}"
  return f"{float(speed.min()):g}..{float(speed.max()):g}(n={speed.size})"


def format_line(peer, method, model, version, signature, batch, speed,
                latency_ms, status, error=None):
  """One access-log line (without the timestamp)."""
  fields = [("peer", peer), ("method", method), ("model", model or "-"),
            ("version", version), ("signature", signature), ("batch", batch),
            ("speed", format_speed(speed)),
            ("latency_ms", f"{latency_ms:.1f}"), ("status", status)]
  line = " ".join(f"{k}={'-' if v is None or v == '' else v}"
                  for k, v in fields)
  if error:
    line += f" error={json.dumps(error, ensure_ascii=False)}"
  return line


class AccessLog:
  """Writes access lines to a file (appending), or to the absl log.

  Args:
    path: str or None; "-" is stderr, None the absl INFO log.
  """

  def __init__(self, path=None):
    self._lock = threading.Lock()
    self._file = None
    if path == "-":
      self._file = sys.stderr
    elif path:
      self._file = open(path, "a", encoding="utf-8")  # pylint: disable=consider-using-with

  def write(self, **fields):
    line = format_line(**fields)
    if self._file is None:
      logging.info("access %s", line)
      return
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")
    with self._lock:
      self._file.write(f"{stamp} {line}\n")
      self._file.flush()

  def close(self):
    if self._file is not None and self._file is not sys.stderr:
      self._file.close()
