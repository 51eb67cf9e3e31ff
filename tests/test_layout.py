"""The package's layout: rooms by role, imports that flow one way and sit at the top of each file,
and a README map that is the tree."""

import ast
import re
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from sr_course.course import NOTEBOOKS, SPLITS, STUDENT_FILES, TODOS

PACKAGE = Path(__file__).resolve().parents[1] / "sr_course"
README = PACKAGE.parent / "README.md"
# The student kit has no grading/ folder, and its README is the student's (docs/student_README.md).
REFERENCE = (PACKAGE / "grading").is_dir()
reference_only = pytest.mark.skipif(not REFERENCE, reason="the reference's README and grader only")
# Imports of the package inside a function, each with its reason in the code: the sandbox loads
# probes.py on its own, before the kit is on its path; the self-checks, the registries (the config's
# option lists) and the notebooks' live plot import the student's files only when used, so that the notebooks'
# setup cell and each other file's checks still run while one student file does not compile.
LATE_IMPORTS = {
    ("grading/probes.py", "sr_course.checks"),
    ("checks.py", "sr_course.models"),
    ("checks.py", "sr_course.losses"),
    ("checks.py", "sr_course.solver"),
    ("checks.py", "sr_course.components.adversarial"),
    ("components/registry.py", "sr_course.models"),
    ("components/registry.py", "sr_course.losses"),
    ("components/registry.py", "sr_course.components.adversarial"),
    ("notebook.py", "sr_course.evaluation.visualize"),
}
if not REFERENCE:
    LATE_IMPORTS = {item for item in LATE_IMPORTS if not item[0].startswith("grading/")}


# The README's Architecture section, bottom first: a room imports only from its layer and below.
LAYERS = (
    {"__init__", "course", "contract", "errors", "utils", "threads", "vgg19"},
    {"models", "losses", "solver"},
    {"data"},
    {"components", "checkpoint"},
    {"config"},
    {"evaluation"},
    {"train"},
    {"checks", "notebook", "imresize", "metrics", "datasets", "inference"},
    {"grading"},
    {"cli", "__main__"},
)


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _room(rel: str) -> str:
    """A file's room: its folder under sr_course/, or the top-level file itself."""
    parts = rel.split("/")
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def _target(path: Path, node: ast.ImportFrom) -> list[str]:
    """The package modules (paths relative to sr_course/, without .py) an ImportFrom names."""
    if node.level:
        base = path.relative_to(PACKAGE).parent.parts
        base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
        module = "/".join([*base, *(node.module.split(".") if node.module else [])])
    elif node.module and node.module.split(".")[0] == "sr_course":
        module = "/".join(node.module.split(".")[1:])
    else:
        return []
    out = []
    for alias in node.names:
        sub = f"{module}/{alias.name}".strip("/")
        out.append(sub if (PACKAGE / f"{sub}.py").exists() or (PACKAGE / sub).is_dir() else module)
    return out


def _imports(path: Path):
    """(module-level package imports, package imports inside functions) of one file."""
    tree = ast.parse(path.read_text())
    top, late = [], []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            (top if node in tree.body else late).extend(_target(path, node))
        elif isinstance(node, ast.Import) and node not in tree.body:
            late += [a.name.replace(".", "/") for a in node.names if a.name.startswith("sr_course")]
    return top, late


def test_rooms_import_one_way_with_no_circle():
    graph = {}
    for path in _modules():
        rel = path.relative_to(PACKAGE).as_posix()
        top, _ = _imports(path)
        targets = {_room(t.removeprefix("sr_course/") + ".py") for t in top if t}
        graph.setdefault(_room(rel), set()).update(targets - {_room(rel)})
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as err:
        raise AssertionError(f"the rooms import each other in a circle: {err.args[1]}") from None
    assert set(order) <= {room for layer in LAYERS for room in layer}, "a room missing from LAYERS"
    layer_of = {room: k for k, layer in enumerate(LAYERS) for room in layer}
    upward = sorted(
        f"{a} -> {b}" for a, bs in graph.items() for b in bs if layer_of[b] > layer_of[a]
    )
    assert upward == [], "imports that run up the layers of README's Architecture section"


def test_files_import_one_way_with_no_circle():
    graph = {}
    for path in _modules():
        rel = path.relative_to(PACKAGE).with_suffix("").as_posix()
        top, _ = _imports(path)
        graph[rel] = {t for t in top if t and t != rel}
    try:
        list(TopologicalSorter(graph).static_order())
    except CycleError as err:
        raise AssertionError(f"modules import each other in a circle: {err.args[1]}") from None


def test_package_imports_sit_at_the_top_of_each_file():
    late = set()
    for path in _modules():
        rel = path.relative_to(PACKAGE).as_posix()
        source = path.read_text()
        tree = ast.parse(source)
        type_only = [
            n
            for n in tree.body
            if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.get_source_segment(source, n.test)
        ]
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or node in tree.body:
                continue
            if any(node in ast.walk(block) for block in type_only):
                continue  # for type hints only: never runs
            for target in _target(path, node):
                late.add((rel, "sr_course." + target.replace("/", ".")))
    assert late == LATE_IMPORTS


def test_student_files_import_only_torch_and_small_helpers():
    for name in STUDENT_FILES:
        tree = ast.parse((PACKAGE / name).read_text())
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.module in ("utils", "vgg19"), f"{name} imports .{node.module}"


def map_rows() -> list[str]:
    """The README's map: one row per room, from the rooms' own docstrings."""
    rows = ["| room | what it is | files |", "|---|---|---|"]
    rooms = sorted(p for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    for room in rooms:
        doc = ast.get_docstring(ast.parse((room / "__init__.py").read_text())) or ""
        files = ", ".join(
            f"`{p.name}`" for p in sorted(room.glob("*.py")) if p.name != "__init__.py"
        )
        rows.append(f"| `sr_course/{room.name}/` | {_first_sentence(doc)} | {files} |")
    for path in sorted(PACKAGE.glob("*.py")):
        if path.name == "__init__.py":
            continue
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        rows.append(f"| `sr_course/{path.name}` | {_first_sentence(doc)} | |")
    return rows


def _first_sentence(doc: str) -> str:
    """The docstring's first sentence, from its first paragraph ("et al." and "Sec." end none)."""
    text = " ".join(doc.split("\n\n")[0].split())
    match = re.match(r"(.+?)(?<! al)(?<! Sec)\.(\s|$)", text)
    return (match.group(1) if match else text).rstrip(":.").replace("|", "/")


@reference_only
def test_readme_map_is_the_tree():
    text = README.read_text()
    block = text.split("<!-- map: begin -->\n", 1)[1].split("<!-- map: end -->", 1)[0]
    want = "\n".join(map_rows()) + "\n"
    assert block == want, "README's map differs from the tree; paste this block:\n" + want


@reference_only
def test_readme_lists_the_course_manifest():
    text = README.read_text()
    block = text.split("<!-- todos: begin -->\n", 1)[1].split("<!-- todos: end -->", 1)[0]
    rows = ["| TODO | file | builds on | self-check | notebook |", "|---|---|---|---|---|"]
    for todo, entry in TODOS.items():
        rows.append(
            f"| {todo} | `sr_course/{entry.file}.py` | {', '.join(entry.builds_on) or '-'} | "
            f"`checks.{entry.check}()` | {entry.notebook} |"
        )
    want = "\n".join(rows) + "\n"
    assert block == want, "README's TODO table differs from sr_course/course.py; paste:\n" + want
    for name in NOTEBOOKS:
        assert (PACKAGE.parent / "notebooks" / name).is_file()
    for split in SPLITS.values():
        assert split.role in ("train", "test", "sample-train", "sample-test")
