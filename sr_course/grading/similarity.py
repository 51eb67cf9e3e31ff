"""Pairs of submissions whose filled-in TODOs look alike: for the instructor, never a verdict.

    fingerprints(text, kit_text, names) -> {hash: line}   one file's work, fingerprinted
    compare(submissions, root) -> [Pair, ...]             every pair of a class, most alike first
    similarity_report(pairs, top) -> str                  the top pairs with their matching lines

How. Each student file is parsed, and only the definitions its TODOs write (course.TODOS' names) are
read. Their syntax tree is flattened into tokens that keep the shape of the code and forget its
surface: every name of a variable or argument becomes one token, constants become their type,
comments and formatting are gone (they are not in the tree), docstrings are dropped; attribute names
stay (nn.Conv2d and .view are choices a student makes). Runs of K tokens are hashed and winnowed
(Schleimer, Wilkerson, Aiken 2003, the algorithm behind MOSS): in each window of W hashes the
smallest is kept, so any match of K + W - 1 tokens is found whatever surrounds it. Fingerprints that
the kit's own file has (the stubs, the provided code around them) are subtracted, so that two
students who wrote nothing do not match. Similarity of a pair: shared fingerprints over the smaller
set (a student who copied half of another's work scores 0.5 even if the rest is their own).
"""

from __future__ import annotations

import ast
import hashlib
import itertools
from dataclasses import dataclass, field
from pathlib import Path

from ..course import STUDENT_FILES, TODOS
from .kit import KIT_ROOT, stubbed

K = 12  # tokens per hashed run: shorter runs match in every solution (a conv, a relu, a return)
W = 8  # winnowing window: every match of K + W - 1 = 19 tokens or more is found
MIN_FINGERPRINTS = 4  # a student with fewer (hardly any work) is left out of the pairs


def _todo_names(rel: str) -> set[str]:
    stem = Path(rel).stem
    return {n for t in TODOS.values() if t.file == stem for n in t.names}


def _tokens(node: ast.AST) -> list[tuple[str, int]]:
    """(token, line) of a definition's tree in source order, its surface forgotten."""
    out: list[tuple[str, int]] = []

    def visit(n: ast.AST) -> None:
        body = getattr(n, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            body = body[1:]  # the docstring
            fields = [(f, body if f == "body" else getattr(n, f, None)) for f in n._fields]
        else:
            fields = list(ast.iter_fields(n))
        line = getattr(n, "lineno", None)
        if isinstance(n, (ast.Name, ast.arg)):
            out.append(("name", line))
            return
        if isinstance(n, ast.Constant):
            out.append((f"const:{type(n.value).__name__}", line))
            return
        if isinstance(n, ast.Attribute):
            visit(n.value)
            out.append((f".{n.attr}", line))
            return
        if isinstance(n, (ast.FunctionDef, ast.ClassDef)):
            out.append((type(n).__name__, line))  # its name is surface too
        elif not isinstance(n, (ast.expr_context, ast.Load, ast.Store)):
            out.append((type(n).__name__, line or (out[-1][1] if out else 0)))
        for _, value in fields:
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, ast.AST):
                    visit(child)

    visit(node)
    return [(t, line or 0) for t, line in out]


def _winnow(tokens: list[tuple[str, int]]) -> dict[int, int]:
    """{fingerprint: first line it starts on} of a token sequence (K-grams, windows of W)."""
    hashes = []
    for i in range(len(tokens) - K + 1):
        gram = "\0".join(t for t, _ in tokens[i : i + K])
        hashes.append((int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=8).digest()), i))
    kept: dict[int, int] = {}
    for start in range(max(1, len(hashes) - W + 1)):
        window = hashes[start : start + W]
        if window:
            h, i = min(window, key=lambda x: (x[0], -x[1]))  # rightmost smallest, as in the paper
            kept.setdefault(h, tokens[i][1])
    return kept


def fingerprints(text: str | None, kit_text: str, names: set[str]) -> dict[int, int]:
    """The fingerprints of one student file's TODO definitions that the kit's file does not have:
    {hash: line in the student's file}. A file that does not parse, or is missing, has none."""
    if not text:
        return {}
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return {}

    def defs(t: ast.Module):
        for node in ast.walk(t):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in names:
                yield node

    own: dict[int, int] = {}
    for node in defs(tree):
        for h, line in _winnow(_tokens(node)).items():
            own.setdefault(h, line)
    kit: set[int] = set()
    for node in defs(ast.parse(kit_text)):
        kit |= set(_winnow(_tokens(node)))
    return {h: line for h, line in own.items() if h not in kit}


@dataclass
class Pair:
    a: str
    b: str
    similarity: float
    shared: int
    lines: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # file: [(line a, b)]


def compare(submissions: list[Path], root: Path = KIT_ROOT) -> list[Pair]:
    """Every pair of submissions, most alike first."""
    kit = {rel: stubbed(root, f"sr_course/{rel}") for rel in STUDENT_FILES}
    prints: dict[str, dict[str, dict[int, int]]] = {}
    for sub in submissions:
        prints[sub.name] = {}
        for rel in STUDENT_FILES:
            path = sub / "sr_course" / rel
            text = path.read_text(errors="replace") if path.is_file() else None
            prints[sub.name][rel] = fingerprints(text, kit[rel], _todo_names(rel))
    pairs = []
    for a, b in itertools.combinations(sorted(prints), 2):
        total_a = sum(len(p) for p in prints[a].values())
        total_b = sum(len(p) for p in prints[b].values())
        if min(total_a, total_b) < MIN_FINGERPRINTS:
            continue
        shared, lines = 0, {}
        for rel in STUDENT_FILES:
            common = set(prints[a][rel]) & set(prints[b][rel])
            shared += len(common)
            if common:
                lines[rel] = sorted({(prints[a][rel][h], prints[b][rel][h]) for h in common})
        pairs.append(Pair(a, b, round(shared / min(total_a, total_b), 3), shared, lines))
    return sorted(pairs, key=lambda p: (-p.similarity, p.a, p.b))


def similarity_report(pairs: list[Pair], top: int = 20) -> str:
    """The top pairs as Markdown: similarity, shared fingerprints, and where their code matches."""
    rows = [
        "# Similar submissions (for an instructor to read; similarity is not proof)",
        "",
        f"Filled-in TODO code compared after names, constants and formatting were normalised and "
        f"the kit's own code subtracted ({K}-token runs, winnowed over {W}). Similarity: shared "
        "fingerprints over the smaller submission's.",
        "",
        "| pair | similarity | shared | matching lines (first's : second's) |",
        "|---|---|---|---|",
    ]
    for p in pairs[:top]:
        where = "; ".join(
            f"{rel} "
            + ", ".join(f"{x}:{y}" for x, y in spans[:6])
            + (" ..." if len(spans) > 6 else "")
            for rel, spans in p.lines.items()
        )
        rows.append(f"| {p.a} / {p.b} | {p.similarity:.2f} | {p.shared} | {where} |")
    if not pairs:
        rows.append("| (fewer than two submissions with work to compare) | | | |")
    return "\n".join(rows) + "\n"
