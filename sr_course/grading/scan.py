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
    "_pytest", "nbval", "nbclient", "jupyter_client", "multiprocessing", "threading", "_thread",
    "pickle", "marshal", "shutil", "inspect", "sqlite3", "_posixsubprocess", "pty", "mmap", "fcntl",
    "resource", "select", "asyncio", "concurrent", "zipfile", "tarfile", "urllib", "http",
    "torchvision.io", "sr_course.checks", "sr_course.grading",
}  # fmt: skip
SUSPICIOUS_CALLS = {
    "exec", "eval", "compile", "__import__", "open", "breakpoint", "globals", "setattr", "delattr",
    "_exit", "system", "kill", "popen", "_getframe", "exit", "register", "remove", "unlink", "rmtree",
    "write_text", "write_bytes", "addaudithook", "from_file", "fromfile", "read_file", "read_image",
    "decode_image", "fork", "fork_exec", "mkfifo", "mknod", "symlink", "link", "dup2", "close",
    "sendto", "connect", "listdir", "scandir", "walk", "glob", "rglob", "iterdir", "chdir",
    "memmap", "load", "loadtxt", "Thread", "start_new_thread", "sleep",
}  # fmt: skip
SUSPICIOUS_ATTRIBUTES = {
    "modules", "__builtins__", "__code__", "__globals__", "__subclasses__", "__bases__", "__base__",
    "__mro__", "f_back", "f_globals", "gi_frame",
}  # fmt: skip


def _imports_and_calls(text: str) -> tuple[set[str], list[tuple[int, str]]]:
    tree = ast.parse(text)
    imports, calls = set(), []
    # Names that imports bind (torch, F, nn, np, ...): assigning to their attributes patches a library.
    bound_by_import = {
        (a.asname or a.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for a in node.names
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ("sr_course." if node.level else "") + (node.module or "")
            imports.add(base.rstrip("."))
            imports |= {f"{base}.{a.name}".lstrip(".") for a in node.names}
        elif isinstance(node, ast.Call):
            # A method call is kept as '.name', a call of a bare name as 'name': the reference's
            # model.eval() must not let a submission's builtin eval() through.
            f = node.func
            if isinstance(f, ast.Name):
                calls.append((node.lineno, f.id))
            elif isinstance(f, ast.Attribute):
                calls.append((node.lineno, "." + f.attr))
        elif isinstance(node, ast.Attribute) and node.attr in SUSPICIOUS_ATTRIBUTES:
            calls.append((node.lineno, node.attr))
        elif isinstance(node, ast.Subscript) and _name(node.value) in ("__builtins__", "builtins"):
            calls.append((node.lineno, "__builtins__"))
        elif isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                dotted = _dotted(target)
                if dotted and dotted.split(".")[0] in bound_by_import and "." in dotted:
                    calls.append((node.lineno, f"patches {dotted}"))
    return imports, calls


def _name(node) -> str | None:
    return node.id if isinstance(node, ast.Name) else None


def _dotted(node) -> str | None:
    """'torch.nn.functional.mse_loss' for an attribute chain on a name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or not parts:
        return None
    return ".".join([node.id, *reversed(parts)])


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
            if any(name == m or name.startswith(m + ".") for m in SUSPICIOUS_MODULES):
                flags.append(f"{rel}: imports {name}")
        for line, name in calls:
            if name.startswith("patches ") and name not in ref_call_names:
                flags.append(f"{rel}:{line}: {name}")
            elif name.lstrip(".") in SUSPICIOUS_CALLS | SUSPICIOUS_ATTRIBUTES and (
                name not in ref_call_names
            ):
                flags.append(f"{rel}:{line}: uses {name.lstrip('.')}")
    return flags
