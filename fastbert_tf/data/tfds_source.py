"""tensorflow-datasets as a source of TextDatasets (`--data=tfds:NAME`).

tensorflow_datasets is imported inside the functions: it is slow to import and
only this source needs it. Downloading needs network; tests use
`tfds.testing.mock_data`.
"""

from absl import logging

from fastbert_tf.data.rows import DataError
# Shared row checks, so tfds examples are held to the TSV rules.
from fastbert_tf.data.rows import check_label
from fastbert_tf.data.rows import Collector
from fastbert_tf.data.rows import decode

_TFDS_SPLITS = {"train": "train", "dev": "validation", "test": "test"}
_TFDS_PAIRS = (("sentence1", "sentence2"), ("premise", "hypothesis"),
               ("question1", "question2"), ("question", "sentence"))
_TFDS_SINGLES = ("sentence", "text", "description", "content")


def _tfds_fields(name, features):
  """(text_a key, text_b key or None) from a tfds FeaturesDict."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  features = dict(features.items())  # FeaturesDict has no .get()
  texts = [k for k, f in features.items() if isinstance(f, tfds.features.Text)]
  found = ", ".join(f"{k}: {type(f).__name__}" for k, f in features.items())
  if not isinstance(features.get("label"), tfds.features.ClassLabel):
    raise DataError(f"tfds:{name}: no ClassLabel feature named 'label' "
                    f"(features: {found})")
  if len(texts) == 1:
    return texts[0], None
  for a, b in _TFDS_PAIRS:
    if a in texts and b in texts:
      return a, b
  for a in _TFDS_SINGLES:
    if a in texts:
      return a, None
  raise DataError(f"tfds:{name}: cannot tell which Text features to use "
                  f"(features: {found}); expected one of {_TFDS_SINGLES} or a "
                  f"pair {_TFDS_PAIRS}")


def load_tfds(name, split, num_classes=None, skip_bad_rows=False,
              max_bad_rows="1%"):
  """Loads one split of a tensorflow-datasets dataset as a TextDataset.

  Args:
    name: tfds name, e.g. "ag_news_subset" or "glue/sst2".
    split: "train", "dev" (tfds "validation") or "test".
    num_classes: optional int; labels must lie in [0, num_classes).
    skip_bad_rows: bool, see sources.read_tsv.

  Raises:
    DataError: no usable label/text features, missing split, bad examples.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder = tfds.builder(name)
  key_a, key_b = _tfds_fields(name, builder.info.features)
  tfds_split, available = _TFDS_SPLITS[split], list(builder.info.splits)
  if available and "validation" not in available and "train" in available and (
      split in ("train", "dev")):
    # No validation split (e.g. ag_news_subset): hold out the last 10% of
    # train as dev, so training still has a dev set to keep the best epoch.
    tfds_split = "train[:90%]" if split == "train" else "train[90%:]"
    logging.warning("tfds:%s has no validation split; using %s as %s.", name,
                    tfds_split, split)
  # Splits are unknown before download (and under mock_data): let tfds decide.
  elif available and tfds_split not in available:
    raise DataError(f"tfds:{name}: no {tfds_split!r} split for our "
                    f"{split!r}; the builder has {sorted(available)}")
  source = f"tfds:{name}[{tfds_split}]"
  examples = list(tfds.as_numpy(
      tfds.load(name, split=tfds_split, as_supervised=False)))
  # All -1: a split without public labels (GLUE test), i.e. unlabeled text.
  # A -1 among real labels is an error, which check_label reports.
  unlabeled = bool(examples) and all(int(e["label"]) == -1 for e in examples)
  if unlabeled:
    logging.warning("%s: every label is -1; loading it as unlabeled text.",
                    source)
  rows = Collector(source, key_b is not None, num_classes, skip_bad_rows,
                   max_bad_rows)
  for number, ex in enumerate(examples, start=1):
    def parse(ex=ex):
      texts = [decode(ex[k]) for k in (key_a, key_b) if k]
      label = -1 if unlabeled else check_label(int(ex["label"]), num_classes)
      return label, texts[0], texts[1] if key_b else None
    rows.add(number, parse)
  return rows.finish(source, labelled=not unlabeled)
