"""bench/peers_lib.py: the pure helpers of the peers benchmark (no TF, torch
or ONNX Runtime needed)."""

import collections
import sys

import numpy as np
import pytest

from bench import peers_lib


def test_key_round_trip():
  for args in (("tf", "saved_model_cond", 1, 0.5), ("ort", "fused", 32, None),
               ("torch", "fastbert_unpadded", 1, 0.0)):
    k = peers_lib.key(*args)
    assert peers_lib.parse_key(k) == args
  assert peers_lib.key("tf", "plain", 1) == "tf/plain@b1"
  assert peers_lib.key("tf", "x", 32, 0.1) == "tf/x@b32s0.1"


def test_group_of_puts_full_models_in_their_own_group():
  assert peers_lib.group_of("tf/plain@b32") == (32, None)
  assert peers_lib.group_of("litert/litert@b1s0.8") == (1, 0.8)


def test_batches_keep_every_item_in_order():
  assert peers_lib.batches(list(range(5)), 2) == [[0, 1], [2, 3], [4]]


def test_normalized_entropy():
  u = peers_lib.normalized_entropy([[0.25] * 4, [1.0, 0, 0, 0]])
  np.testing.assert_allclose(u, [1.0, 0.0], atol=1e-12)


def _reference():
  return dict(labels=[0, 1, 2], exit_layers=[1, 6, 2],
              uncertainty=[0.01, 0.9, 0.3])


def test_check_agreement_passes_and_counts():
  out = peers_lib.check_agreement("c", [0, 1, 2], [1, 6, 2], _reference(), 0.5)
  assert out == dict(texts=3, labels_equal=3, exit_layers_equal=3)
  full = peers_lib.check_agreement("full", [0, 1, 2], None, _reference())
  assert full["exit_layers_equal"] is None


def test_check_agreement_names_the_texts_that_differ():
  with pytest.raises(peers_lib.AgreementError, match=r"text 2: .*exit 3 vs 2"):
    peers_lib.check_agreement("c", [0, 1, 2], [1, 6, 3], _reference(), 0.5)
  with pytest.raises(peers_lib.AgreementError, match="text 0: label 3 vs 0"):
    peers_lib.check_agreement("c", [3, 1, 2], None, _reference())
  with pytest.raises(peers_lib.AgreementError, match="2 answers for 3"):
    peers_lib.check_agreement("c", [0, 1], None, _reference())


def test_check_agreement_allows_a_few_texts_when_asked():
  """bf16 contenders: up to max_disagreements texts may differ; their own
  labels come back for their own accuracy."""
  out = peers_lib.check_agreement("bf16", [0, 1, 3], [1, 6, 2], _reference(),
                                  0.5, max_disagreements=1)
  assert out == dict(texts=3, labels_equal=2, exit_layers_equal=3,
                     labels=[0, 1, 3])
  with pytest.raises(peers_lib.AgreementError, match="on 2 of 3 texts"):
    peers_lib.check_agreement("bf16", [0, 1, 3], [1, 5, 2], _reference(),
                              0.5, max_disagreements=1)


def test_schedule_visits_each_group_and_worker_once_per_round():
  groups = {(1, 0.5): {"tf", "torch"}, (1, None): {"ort", "tf"},
            (32, 0.0): {"litert"}}
  order = peers_lib.schedule(groups, ["tf", "torch", "ort", "litert"], 3, 7)
  assert len(order) == 3 * 5
  for r in range(3):
    pairs = collections.Counter((g, w) for rr, g, w in order if rr == r)
    assert pairs == collections.Counter(
        (g, w) for g, ws in groups.items() for w in ws)
  assert order == peers_lib.schedule(groups, [], 3, 7)
  assert order != peers_lib.schedule(groups, [], 3, 8)


def test_medians_and_table():
  sps = {k: 256 / v for k, v in peers_lib.medians(
      {"tf/plain@b1": [2.0, 1.0, 3.0], "tf/loop@b1s0.5": [1.0],
       "tf/loop@b1s0": [4.0]}).items()}
  assert sps["tf/plain@b1"] == 128.0
  rows = peers_lib.table_rows(sps)
  assert rows[0].startswith("| batch | contender | speed 0 |")
  assert "| 1 | tf/loop | 64.0 |  | 256.0 |  |" in rows
  assert "| 1 | tf/plain | 128.0 | 128.0 | 128.0 | 128.0 |" in rows


def test_first_texts_cuts_meta_and_every_reference_list():
  meta = dict(texts=[str(i) for i in range(64)], gold=list(range(64)), x=1)
  reference = {"b1s0": dict(labels=list(range(64)), exit_layers=[6] * 64)}
  m, r = peers_lib.first_texts(meta, reference, 32)
  assert len(m["texts"]) == len(m["gold"]) == 32 and m["x"] == 1
  assert r["b1s0"]["labels"] == list(range(32))
  assert peers_lib.first_texts(meta, reference, 0) == (meta, reference)
  with pytest.raises(ValueError, match="multiple of 32"):
    peers_lib.first_texts(meta, reference, 40)


def test_compare_predictions_counts_what_differs():
  from bench import compare_predictions  # pylint: disable=g-import-not-at-top
  answer = lambda line, label, exit_layer: dict(
      line=line, label=label, exit_layer=exit_layer, flops=10.0 * exit_layer)
  ref = [answer(2, 0, 1), answer(3, 1, 2), answer(4, 1, 6)]
  cand = [answer(2, 0, 1), answer(3, 1, 3), answer(4, 0, 6)]
  row = compare_predictions.compare(ref, cand, gold=[0, 1, 0])
  assert row["reference_accuracy"] == 2 / 3
  assert row["candidate_accuracy"] == 1.0
  assert (row["labels_differ"], row["exit_layers_differ"]) == (1, 1)
  assert row["candidate_mean_exit_layer"] == 10 / 3
  with pytest.raises(ValueError, match="other lines"):
    compare_predictions.compare(ref, cand[::-1], gold=[0, 1, 0])
  with pytest.raises(ValueError, match="3 / 2 answers for 3"):
    compare_predictions.compare(ref, cand[:2], gold=[0, 1, 0])


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
