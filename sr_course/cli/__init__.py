"""The command line: python -m sr_course <command> [options]; `--help` lists the commands.

Each command is a module here holding its arguments (`register(sub)`) and its handler (`run(args)`);
COMMANDS lists them in the order --help shows. The instructors' `release` and `grade` live with
the grader (sr_course/grading/commands.py) and are listed only where that folder exists: the
student kit's command line is the student's.

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
from . import (
    check,
    convert_checkpoint,
    demo,
    execute_notebooks,
    grid,
    outputs,
    rate,
    report,
    runs,
    super_resolve,
    test,
    train,
)
from .common import split_models

# Instructors only: the student kit has no grading/ folder, so no release or grade command. Looked
# up in this package's own folder: an editable install of the reference elsewhere in the environment
# would otherwise answer the import of a sr_course.grading the kit lacks.
instructor_commands = (
    importlib.import_module("sr_course.grading.commands")
    if (Path(__file__).resolve().parents[1] / "grading" / "commands.py").is_file()
    else None
)

COMMANDS = (
    demo,
    check,
    train,
    test,
    outputs,
    runs,
    report,
    rate,
    super_resolve,
    grid,
    convert_checkpoint,
    execute_notebooks,
    *([instructor_commands] if instructor_commands else []),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sr_course",
        description="sr_course: 4x super-resolution with SRResNet and SRGAN, a notebook course kit.",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for command in COMMANDS:
        command.register(sub)
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
    parser = build_parser()
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
