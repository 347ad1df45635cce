"""The documentation keeps up with the code.

* every public name of ``ember.xcs`` (``__all__``), of ``ember.api.decorators``
  and of ``ember.xcs.bench`` (``__all__``) appears, backticked, in
  docs/api.md;
* the type stubs ``bindings/python/ember/xcs/_xcs.pyi`` declare every public
  attribute of the extension module and every public method / property of
  ``Array``, ``Graph`` and ``TaskGraph``, and declare nothing the extension
  lacks; ``ember/py.typed`` exists and the wheel installs ``*.pyi`` files;
* every ``XCSError`` subclass exported by ``ember.xcs.errors`` (and the bench
  client's ``ModelError``) has an entry in docs/errors.md;
* docs/dataflow.svg is well-formed SVG, docs/architecture.md shows it, and the
  repository paths the two pages name exist.

The documents are read from the source tree (this file's repository), not
from the build tree the package is imported from.
"""
from __future__ import annotations

import ast
import inspect
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import ember.api.decorators as decorators
import ember.xcs as xcs
import ember.xcs.errors as xcs_errors
from ember.xcs import _xcs

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
STUB = ROOT / "bindings" / "python" / "ember" / "xcs" / "_xcs.pyi"
STUB_CLASSES = ("Array", "Graph", "TaskGraph")


def _read(path: Path) -> str:
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing"
    return path.read_text(encoding="utf-8")


def _backticked(text: str) -> str:
    """The contents of every code span (which may cross lines) and ``` fence in a markdown text, joined."""
    fences = re.findall(r"```.*?```", text, flags=re.S)
    rest = re.sub(r"```.*?```", "", text, flags=re.S)
    doubles = re.findall(r"``(.+?)``", rest, flags=re.S)  # ``spans with `backticks` inside``
    rest = re.sub(r"``(.+?)``", "", rest, flags=re.S)
    spans = re.findall(r"`([^`]+)`", rest)
    return "\n".join(fences + doubles + spans)


def _mentions(code: str, name: str) -> bool:
    """True when `name` appears in code as a whole identifier (``ember.xcs.numpy`` mentions ``numpy``)."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", code) is not None


# ---------------------------------------------------------------- (a) api.md


def _public_api_names():
    import ember.xcs.bench as bench

    names = [(f"ember.xcs.{n}", n) for n in xcs.__all__]
    names += [(f"ember.api.decorators.{n}", n) for n in decorators.__all__]
    names += [(f"ember.xcs.bench.{n}", n) for n in bench.__all__]
    return names


def test_decorators_all_lists_the_three_marks():
    assert {"mark_orchestration", "mark_tensor", "mark_hybrid"} <= set(decorators.__all__)


def test_every_public_name_is_in_api_md():
    code = _backticked(_read(DOCS / "api.md"))
    missing = [qual for qual, name in _public_api_names() if not _mentions(code, name)]
    assert not missing, f"docs/api.md does not mention (in backticks): {missing}"


# ---------------------------------------------------------------- (b) the stubs


def _stub_tree() -> ast.Module:
    return ast.parse(_read(STUB), filename=str(STUB))


def _declared(body) -> set[str]:
    """Names a stub body declares: functions, classes, (annotated) assignments."""
    out = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out.add(node.target.id)
        elif isinstance(node, ast.Assign):
            out.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return out


def _stub_classes(tree: ast.Module) -> dict[str, ast.ClassDef]:
    return {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}


def _runtime_public(obj) -> set[str]:
    return {n for n in dir(obj) if not (n.startswith("__") and n.endswith("__"))}


def test_stub_declares_every_module_attribute():
    declared = _declared(_stub_tree().body)
    missing = sorted(_runtime_public(_xcs) - declared)
    assert not missing, f"bindings/python/ember/xcs/_xcs.pyi lacks module attributes {missing}"


def test_stub_declares_nothing_the_module_lacks():
    tree = _stub_tree()
    extra = [n.name for n in tree.body
             if isinstance(n, ast.FunctionDef) and not hasattr(_xcs, n.name)]
    extra += [n.name for n in tree.body
              if isinstance(n, ast.ClassDef) and not n.name.startswith("_") and not hasattr(_xcs, n.name)]
    assert not extra, f"_xcs.pyi declares names the extension does not have: {extra}"


@pytest.mark.parametrize("cls_name", STUB_CLASSES)
def test_stub_class_declares_every_public_member(cls_name):
    classes = _stub_classes(_stub_tree())
    assert cls_name in classes, f"_xcs.pyi has no class {cls_name}"
    declared = _declared(classes[cls_name].body)
    runtime = {n for n in dir(getattr(_xcs, cls_name)) if not n.startswith("_")}
    missing = sorted(runtime - declared)
    assert not missing, f"_xcs.pyi: class {cls_name} lacks {missing}"


@pytest.mark.parametrize("cls_name", STUB_CLASSES)
def test_stub_class_members_exist(cls_name):
    node = _stub_classes(_stub_tree())[cls_name]
    cls = getattr(_xcs, cls_name)
    extra = sorted(n for n in _declared(node.body) if not hasattr(cls, n))
    assert not extra, f"_xcs.pyi: class {cls_name} declares {extra}, which {cls_name} does not have"


@pytest.mark.parametrize("cls_name", STUB_CLASSES)
def test_stub_properties_match_runtime_descriptors(cls_name):
    """A member declared with @property is a data descriptor at run time, and vice versa."""
    node = _stub_classes(_stub_tree())[cls_name]
    cls = getattr(_xcs, cls_name)
    stub_props = {f.name for f in node.body if isinstance(f, ast.FunctionDef)
                  and any(isinstance(d, ast.Name) and d.id == "property" for d in f.decorator_list)}
    runtime_props = {n for n in dir(cls) if not n.startswith("_")
                     and inspect.isdatadescriptor(inspect.getattr_static(cls, n))}
    assert stub_props == runtime_props, (f"_xcs.pyi: class {cls_name}: @property in the stub but not a descriptor: "
                                         f"{sorted(stub_props - runtime_props)}; a descriptor without @property: "
                                         f"{sorted(runtime_props - stub_props)}")


def test_stub_exceptions_mirror_the_hierarchy():
    classes = _stub_classes(_stub_tree())
    for name in dir(_xcs):
        obj = getattr(_xcs, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            bases = [b.id for b in classes[name].bases if isinstance(b, ast.Name)]
            assert bases == [b.__name__ for b in obj.__bases__], name


def test_py_typed_marker_and_wheel_rule():
    assert (ROOT / "bindings" / "python" / "ember" / "py.typed").is_file()
    cmake = _read(ROOT / "bindings" / "python" / "CMakeLists.txt")
    assert 'PATTERN "*.pyi"' in cmake and 'PATTERN "py.typed"' in cmake


# ---------------------------------------------------------------- (c) errors.md


def _error_classes():
    out = []
    for name in xcs_errors.__all__:
        obj = getattr(xcs_errors, name)
        if isinstance(obj, type) and issubclass(obj, xcs.XCSError):
            out.append(obj)
    return out


def test_errors_module_exports_the_whole_hierarchy():
    names = {c.__name__ for c in _error_classes()}
    assert {"XCSError", "XCSShapeError", "XCSValueError", "XCSTypeError", "XCSIndexError",
            "XCSZeroDivisionError", "XCSMemoryError", "XCSTracerError", "XCSExecutionError",
            "XCSDeviceError"} <= names


def test_every_error_class_is_in_errors_md():
    from ember.xcs.bench.client import ModelError

    code = _backticked(_read(DOCS / "errors.md"))
    classes = _error_classes() + [ModelError]
    missing = [c.__name__ for c in classes if not _mentions(code, c.__name__)]
    assert not missing, f"docs/errors.md does not document {missing}"


def test_errors_md_has_a_section_per_area():
    headings = [h.lower() for h in re.findall(r"^#{2,3} (.+)$", _read(DOCS / "errors.md"), flags=re.M)]
    for area in ("creation", "shapes", "dtypes", "indexing", "reductions", "matmul", "tracing", "config",
                 "memory", "orchestration", "grad", "vmap", "scan", "devices", "model client"):
        assert any(area in h for h in headings), f"docs/errors.md has no section about {area!r}"


# ---------------------------------------------------------------- (d) architecture.md and dataflow.svg


def test_dataflow_svg_is_well_formed():
    root = ET.parse(DOCS / "dataflow.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    for word in ("Trace", "IR graph", "Passes", "Fusion plan", "Run", "CPU backend", "task graph", "CUDA"):
        assert word in texts, f"dataflow.svg has no box about {word!r}"


def test_architecture_md_shows_the_picture():
    text = _read(DOCS / "architecture.md")
    assert "](dataflow.svg)" in text
    assert "```" in text  # the ASCII version


_PATH = re.compile(r"(?<![\w/.-])((?:src|bindings|tests|benchmarks|docs|scripts|examples)/[\w./*-]*[\w*])")


@pytest.mark.parametrize("doc", ["architecture.md", "errors.md", "dataflow.svg"])
def test_named_repository_paths_exist(doc):
    text = _read(DOCS / doc)
    paths = {p for p in _PATH.findall(text) if "*" not in p}  # globs such as tests/c/test_*.c name no one file
    assert paths
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"docs/{doc} names paths that do not exist: {missing}"
