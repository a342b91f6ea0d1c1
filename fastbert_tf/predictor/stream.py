"""A file of texts streamed through a Predictor, answers written in input
order: what `fastbert-predict` runs (fastbert_tf.commands.predict).

The file is read in chunks of CHUNK_BATCHES batches, so its size does not
matter; bad lines either stop the run (`path:line: what is wrong`) or are
skipped and counted.
"""

import sys
import time

import numpy as np

from fastbert_tf.data.rows import BadRow
from fastbert_tf.data.rows import DataError
from fastbert_tf.data.rows import empty_text_message
from fastbert_tf.predictor import records as records_lib

CHUNK_BATCHES = 8  # batches read ahead and classified per Predictor call
_SHOWN_BAD_ROWS = 20


class Totals:
  """Running totals of a run: counts, exits, FLOPs, accuracy."""

  def __init__(self):
    self.samples = self.skipped = self.labelled = self.correct = 0
    self.exit_layers = self.flops = 0.0

  def add(self, records, predictions):
    self.samples += len(records)
    self.exit_layers += float(predictions.exit_layer.sum())
    self.flops += float(predictions.flops.sum())
    for record, label in zip(records, predictions.label):
      if record.label is not None:
        self.labelled += 1
        self.correct += int(record.label == label)

  def summary(self, seconds, model_seconds, baseline_flops):
    n = max(self.samples, 1)
    lines = [
        f"{self.samples} samples in {seconds:.1f} s: "
        f"{self.samples / max(seconds, 1e-9):.1f} samples/s "
        f"({model_seconds:.1f} s in the model)",
        f"mean exit layer {self.exit_layers / n:.2f}, mean FLOPs "
        f"{self.flops / n / 1e6:,.1f}M, speedup "
        f"{baseline_flops * self.samples / max(self.flops, 1e-9):.2f}x "
        f"(full model {baseline_flops / 1e6:,.1f}M)"]
    if self.labelled:
      lines.append(f"accuracy {100 * self.correct / self.labelled:.2f}% "
                   f"({self.correct} of {self.labelled} labelled)")
    if self.skipped:
      lines.append(f"skipped {self.skipped} bad lines")
    return "\n".join(lines)


def count_lines(path):
  """Lines in the file at `path` (None for `-`, standard input): the
  progress bar's total."""
  if path == "-":
    return None
  count = 0
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      count += block.count(b"\n")
  return count


def _chunks(items, size):
  chunk = []
  for item in items:
    chunk.append(item)
    if len(chunk) == size:
      yield chunk
      chunk = []
  if chunk:
    yield chunk


def _refuse_empty(predictor, path, chunk, input_format):
  """The chunk with each record whose text the model's tokenizer finds
  empty (the text rule) replaced by a BadRow at its line."""
  good = [i for i, r in enumerate(chunk) if not isinstance(r, BadRow)]
  if predictor.empty_texts is None or not good:
    return chunk
  chunk = list(chunk)
  fields = [("text" if input_format == "jsonl" else "text_a",
             lambda r: r.text)]
  if predictor.text_pair:
    fields.append(("text_b", lambda r: r.text_b))
  for name, field in fields:
    texts = [field(chunk[i]) for i in good]
    for j in np.flatnonzero(predictor.empty_texts(texts)):
      record = chunk[good[j]]
      if not isinstance(record, BadRow):
        chunk[good[j]] = BadRow(path, record.line,
                                empty_text_message(name, texts[j]))
  return chunk


def classify_file(predictor, input_path, output, speed, batch_size,
                  input_format, output_format, skip_bad_rows=False,
                  progress=None, log=sys.stderr):
  """Streams input_path through the predictor into the open `output`.

  Returns:
    (Totals, seconds inside predictor.predict).

  Raises:
    rows.DataError: a bad line without skip_bad_rows (`path:line: ...`).
  """
  parser = records_lib.LineParser(input_format, predictor.text_pair,
                                 predictor.num_classes, predictor.label_names)
  if output_format == "tsv":
    output.write(records_lib.tsv_header(predictor.label_names,
                                        predictor.num_classes) + "\n")
  totals, model_seconds, done = Totals(), 0.0, 0
  records = records_lib.read_records(input_path, parser,
                                     records_lib.open_lines(input_path))
  for chunk in _chunks(records, batch_size * CHUNK_BATCHES):
    chunk = _refuse_empty(predictor, input_path, chunk, input_format)
    bad = [r for r in chunk if isinstance(r, BadRow)]
    for row in bad:
      if not skip_bad_rows:
        raise DataError(f"{row} (--skip_bad_rows skips such lines)")
      if totals.skipped < _SHOWN_BAD_ROWS:
        print(f"skipped {row}", file=log, flush=True)
      totals.skipped += 1
    good = [r for r in chunk if not isinstance(r, BadRow)]
    if good:
      start = time.perf_counter()
      out = predictor.predict(
          [r.text for r in good],
          speed=[speed if r.speed is None else r.speed for r in good],
          text_b=[r.text_b for r in good] if predictor.text_pair else None,
          batch_size=batch_size)
      model_seconds += time.perf_counter() - start
      output.write("".join(
          records_lib.format_answer(records_lib.answer(r, out, i),
                                    output_format) + "\n"
          for i, r in enumerate(good)))
      totals.add(good, out)
    done = max(r.line for r in chunk)
    if progress is not None:
      progress.update(done)
  return totals, model_seconds
