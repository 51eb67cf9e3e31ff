"""The command line's table of commands, and what running one of them imports."""

import json
import subprocess
import sys
from pathlib import Path

from sr_course.cli import COMMANDS, HAS_GRADER, build_parser

HEAVY = ("torchvision", "matplotlib.pyplot", "nbformat", "jsonschema")


def _commands(parser) -> list[str]:
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    return list(sub.choices)


def test_the_table_lists_every_command_its_modules_register_in_order():
    assert _commands(build_parser()) == list(COMMANDS)
    assert ("grade" in COMMANDS) == HAS_GRADER
    for name in COMMANDS:
        assert _commands(build_parser(name)) == [
            n for n in COMMANDS if COMMANDS[n] == COMMANDS[name]
        ]
    assert _commands(build_parser("no-such-command")) == list(COMMANDS)  # argparse lists them


def _imported_by(code: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    loaded = set(json.loads(out.splitlines()[-1]))
    return [m for m in HEAVY if m in loaded]


def test_a_command_imports_only_what_it_runs():
    """`check` and the training commands start without torchvision (torch._dynamo: about 1.5 s
    of CPU), matplotlib or nbformat (with jsonschema): only the command's own module is
    imported; a network that needs torchvision (VGG19, LPIPS) imports it when it is built."""
    commands = ("check", "train-srresnet", "train-srgan", "test")  # each alone imports less
    parsers = "".join(f"build_parser({name!r})\n" for name in commands)
    code = f"from sr_course.cli import build_parser\n{parsers}import sr_course.checks, sr_course.evaluation.evaluate"
    assert _imported_by(code) == []
    assert "torchvision" in _imported_by(
        "from sr_course.evaluation.metrics import lpips_model; lpips_model(None)"
    )


def test_reading_a_notebook_leaves_out_jsonschemas_iri_grammar():
    """nbformat checks notebooks with jsonschema, which imports rfc3987_syntax where it is
    installed; that module compiles an IRI grammar on import (about 1.5 s of CPU in every process
    that reads a notebook: the grader's stages, nbval, the test workers). After sr_course it is left
    out, and a notebook still reads and validates."""
    notebook = Path(__file__).resolve().parents[1] / "notebooks" / "train_srresnet.ipynb"
    code = (
        "import sys, sr_course, nbformat\n"
        f"nb = nbformat.read({str(notebook)!r}, as_version=4)\n"
        "nbformat.validate(nb)\n"
        "print(len(nb.cells), 'jsonschema' in sys.modules, sys.modules['rfc3987_syntax'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert int(out[0]) > 10 and out[1:] == ["True", "None"]
