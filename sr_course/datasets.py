"""sr_course.datasets: the public names of sr_course/data/datasets.py and lists.py. Kept for outside
scripts and course material; new code imports from where the code lives."""

from .data.datasets import EpochSampler, SRDataset, read_data_list
from .data.lists import DataError, create_data_lists, read_image, write_png

__all__ = [
    "DataError",
    "EpochSampler",
    "SRDataset",
    "create_data_lists",
    "read_data_list",
    "read_image",
    "write_png",
]
