"""Root pytest setup for the unit tests and the notebooks (nbval).

- Notebooks run on the smoke profile, with data and runs in a fresh temporary folder per session,
  so every run trains from scratch and nothing in the working tree is touched.
- The nbval sanitize file is pinned here (addresses, figure sizes, temporary paths, tqdm timings).
- Notebooks run in course order (each uses the checkpoints of the one before), after the unit tests.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
COURSE_ORDER = [
    "train_srresnet.ipynb",
    "train_srgan.ipynb",
    "test.ipynb",
    "super_resolution.ipynb",
    "improvements.ipynb",
]

os.environ.setdefault("SR_PROFILE", "smoke")
if "SR_RUNS_DIR" not in os.environ:
    _tmp = Path(tempfile.mkdtemp(prefix="sr_course-pytest-"))
    atexit.register(shutil.rmtree, _tmp, ignore_errors=True)
    os.environ["SR_DATA_ROOT"] = str(_tmp / "data")
    os.environ["SR_RUNS_DIR"] = str(_tmp / "runs")


def pytest_configure(config):
    if hasattr(config.option, "nbval_sanitize_with") and not config.option.nbval_sanitize_with:
        config.option.nbval_sanitize_with = str(HERE / "notebooks" / "nbval_sanitize.cfg")


def pytest_collection_modifyitems(session, config, items):
    def order(item):
        name = Path(str(item.fspath)).name
        return COURSE_ORDER.index(name) + 1 if name in COURSE_ORDER else 0

    items.sort(key=order)  # stable: unit tests keep their order and come first
