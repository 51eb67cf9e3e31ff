"""Download DIV2K (train/valid, HR + LR bicubic x4) and the SR benchmark sets into the data root.

    python data_prep/download.py [--root data] [--only div2k_train_hr benchmark ...] [--from-dir DIR]

Parts: div2k_train_hr, div2k_train_lr, div2k_valid_hr, div2k_valid_lr, benchmark (Set5, Set14, B100,
Urban100). About 4.5 GB in all. Interrupted downloads resume; checksums are verified; re-running skips
what is there. On a cluster without internet, fetch the archives elsewhere and pass --from-dir.
Then: python data_prep/create_data_lists.py --root data
"""

import argparse
import sys

from sr_course.data.download import PARTS, DownloadError, download


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", default="data", help="data root (default: data)")
    parser.add_argument("--only", nargs="+", choices=list(PARTS), help="download only these parts")
    parser.add_argument(
        "--from-dir", help="use archives (or extracted folders) already fetched into this folder"
    )
    parser.add_argument(
        "--delete-archives", action="store_true", help="delete each archive after extracting it"
    )
    args = parser.parse_args()
    try:
        report = download(
            args.root, args.only, args.from_dir, keep_archives=not args.delete_archives
        )
    except DownloadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for part, what in report.items():
        print(f"{part}: {what}")
    print(f"next: python data_prep/create_data_lists.py --root {args.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
