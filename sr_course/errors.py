"""The one type of an expected failure: something the user can fix, told in one sentence.

Every failure a user can cause and fix (missing weights or data, a bad setting or path, a file a
command would overwrite, a damaged checkpoint, a locked run) raises a UserError whose message
names the file or setting and the fix. The command line prints that message as one line and exits
with 1; anything else is a bug and keeps its traceback. An unfinished TODO is the one expected
failure that is not a UserError: the student's stubs raise NotImplementedError("TODO: ..."), which
the command line turns into its own sentence (cli/__init__.py).

The subclasses below also derive from the builtin a caller would catch without knowing this module
(a SettingError is a ValueError, a MissingFile a FileNotFoundError), so library code and notebooks
that catch the builtin keep working.
"""

from __future__ import annotations


class UserError(Exception):
    """An expected failure; str() is the one sentence the user sees."""

    def _render_traceback_(self) -> list[str]:
        # IPython's hook for how an exception is shown: in a notebook too, the sentence alone.
        return [f"{type(self).__name__}: {self}"]


class SettingError(UserError, ValueError):
    """A setting, argument or override that cannot work; the message names it and its valid values."""


class UnknownSetting(UserError, KeyError):
    """A config key that does not exist; the message lists the valid keys."""

    def __str__(self) -> str:  # KeyError's str() would quote the whole sentence
        return str(self.args[0]) if self.args else ""


class MissingFile(UserError, FileNotFoundError):
    """A file or folder the command needs is not there; the message says how to get it."""


class WouldOverwrite(UserError, FileExistsError):
    """The command would replace something the user made; the message says how to go on."""


class OtherCopy(UserError, ImportError):
    """Python imported another copy of sr_course than the kit a notebook belongs to."""


class MissingWeights(UserError, RuntimeError):
    """Pretrained weights (VGG19, AlexNet for LPIPS) neither cached nor downloadable."""
