"""A model directory's human-readable summary (MODEL_CARD.md), as markdown.

`render` is a pure function of what a training run knows: its results.json,
a few facts about how it was trained, the label names and (optionally) the
speed a sweep chose for a target. The training runner writes its output
beside results.json.
"""

import math

CARD_FILE = "MODEL_CARD.md"


def render(results, facts, label_names=None, target=None):
  """The model card of one training run.

  Args:
    results: dict, results.json (speeds: records with speed, accuracy in
      [0, 1], mean_exit_layer, mean_flops, speedup; baseline_flops,
      num_layers, num_classes, exit_criterion, test_source,
      num_test_samples, max_seq_length).
    facts: dict of what the run was built from; every key optional:
      name (str), data (str, the --data source), train_examples (int),
      init_checkpoint (str), backbone (str, e.g. "all-MiniLM-L6-v2"),
      preset (str), phases (list of {"phase": str, "epochs": int}),
      max_seq_length (int), dtype (str, the dtype policy).
    label_names: list of str (class i is label_names[i]) or None (ids).
    target: dict or None, a sweep's `target` (target_accuracy_drop or
      target_speedup, dev_split, chosen_speed, met, message, test).

  Returns:
    str, markdown ending in a newline.

  Examples:

  >>> card = render({"speeds": [{"speed": 0.0, "accuracy": 0.9,
  ...                            "mean_exit_layer": 4.0, "mean_flops": 1e8,
  ...                            "speedup": 1.0}],
  ...                "baseline_flops": 1e8, "num_layers": 4,
  ...                "num_classes": 2}, {"data": "quickstart"}, ["neg", "pos"])
  >>> card.splitlines()[0]
  '# FastBERT model card'
  """
  name = facts.get("name")
  lines = [f"# FastBERT model card{': ' + name if name else ''}", "",
           "A BERT with a classifier after every transformer layer, trained "
           "by self-distillation; each text is answered by the first layer "
           "confident enough. `speed` (0 to 1) is the exit threshold: 0 runs "
           "the full model, higher answers earlier, faster and a little less "
           "accurately.", "", "| | |", "|---|---|"]
  lines += [f"| {k} | {v} |" for k, v in _facts_rows(results, facts,
                                                      label_names)]
  lines += ["", *_speed_table(results), "", *_recommendation(target, results),
            "", "## Use", "", "```python", "from fastbert_tf import Predictor",
            "", f'predictor = Predictor.load("{facts.get("model_dir", ".")}")',
            f"out = predictor.predict([\"some text\"], speed="
            f"{_recommended_speed(target)})",
            "out.label_name, out.probabilities, out.exit_layer, out.flops",
            "```", "", "or `fastbert-predict --model_dir=... --input=texts.txt "
            "--output=answers.jsonl --speed=...`."]
  return "\n".join(lines) + "\n"


def _facts_rows(results, facts, label_names):
  rows = []
  if facts.get("data"):
    count = facts.get("train_examples")
    rows.append(("data", f"`{facts['data']}`" + (
        f" ({count:,} training examples)" if count else "")))
  k = results.get("num_classes") or (len(label_names) if label_names else 0)
  rows.append(("labels", f"{k} classes: " + (
      ", ".join(f"{i} = {n}" for i, n in enumerate(label_names))
      if label_names else f"ids 0..{k - 1} (no names)")))
  backbone = facts.get("backbone") or facts.get("init_checkpoint")
  what = (f"`{backbone}`" if backbone else "trained from scratch")
  if facts.get("preset"):
    what += f", preset `{facts['preset']}`"
  if results.get("num_layers"):
    what += f"; {results['num_layers']} layers"
  rows.append(("backbone", what))
  phases = facts.get("phases") or []
  if phases:
    rows.append(("training", "; ".join(
        f"{p['phase']} {p['epochs']} epoch{'s' if p['epochs'] != 1 else ''}"
        for p in phases)))
  length = facts.get("max_seq_length") or results.get("max_seq_length")
  if length:
    rows.append(("max sequence length", f"{length} tokens"))
  if facts.get("dtype"):
    rows.append(("dtype policy", f"`{facts['dtype']}`"))
  criterion = (results.get("exit_criterion") or {}).get("name", "entropy")
  rows.append(("exit criterion", criterion))
  if results.get("baseline_flops"):
    rows.append(("full-model FLOPs", f"{results['baseline_flops'] / 1e6:,.1f}M"
                 " per text (paper unit)"))
  return rows


def _speed_table(results):
  records = results.get("speeds") or []
  source = results.get("test_source", "the test split")
  count = results.get("num_test_samples")
  head = [f"## Accuracy and speed on {source}" + (
      f" ({count:,} texts)" if count else ""), ""]
  if not records:
    return head + ["No evaluation recorded."]
  base = next((r["accuracy"] for r in records if r["speed"] == 0.0), None)
  head += ["| speed | accuracy | vs speed 0 | mean exit layer | MFLOPs | "
           "speedup |", "|---|---|---|---|---|---|"]
  for r in records:
    drop = ("" if base is None else
            f"{100 * (r['accuracy'] - base):+.2f}")
    head.append(f"| {r['speed']:g} | {100 * r['accuracy']:.2f}% | {drop} | "
                f"{r['mean_exit_layer']:.2f} | {r['mean_flops'] / 1e6:,.1f} | "
                f"{r['speedup']:.2f}x |")
  return head


def _recommendation(target, results):
  if not target:
    return ["No target speed was chosen. Pick the largest speed whose "
            "accuracy you accept, or let a sweep choose on the dev split: "
            "`fastbert-sweep --model_dir=... --target_accuracy_drop=1`."]
  drop = target.get("target_accuracy_drop")
  goal = (f"at most {drop:g} point{'' if drop == 1 else 's'} below speed 0"
          if target.get("target_accuracy_drop") is not None else
          f"a speedup of at least {target.get('target_speedup'):g}x")
  if not target.get("met"):
    return [f"**No speed met the target** ({goal} on "
            f"{target.get('dev_split', 'dev')}): "
            f"{target.get('message', '')}".rstrip(": ")]
  line = (f"**Recommended speed: {target['chosen_speed']:g}** (chosen on "
          f"{target.get('dev_split', 'dev')} for {goal})")
  test = target.get("test")
  if test:
    line += (f": on {results.get('test_source', 'test')} "
             f"{100 * test['accuracy']:.2f}% at {test['speedup']:.2f}x, mean "
             f"exit layer {test['mean_exit_layer']:.2f}")
  return [line + "."]


def _recommended_speed(target):
  speed = target and target.get("met") and target.get("chosen_speed")
  return f"{speed:g}" if isinstance(speed, (int, float)) and not (
      math.isnan(speed)) else "0.5"
