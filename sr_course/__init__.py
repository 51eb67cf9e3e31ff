"""sr_course: a notebook course kit for 4x image super-resolution with SRResNet and SRGAN."""

import sys

from .threads import set_wait_policy

set_wait_policy()  # before anything imports torch (sr_course/threads.py says why)

# jsonschema (nbformat's notebook check, the Gradescope results' check) imports rfc3987_syntax when
# it is installed (jupyterlab brings it in), and that module compiles its IRI grammar on import:
# about 1.5 s of CPU in every process that reads a notebook, for the 'iri' formats that none of the
# schemas here uses. Marked missing, it is skipped, and jsonschema leaves those two formats
# unchecked. (Before anything imports jsonschema: pyproject's addopts load this package first.)
sys.modules.setdefault("rfc3987_syntax", None)

__version__ = "0.1.0"
