"""The static scan: what a submission's files import or call beyond what the reference files use.

It only raises flags for the instructor (a flagged submission's notebook points wait for a look);
grading's safety rests on the sandbox, not on this.
"""

from __future__ import annotations

import ast
from pathlib import Path

from .kit import KIT_ROOT

# Modules and calls a submission has no business with (beyond what the reference file itself uses).
SUSPICIOUS_MODULES = {
    "atexit", "subprocess", "socket", "ctypes", "signal", "builtins", "importlib", "gc", "pytest",
    "_pytest", "nbval", "nbclient", "jupyter_client", "multiprocessing", "threading", "pickle",
    "marshal", "shutil", "inspect", "sr_course.checks", "sr_course.grading", "sr_course.grading.grader",
    "sr_course.grading.sandbox", "sr_course.grading.probes", "sr_course.grading.release",
    "sr_course.grading.todos", "sr_course.grading.kit",
}  # fmt: skip
SUSPICIOUS_CALLS = {
    "exec", "eval", "compile", "__import__", "open", "breakpoint", "globals", "setattr", "delattr",
    "_exit", "system", "kill", "popen", "_getframe", "exit", "register", "remove", "unlink", "rmtree",
    "write_text", "write_bytes", "addaudithook",
}  # fmt: skip
SUSPICIOUS_ATTRIBUTES = {"modules", "__builtins__", "__code__", "__globals__"}


def _imports_and_calls(text: str) -> tuple[set[str], list[tuple[int, str]]]:
    tree = ast.parse(text)
    imports, calls = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ("sr_course." if node.level else "") + (node.module or "")
            imports.add(base.rstrip("."))
            imports |= {f"{base}.{a.name}".lstrip(".") for a in node.names}
        elif isinstance(node, ast.Call):
            f = node.func
            name = (
                f.id
                if isinstance(f, ast.Name)
                else f.attr
                if isinstance(f, ast.Attribute)
                else None
            )
            if name:
                calls.append((node.lineno, name))
        elif isinstance(node, ast.Attribute) and node.attr in SUSPICIOUS_ATTRIBUTES:
            calls.append((node.lineno, node.attr))
    return imports, calls


def scan(files: dict[str, str], root: Path = KIT_ROOT) -> list[str]:
    """Flags for what a submission's files import or call beyond what the reference files use."""
    flags = []
    for rel, text in files.items():
        if text is None:
            continue
        try:
            imports, calls = _imports_and_calls(text)
        except SyntaxError:
            continue  # graded as a compile error
        ref_imports, ref_calls = _imports_and_calls((root / rel).read_text())
        ref_call_names = {name for _, name in ref_calls}
        for name in sorted(imports - ref_imports):
            if name in SUSPICIOUS_MODULES or name.split(".")[0] in SUSPICIOUS_MODULES:
                flags.append(f"{rel}: imports {name}")
        for line, name in calls:
            if name in SUSPICIOUS_CALLS | SUSPICIOUS_ATTRIBUTES and name not in ref_call_names:
                flags.append(f"{rel}:{line}: uses {name}")
    return flags
