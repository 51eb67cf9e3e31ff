"""sr_course.inference: the public names of sr_course/evaluation/inference.py. Kept for outside
scripts and course material; new code imports from where the code lives."""

from .evaluation.inference import (
    interpolate_generators,
    load_generator,
    super_resolve,
    super_resolve_tensor,
)

__all__ = ["interpolate_generators", "load_generator", "super_resolve", "super_resolve_tensor"]
