"""Root pytest setup for the unit tests and the notebooks (nbval).

- Notebooks run on the smoke profile, with data and runs in a fresh temporary folder per session,
  so every run trains from scratch and nothing in the working tree is touched.
- The nbval sanitize file is pinned here (addresses, figure sizes, temporary paths, tqdm timings).
- Notebooks run in course order (each uses the checkpoints of the one before).
- With pytest-xdist (`-n auto`, as pyproject's addopts ask), each test module runs in one worker,
  so its module fixtures (a built kit, a graded class) are built once; the notebooks run in one
  worker, in order; the red-team suite splits by isolation mode (worker_group; the scheduler is
  this file's). The slowest groups start first. Each worker gets its share of the cores
  (sr_course/threads.py), and so do the processes it starts.
- In the student kit (no sr_course/grading/), a test or notebook cell that stops at an unfinished
  TODO (its `raise NotImplementedError("TODO: ...")`) is reported as skipped, naming the TODO, and so
  are the later cells of that notebook; everything else runs and fails as usual. The kit's test run
  is thus green as released and turns each TODO's tests on as the student fills it in.
"""

import atexit
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from sr_course.course import NOTEBOOKS, TODOS

HERE = Path(__file__).resolve().parent
STUDENT_KIT = not (HERE / "sr_course" / "grading").is_dir()
ANSI = re.compile(r"\x1b\[[0-9;]*m")
_blocked_notebooks: dict[str, str] = {}


def _unfinished_todo(text: str) -> str | None:
    """The TODO a failure report shows unfinished: a stub's message ("TODO: <name>: ...") or a
    command's sentence ("needs <name>, which is not implemented yet")."""
    names = "|".join(re.escape(name) for name in TODOS)
    found = re.search(rf"TODO: ({names}): |needs ({names}), which is not implemented yet", text)
    return found and (found.group(1) or found.group(2))


NOTEBOOK_ORDER = list(NOTEBOOKS)

os.environ.setdefault("SR_PROFILE", "smoke")
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _workers > 1:  # a worker of pytest-xdist: this process and its children share the cores
    os.environ.setdefault("SR_THREADS", str(max(1, (os.cpu_count() or 1) // _workers)))
if "SR_RUNS_DIR" not in os.environ:
    _tmp = Path(tempfile.mkdtemp(prefix="sr_course-pytest-"))
    atexit.register(shutil.rmtree, _tmp, ignore_errors=True)
    os.environ["SR_DATA_ROOT"] = str(_tmp / "data")
    os.environ["SR_RUNS_DIR"] = str(_tmp / "runs")


def pytest_configure(config):
    if hasattr(config.option, "nbval_sanitize_with") and not config.option.nbval_sanitize_with:
        config.option.nbval_sanitize_with = str(HERE / "notebooks" / "nbval_sanitize.cfg")


# The slowest groups of tests (a worker each at a time), slowest first, so that pytest-xdist's workers
# start on them and the many quick modules fill the gaps (measured: bench/README.md, the CI table).
SLOW_GROUPS = (
    "test_redteam-user",
    "test_redteam-bwrap",
    "test_mutations",
    "test_grader",
    "test_platforms",
    "test_release",
    "notebooks",
    "test_course",
)


def worker_group(nodeid: str) -> str:
    """The tests that must share one pytest-xdist worker, from a test's id: a module (its fixtures
    are built once), all the notebooks (each builds on the one before), the red-team suite per
    isolation mode (each mode's attacks are graded once, in a fixture)."""
    path = nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        return "notebooks"
    group = Path(path).stem
    mode = re.search(r"\[(bwrap|user)[\]-]", nodeid)
    return f"{group}-{mode.group(1)}" if mode and group == "test_redteam" else group


def pytest_collection_modifyitems(session, config, items):
    def order(item):
        group = worker_group(item.nodeid)
        rank = SLOW_GROUPS.index(group) if group in SLOW_GROUPS else len(SLOW_GROUPS)
        name = item.path.name
        return rank, NOTEBOOK_ORDER.index(name) if name in NOTEBOOK_ORDER else 0

    items.sort(key=order)  # stable: the tests of a group keep their order


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist schedules whole groups (worker_group), in collection order (slowest first)."""
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return worker_group(nodeid)

    config.option.loadscopereorder = False
    return GroupScheduling(config, log)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    if not STUDENT_KIT or not report.failed:
        return
    todo = _unfinished_todo(ANSI.sub("", str(report.longrepr)))
    if todo:
        report.outcome = "skipped"
        report.longrepr = (str(item.path), 0, f"Skipped: needs TODO [{todo}], not implemented yet")
        if item.path.suffix == ".ipynb":
            _blocked_notebooks.setdefault(str(item.path), todo)


def pytest_runtest_setup(item):
    todo = _blocked_notebooks.get(str(item.path))
    if todo:
        pytest.skip(f"an earlier cell of this notebook needs TODO [{todo}], not implemented yet")
