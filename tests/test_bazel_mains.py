"""Every test file runs under Bazel too: tools/bazel/defs.bzl makes each
tests/test_*.py its own py_test main, which hands the file to pytest. A file
without that hand-off runs nothing under Bazel, and passes."""

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


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
