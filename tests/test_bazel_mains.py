"""Every test file runs under Bazel too: tools/bazel/defs.bzl makes each
tests/test_*.py its own py_test main, which hands the file to pytest. A file
without that hand-off runs nothing under Bazel, and passes. And the test
tiers agree: a file marked `large` for pytest (module-level pytestmark) is
tagged heavy for Bazel, and only those."""

import glob
import os
import re
import sys

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
MAIN = re.compile(r'^if __name__ == "__main__":\n\s+sys\.exit\(pytest\.main\('
                  r'\[__file__', re.M)


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(
    TESTS, "test_*.py"))), ids=os.path.basename)
def test_file_hands_itself_to_pytest(path):
  with open(path, encoding="utf-8") as f:
    text = f.read()
  assert MAIN.search(text), (
      f"{os.path.basename(path)}: end it with\n"
      'if __name__ == "__main__":\n  sys.exit(pytest.main([__file__, "-q"]))')
  assert re.search(r"^import sys$", text, re.M), path


LARGE = re.compile(r"^pytestmark = .*pytest\.mark\.large", re.M)


def _heavy_in_build():
  """Test names tests/BUILD.bazel tags heavy (`_HEAVY` or a "heavy" tag)."""
  with open(os.path.join(TESTS, "BUILD.bazel"), encoding="utf-8") as f:
    text = f.read()
  heavy = set(re.findall(r'"(test_\w+)": _HEAVY', text))
  for name, body in re.findall(r'"(test_\w+)": \{(.*?)\}', text, re.S):
    if '"heavy"' in body:
      heavy.add(name)
  return heavy


def test_bazel_heavy_tag_follows_the_large_marker():
  marked = set()
  for path in glob.glob(os.path.join(TESTS, "test_*.py")):
    with open(path, encoding="utf-8") as f:
      if LARGE.search(f.read()):
        marked.add(os.path.basename(path)[:-3])
  heavy = _heavy_in_build()
  assert marked, "no file is marked large"
  assert marked == heavy, (f"marked large, not heavy in BUILD: "
                           f"{sorted(marked - heavy)}; heavy, not marked: "
                           f"{sorted(heavy - marked)}")

if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
