"""Macros for fastbert_tf's BUILD.bazel files.

All Python targets run on the virtualenv's interpreter (see
//tools/bazel:venv_python_toolchain), so no pip dependencies appear here.
Bazel's legacy behaviour of adding empty __init__.py files to the runfiles
tree is turned off: it would turn tests/ into a package and change how pytest
names and imports the test modules.
"""

_PY_COMMON = {
    "python_version": "PY3",
    "srcs_version": "PY3",
    "legacy_create_init": False,
}

def py_module_binary(name, module, deps = [], data = [], **kwargs):
    """A py_binary that runs `python -m <module>`.

    Like the console_scripts entry points, the module runs as part of its
    package: the package folder is not put on sys.path as a script's would be.

    Args:
      name: target name, e.g. "train".
      module: dotted module name, e.g. "fastbert_tf.train".
      deps: py_library targets that provide the module.
      data: runtime data (e.g. //configs).
      **kwargs: passed on to py_binary (visibility, tags, ...).
    """
    launcher = name + "_main.py"
    native.genrule(
        name = name + "_main",
        outs = [launcher],
        cmd = ("echo '# Generated: runs python -m %s.' > $@ && " +
               "echo 'import runpy' >> $@ && " +
               "echo 'runpy.run_module(\"%s\", run_name=\"__main__\", " +
               "alter_sys=True)' >> $@") % (module, module),
        visibility = ["//visibility:private"],
    )
    native.py_binary(
        name = name,
        srcs = [launcher],
        main = launcher,
        deps = deps,
        data = data,
        **dict(_PY_COMMON, **kwargs)
    )

def py_script_binaries(srcs, deps = [], data = [], **kwargs):
    """One py_binary per script file, named after it (`bench/x.py` -> :x).

    For folders of stand-alone scripts run as `python folder/x.py` (bench/,
    export/). Call with a glob so that a new script needs no BUILD edit.

    Args:
      srcs: the script files.
      deps: libraries every script may import.
      data: runtime data for every script.
      **kwargs: passed on to each py_binary.
    """
    for src in srcs:
        native.py_binary(
            name = src[:-len(".py")],
            srcs = [src],
            main = src,
            deps = deps,
            data = data,
            **dict(_PY_COMMON, **kwargs)
        )

# pytest writes .pytest_cache next to the rootdir, here the read-only runfiles
# tree: switch the cache off (under Bazel only; the test files are unchanged).
_PYTEST_ENV = {"PYTEST_ADDOPTS": "-p no:cacheprovider"}

def pytest_test(name, src = None, deps = [], data = [], size = "medium",
                tags = [], env = {}, **kwargs):
    """A py_test for a pytest file ending in `sys.exit(pytest.main([__file__]))`.

    The file is its own main: Bazel runs it as a script, and it hands itself
    to pytest, which finds tests/conftest.py and pytest.ini in the runfiles
    tree (pass them in data) just as in the source tree.

    Args:
      name: target name (the file's stem by default).
      src: the test file; name + ".py" by default.
      deps: libraries the test imports.
      data: conftest.py, pytest.ini and any runtime data.
      size: Bazel test size (sets the timeout: medium 300 s, large 900 s).
      tags: Bazel tags, e.g. "heavy", "cpu:2".
      env: extra environment variables.
      **kwargs: passed on to py_test (shard_count, timeout, flaky, ...).
    """
    src = src or name + ".py"
    native.py_test(
        name = name,
        srcs = [src],
        main = src,
        deps = deps,
        data = data,
        size = size,
        tags = tags,
        env = dict(_PYTEST_ENV, **env),
        **dict(_PY_COMMON, **kwargs)
    )

def pytest_suite(name, srcs, overrides = {}, deps = [], data = [], **kwargs):
    """One pytest_test per file in srcs, plus a test_suite `name` of them all.

    Args:
      name: name of the test_suite.
      srcs: test files, normally glob(["test_*.py"]).
      overrides: per-test attributes by target name, e.g.
        {"test_train_cli": {"size": "large", "tags": ["heavy"]}}; "deps",
        "data" and "tags" there are added to the shared ones.
      deps: libraries every test may import.
      data: runtime data every test gets.
      **kwargs: default attributes for every test (size, ...).
    """
    tests = []
    for src in srcs:
        test_name = src[:-len(".py")]
        attrs = dict(kwargs)
        extra = dict(overrides.get(test_name, {}))
        extra_deps = extra.pop("deps", [])
        extra_data = extra.pop("data", [])
        extra_tags = extra.pop("tags", [])
        attrs.update(extra)
        attrs["tags"] = attrs.get("tags", []) + extra_tags
        pytest_test(
            name = test_name,
            src = src,
            deps = deps + extra_deps,
            data = data + extra_data,
            **attrs
        )
        tests.append(":" + test_name)
    unknown = [k for k in overrides if ":" + k not in tests]
    if unknown:
        fail("overrides name tests that do not exist: %s" % unknown)
    native.test_suite(name = name, tests = tests)
