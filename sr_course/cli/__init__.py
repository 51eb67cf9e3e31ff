"""The command line: python -m sr_course <command> [options]; `--help` lists the commands.

Each command is a module here holding its arguments (`register(sub)`) and its handler (`run(args)`);
COMMANDS names them in the order --help shows. The instructors' `release`, `grade` and `autograder`
live with the grader (sr_course/grading/commands.py) and are listed only where that folder exists:
the student kit's command line is the student's.

Only the module of the command being run is imported: the others bring torchvision, matplotlib or
nbformat, seconds of start-up that every command (and every test that runs one) would pay. --help
and an unknown command import them all, to list them.

Adding a command: a module here with register() and run(), and one entry in COMMANDS.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from .. import threads as thread_policy
from ..checks import open_todos
from ..errors import UserError
from ..train.guard import TrainingInterrupted
from .common import split_models

# Instructors only: the student kit has no grading/ folder. Looked up in this package's own folder:
# an editable install of the reference elsewhere in the environment would otherwise answer the
# import of a sr_course.grading the kit lacks.
HAS_GRADER = (Path(__file__).resolve().parents[1] / "grading" / "commands.py").is_file()
GRADER_COMMANDS = "sr_course.grading.commands"

# command -> the module that registers and runs it, in the order --help lists them.
COMMANDS = {
    "demo": f"{__name__}.demo",
    "check": f"{__name__}.check",
    "train-srresnet": f"{__name__}.train",
    "train-srgan": f"{__name__}.train",
    "test": f"{__name__}.test",
    "outputs": f"{__name__}.outputs",
    "runs": f"{__name__}.runs",
    "report": f"{__name__}.report",
    "rate": f"{__name__}.rate",
    "super-resolve": f"{__name__}.super_resolve",
    "grid": f"{__name__}.grid",
    "convert-checkpoint": f"{__name__}.convert_checkpoint",
    "execute-notebooks": f"{__name__}.execute_notebooks",
    **(
        {name: GRADER_COMMANDS for name in ("release", "grade", "autograder")} if HAS_GRADER else {}
    ),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of `command` alone (its module is the only one imported), or of every command
    when it is None or not one of COMMANDS (--help, a typo: argparse lists them all)."""
    parser = argparse.ArgumentParser(
        prog="python -m sr_course",
        description="sr_course: 4x super-resolution with SRResNet and SRGAN, a notebook course kit.",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    wanted = [COMMANDS[command]] if command in COMMANDS else COMMANDS.values()
    for module in dict.fromkeys(wanted):  # a module registers all of its commands at once
        importlib.import_module(module).register(sub)
    return parser


def open_todo_message(err: NotImplementedError) -> str | None:
    """One sentence for a command that reached an unfinished TODO: which one to do first."""
    text = str(err)
    if not text.startswith("TODO: "):
        return None
    hit = text.removeprefix("TODO: ").split(":")[0]
    todos = open_todos() or [(hit, "models.py")]
    first, where = todos[0]
    return (
        f"this command needs {hit}, which is not implemented yet; {len(todos)} TODO(s) are still open, "
        f"in course order {', '.join(t for t, _ in todos)}: start with {first} in sr_course/{where} "
        "(its TODO box says what to build; python -m sr_course check tells when it is right)"
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv[0] if argv else None)  # the only option before it is --help
    # key=value overrides may stand anywhere, also after options (argparse stops a positional list
    # at the first option), so collect the stragglers here.
    args, extra = parser.parse_known_args(argv)
    stray = [a for a in extra if "=" not in a or a.startswith("-")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = [*getattr(args, "overrides", []), *extra]
    split_models(args)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        thread_policy.apply()  # this process's share of the cores (SR_THREADS overrides)
        return args.func(args)
    except NotImplementedError as err:
        todo = open_todo_message(err)
        if todo is None:
            raise
        print(f"error: {todo}", file=sys.stderr)
        return 1
    except TrainingInterrupted as err:
        print(err, file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except UserError as err:  # an expected failure: its one sentence, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 1
