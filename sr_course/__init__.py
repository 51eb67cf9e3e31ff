"""sr_course: a notebook course kit for 4x image super-resolution with SRResNet and SRGAN."""

from .threads import set_wait_policy

set_wait_policy()  # before anything imports torch (sr_course/threads.py says why)

__version__ = "0.1.0"
