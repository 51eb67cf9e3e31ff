"""Grading time: one submission, a looping one, and a class of 20 (notebooks included).

    python bench/bench_grade.py                      # all three, in the strongest sandbox here
    python bench/bench_grade.py --class-size 6
    python bench/bench_grade.py --isolation user --class-size 0   # the 'user' mode (as root)
    python bench/bench_grade.py --gradescope         # the autograder bundle in Gradescope's limits

The class mixes what instructors get: correct submissions, untouched kits, realistic bugs (from the
mutation suite) and one submission with an endless loop in ConvolutionalBlock (the worst place:
every notebook builds on it). Prints one JSON line per figure.

--gradescope: the bundle's run_autograder on a correct upload (the three files) the way Gradescope's
container runs it: one core (taskset -c 0), a memory cgroup capped at 768 MB (the container's
documented memory), the page cache dropped first so that the libraries' pages are charged to it as
in a fresh container. Reports the wall time, the cgroup's peak (resident and cache) and its peak
resident memory (anonymous pages, sampled), and whether the cap was hit. Needs root and cgroup v1's
memory controller (or cgroup v2).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import emit, machine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "grading"))

from test_mutations import MUTANTS, _files_with  # noqa: E402

from sr_course.grading import autograder, isolation
from sr_course.grading.grader import grade, grade_many
from sr_course.grading.kit import EDITABLE, KIT_ROOT
from sr_course.grading.release import build_release

LOOP = (
    "ConvolutionalBlock",
    "models",
    "        self.block = nn.Sequential(*layers)",
    "        while True:\n            pass",
)


def write(folder: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--class-size", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    parser.add_argument("--isolation", default="auto", help="auto, bwrap or user")
    parser.add_argument(
        "--gradescope", action="store_true", help="the bundle in Gradescope's limits"
    )
    args = parser.parse_args()
    if args.gradescope:
        gradescope()
        return
    mode = isolation.choose(args.isolation)
    reference = {rel: (KIT_ROOT / rel).read_text() for rel in EDITABLE}
    with tempfile.TemporaryDirectory(prefix="bench-grade-") as tmp:
        tmp = Path(tmp)
        build_release(tmp / "kit", check=False, verbose=False)
        kit = {rel: (tmp / "kit" / rel).read_text() for rel in EDITABLE}
        looping = _files_with(*LOOP[1:3], LOOP[3])

        for name, files in (
            ("correct", reference),
            ("endless loop in ConvolutionalBlock", looping),
        ):
            t0 = time.perf_counter()
            report = grade(write(tmp / name.split()[0], files), verbose=False, isolation_mode=mode)
            emit(
                bench="grade one submission",
                case=name,
                isolation=mode,
                seconds=round(time.perf_counter() - t0, 1),
                points=report["points"]["total"],
                machine=machine(),
            )

        class_dir = tmp / "class"
        subs = []
        for k in range(args.class_size):
            if k == 0:
                files = looping
            elif k % 5 == 1:
                files = kit
            elif k % 2 == 0:
                files = reference
            else:
                _, _, file, old, new, _ = MUTANTS[(7 * k) % len(MUTANTS)]
                files = _files_with(file, old, new)
            subs.append(write(class_dir / f"student{k:02d}", files))
        t0 = time.perf_counter()
        if not args.class_size:
            return
        reports = grade_many(
            [class_dir], tmp / "grades", jobs=args.jobs, verbose=False, isolation_mode=mode
        )
        emit(
            bench="grade a class",
            isolation=mode,
            submissions=len(reports),
            jobs=args.jobs,
            seconds=round(time.perf_counter() - t0, 1),
            target_seconds=900 if args.class_size == 20 else None,
            totals=[r["points"]["total"] for r in reports],
            machine=machine(),
        )
        shutil.copyfile(
            tmp / "grades" / "gradebook.csv", Path(tempfile.gettempdir()) / "bench-gradebook.csv"
        )


MEMORY_MB = autograder.GRADESCOPE["memory_mb"]


def _memory_cgroup(limit_mb: int) -> tuple[Path, str, str]:
    """A new memory cgroup capped at limit_mb: (folder, peak file, anonymous-memory key)."""
    v1 = Path("/sys/fs/cgroup/memory")
    if v1.is_dir():
        cg = v1 / f"sr-bench-{os.getpid()}"
        cg.mkdir()
        (cg / "memory.limit_in_bytes").write_text(str(limit_mb * 2**20))
        return cg, "memory.max_usage_in_bytes", "total_rss"
    cg = Path("/sys/fs/cgroup") / f"sr-bench-{os.getpid()}"
    cg.mkdir()
    (cg / "memory.max").write_text(str(limit_mb * 2**20))
    return cg, "memory.peak", "anon"


def _anon_bytes(cg: Path, key: str) -> int:
    for line in (cg / "memory.stat").read_text().splitlines():
        name, value = line.split()
        if name == key:
            return int(value)
    return 0


def gradescope() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-autograder-") as tmp:
        home = Path(tmp) / "autograder"
        bundle = Path(tmp) / "autograder.zip"
        autograder.build_bundle(bundle, verbose=False)
        autograder.unpack(bundle, home)
        upload = Path(tmp) / "upload"
        write(upload, {Path(rel).name: (KIT_ROOT / rel).read_text() for rel in EDITABLE})
        cg, peak_file, anon_key = _memory_cgroup(MEMORY_MB)
        Path("/proc/sys/vm/drop_caches").write_text("1")
        peak_anon, done = [0], threading.Event()

        def sample() -> None:
            while not done.wait(0.2):
                peak_anon[0] = max(peak_anon[0], _anon_bytes(cg, anon_key))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        wrapper = ("sh", "-c", f'echo $$ > {cg}/cgroup.procs && exec taskset -c 0 "$0" "$@"')
        t0 = time.perf_counter()
        data, printed = autograder.run_upload(home, upload, wrapper)
        seconds = time.perf_counter() - t0
        done.set()
        sampler.join()
        failcnt = cg / "memory.failcnt"
        emit(
            bench="gradescope bundle: run_autograder, a correct upload with its notebooks",
            limits=f"taskset -c 0 (one core), memory cgroup {MEMORY_MB} MB, page cache dropped",
            seconds=round(seconds, 1),
            target_seconds=300,
            score=data and data["score"],
            peak_with_cache_mb=round(int((cg / peak_file).read_text()) / 2**20),
            peak_resident_mb=round(peak_anon[0] / 2**20),
            target_resident_mb=512,
            hit_the_cap=int(failcnt.read_text()) if failcnt.exists() else None,
            failed=None if data else printed[-300:],
            date=time.strftime("%Y-%m-%d"),
            machine=machine(),
        )
        cg.rmdir()


if __name__ == "__main__":
    main()
