"""sr_course.imresize: the public name of sr_course/data/imresize.py (MATLAB-exact imresize). Kept for outside
scripts and course material; new code imports from where the code lives."""

from .data.imresize import imresize, imresize_torch

__all__ = ["imresize", "imresize_torch"]
