"""The model card: facts, the speed table and the recommended speed."""

import sys

import pytest

from fastbert_tf.reporting import model_card

RESULTS = dict(
    speeds=[dict(speed=0.0, accuracy=0.9, mean_exit_layer=6.0,
                 mean_flops=2.0e9, speedup=1.0, num_samples=1000),
            dict(speed=0.5, accuracy=0.885, mean_exit_layer=2.5,
                 mean_flops=0.8e9, speedup=2.5, num_samples=1000)],
    baseline_flops=2.0e9, num_layers=6, num_classes=2,
    exit_criterion=dict(name="entropy", top_k=2),
    test_source="data/sst2/test.tsv", num_test_samples=1000,
    max_seq_length=128)
FACTS = dict(name="sst2", data="../shared/data/sst2", train_examples=67349,
             init_checkpoint="../shared/models/all-MiniLM-L6-v2",
             phases=[dict(phase="finetune", epochs=2),
                     dict(phase="distill", epochs=1)],
             dtype="mixed_bfloat16", model_dir="runs/sst2")
TARGET = dict(target_accuracy_drop=1.0, target_speedup=None, dev_split="dev",
              chosen_speed=0.5, met=True, message="speed 0.5: drop 0.9",
              test=dict(accuracy=0.885, speedup=2.5, mean_exit_layer=2.5))


def test_card_states_the_facts_and_the_table():
  card = model_card.render(RESULTS, FACTS, ["negative", "positive"])
  assert card.startswith("# FastBERT model card: sst2\n")
  assert "| data | `../shared/data/sst2` (67,349 training examples) |" in card
  assert "| labels | 2 classes: 0 = negative, 1 = positive |" in card
  assert "| backbone | `../shared/models/all-MiniLM-L6-v2`; 6 layers |" in card
  assert "| training | finetune 2 epochs; distill 1 epoch |" in card
  assert "| max sequence length | 128 tokens |" in card
  assert "| dtype policy | `mixed_bfloat16` |" in card
  assert "| full-model FLOPs | 2,000.0M per text (paper unit) |" in card
  assert "## Accuracy and speed on data/sst2/test.tsv (1,000 texts)" in card
  assert "| 0 | 90.00% | +0.00 | 6.00 | 2,000.0 | 1.00x |" in card
  assert "| 0.5 | 88.50% | -1.50 | 2.50 | 800.0 | 2.50x |" in card
  assert "No target speed was chosen" in card
  assert 'Predictor.load("runs/sst2")' in card


def test_recommended_speed_when_a_target_was_met():
  card = model_card.render(RESULTS, FACTS, None, TARGET)
  assert ("**Recommended speed: 0.5** (chosen on dev for at most 1 point "
          "below speed 0): on data/sst2/test.tsv 88.50% at 2.50x, mean exit "
          "layer 2.50.") in card
  assert "speed=0.5)" in card
  assert "| labels | 2 classes: ids 0..1 (no names) |" in card


def test_unmet_target_says_so():
  unmet = dict(TARGET, target_accuracy_drop=None, target_speedup=9.0,
               met=False, chosen_speed=None, test=None,
               message="no swept speed reaches 9x")
  card = model_card.render(RESULTS, FACTS, None, unmet)
  assert ("**No speed met the target** (a speedup of at least 9x on dev): "
          "no swept speed reaches 9x") in card
  assert "Recommended" not in card


def test_scratch_model_with_few_facts():
  card = model_card.render(dict(RESULTS, speeds=[]), {"preset": "quickstart"})
  assert "| backbone | trained from scratch, preset `quickstart`; 6 layers |" \
      in card
  assert "No evaluation recorded." in card
  assert "| data |" not in card and "| training |" not in card


@pytest.mark.parametrize("facts", [{}, FACTS])
def test_card_is_markdown_with_a_trailing_newline(facts):
  card = model_card.render(RESULTS, facts)
  assert card.endswith("```\n") or card.endswith(".\n")
  table_rows = [l for l in card.splitlines() if l.startswith("|")]
  assert all(l.endswith("|") for l in table_rows)


if __name__ == "__main__":
  sys.exit(pytest.main([__file__]))
