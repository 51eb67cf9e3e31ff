"""Grading time: one submission, a looping one, and a class of 20 (notebooks included).

    python bench/bench_grade.py                      # all three, in the strongest sandbox here
    python bench/bench_grade.py --class-size 6
    python bench/bench_grade.py --isolation user --class-size 0   # the 'user' mode (as root)

The class mixes what instructors get: correct submissions, untouched kits, realistic bugs (from the
mutation suite) and one submission with an endless loop in ConvolutionalBlock (the worst place:
every notebook builds on it). Prints one JSON line per figure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import emit, machine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "grading"))

from test_mutations import MUTANTS, _files_with  # noqa: E402

from sr_course.grading import isolation
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
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
