"""sr_course: a notebook course kit for 4x image super-resolution with SRResNet and SRGAN."""

__version__ = "0.1.0"
