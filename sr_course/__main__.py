"""`python -m sr_course <command>`: the command line (sr_course/cli/)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
