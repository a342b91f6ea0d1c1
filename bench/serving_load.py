"""Load run of the local server: concurrent clients, bad requests mixed in,
new versions dropped into the base path while it serves; batching off and
on side by side.

  python bench/serving_load.py [--clients=16 --seconds=60 --bad_fraction=0.2]

The model is the quickstart architecture (4 layers, hidden 128) with random,
sharpened classifiers (so exits vary) over a small letters + CJK
vocabulary; versions 2 and 4 have other weights, version 3 is dropped half
copied (saved_model.pb without variables/). Every good answer is checked
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
flags.DEFINE_list("modes", ["off", "on"], "Batching off / on, in this order.")
flags.DEFINE_list("drops", ["2:0.33", "3:0.5", "4:0.67"],
                  "VERSION:FRACTION of the run at which it is dropped.")
flags.DEFINE_string("output", "bench/results/serving_load.json", "Records.")


def main(argv):
  del argv
  with tempfile.TemporaryDirectory() as tmp:
    staging = os.path.join(tmp, "staging")
    print("exporting versions 1, 2, 4 ...", flush=True)
    lib.export_versions(staging)
    pool = lib.request_pool(seed=0)
    refs = lib.references(staging, pool, versions=(1, 2, 4))
    records = []
    for mode in FLAGS.modes:
      base = os.path.join(tmp, f"base-{mode}")
      os.makedirs(base)
      shutil.copytree(os.path.join(staging, "1"), os.path.join(base, "1"))
      drops = [(float(f) * FLAGS.seconds, int(v)) for v, f in
               (d.split(":") for d in FLAGS.drops)]
      result = lib.run_load(base, staging, pool, refs, mode == "on",
                            FLAGS.clients, FLAGS.seconds, FLAGS.bad_fraction,
                            drops, os.path.join(tmp, f"access-{mode}.log"))
      records.append(common.record(batching=mode, clients=FLAGS.clients,
                                   seconds=FLAGS.seconds,
                                   bad_fraction=FLAGS.bad_fraction,
                                   drops=FLAGS.drops, **result))
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
        f"{r['answers_by_version']}; RSS start {r['rss_start_mb']:.0f} MB "
        f"peak {r['rss_peak_mb']:.0f} end {r['rss_end_mb']:.0f}; "
        f"load failures logged {r['load_failures_logged']}", flush=True)


if __name__ == "__main__":
  app.run(main)
