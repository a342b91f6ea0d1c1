"""What every benchmark record carries: the command, the machine, the date."""

import datetime
import json
import os
import platform
import shlex
import sys


def machine():
  """Cores, CPU model and memory of this machine, as a dict."""
  cpu = platform.processor() or "unknown"
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("model name"):
          cpu = line.split(":", 1)[1].strip()
          break
  except OSError:
    pass
  mem_gib = None
  try:
    mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
                    / 2**30, 1)
  except (ValueError, OSError):
    pass
  return dict(cores=os.cpu_count(), cpu=cpu, memory_gib=mem_gib,
              python=platform.python_version(), gpu=None)


def record(**fields):
  """A result record stamped with command, machine and UTC date."""
  return dict(command=" ".join(shlex.quote(a) for a in ["python"] + sys.argv),
              machine=machine(),
              date=datetime.datetime.now(datetime.timezone.utc).isoformat(
                  timespec="seconds"),
              **fields)


def read_records(path):
  """The records already in a results file ([] if it does not exist)."""
  if not os.path.exists(path):
    return []
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def write_records(path, records):
  """Writes a list of records as json (one file per benchmark)."""
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    json.dump(records, f, indent=2)
    f.write("\n")
