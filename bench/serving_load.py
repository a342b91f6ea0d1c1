"""Load run of the local server: concurrent clients, bad requests mixed in,
new versions dropped into the base path while it serves; batching off and
on side by side.

  python bench/serving_load.py [--clients=16 --seconds=60 --bad_fraction=0.2]

The model is the quickstart architecture (4 layers, hidden 128) with random,
sharpened classifiers (so exits vary) over a small letters + CJK
vocabulary. By default version 2 (other weights) is dropped half copied
(saved_model.pb without variables/), completed a few seconds later, and a
broken version 3 is dropped near the end. Every good answer is checked
against the SavedModel of the version that answered (label and exit layer
equal, probabilities within 1e-5). The server is a subprocess; its RSS is
read from /proc at start (loaded and warmed), every 0.5 s, and at the end.
"""

import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from bench import common  # pylint: disable=g-import-not-at-top
from bench import serving_load_lib as lib

FLAGS = flags.FLAGS
flags.DEFINE_integer("clients", 16, "Client threads.")
flags.DEFINE_float("seconds", 60.0, "Length of each run.")
flags.DEFINE_float("bad_fraction", 0.2, "Share of bad requests.")
flags.DEFINE_list("modes", ["off", "on", "on", "off"],
                  "Batching off / on, in this order (ABBA: drift cancels).")
flags.DEFINE_list("drops", ["2h:0.02", "2c:0.1", "3b:0.8"],
                  "SPEC:FRACTION of the run at which it is dropped; SPEC is "
                  "N (version N), Nh (N half copied: no variables/), Nc "
                  "(completes N) or Nb (a broken N): see serving_load_lib.")
flags.DEFINE_string("output", "bench/results/serving_load.json", "Records.")
flags.DEFINE_string("staging", None,
                    "Directory for the exported versions, reused when it "
                    "already holds them (default: a temporary one).")


def main(argv):
  del argv
  with tempfile.TemporaryDirectory() as tmp:
    staging = FLAGS.staging or os.path.join(tmp, "staging")
    if not all(os.path.isdir(os.path.join(staging, v)) for v in "124"):
      print("exporting versions 1, 2, 4 ...", flush=True)
      lib.export_versions(staging)
    pool = lib.request_pool(seed=0)
    refs = lib.references(staging, pool, versions=(1, 2, 4))
    records = []
    for mode in FLAGS.modes:
      base = os.path.join(tmp, f"base-{mode}-{len(records)}")
      os.makedirs(base)
      shutil.copytree(os.path.join(staging, "1"), os.path.join(base, "1"))
      drops = [(float(f) * FLAGS.seconds, v) for v, f in
               (d.split(":") for d in FLAGS.drops)]
      load_before = os.getloadavg()[0]
      result = lib.run_load(base, staging, pool, refs, mode == "on",
                            FLAGS.clients, FLAGS.seconds, FLAGS.bad_fraction,
                            drops, os.path.join(tmp, f"access-{len(records)}.log"))
      records.append(common.record(batching=mode, clients=FLAGS.clients,
                                   seconds=FLAGS.seconds,
                                   bad_fraction=FLAGS.bad_fraction,
                                   drops=FLAGS.drops,
                                   load_average_before=load_before,
                                   load_average_after=os.getloadavg()[0],
                                   **result))
      _print(mode, result)
      time.sleep(2)
  common.write_records(FLAGS.output, records)
  wrong = sum(r["wrong_answers"] + r["good_failed"] + r["bad_answered_ok"]
              for r in records)
  return 1 if wrong else 0


def _print(mode, r):
  print(f"batching {mode}: {r['good_ok']} good ok, {r['good_failed']} good "
        f"failed, {r['wrong_answers']} wrong, {r['bad_refused']} bad refused, "
        f"{r['bad_answered_ok']} bad answered OK; "
        f"{r['good_requests_per_second']:.1f} req/s "
        f"{r['examples_per_second']:.1f} examples/s; p50 "
        f"{r['p50_ms']:.1f} ms p99 {r['p99_ms']:.1f} ms; versions "
        f"{r['answers_by_version']} (switch s {r['switch_seconds']}); RSS start {r['rss_start_mb']:.0f} MB "
        f"peak {r['rss_peak_mb']:.0f} end {r['rss_end_mb']:.0f}; "
        f"load failures logged {r['load_failures_logged']}", flush=True)


if __name__ == "__main__":
  app.run(main)
