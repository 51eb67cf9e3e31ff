"""sr_course.metrics: the public names of sr_course/evaluation/metrics.py and evaluate.py. Kept for outside
scripts and course material; new code imports from where the code lives."""

from .evaluation.evaluate import evaluate, format_table
from .evaluation.metrics import lpips_distance, lpips_model, psnr, rgb_to_y, score_sr, ssim

__all__ = [
    "evaluate",
    "format_table",
    "lpips_distance",
    "lpips_model",
    "psnr",
    "rgb_to_y",
    "score_sr",
    "ssim",
]
