"""Scan the data root, pair HR with LR images (making missing LR with MATLAB-exact bicubic),
validate every image and write lists/<split>.csv.

    python data_prep/create_data_lists.py [--root data] [--splits DIV2K_train Set5 ...] [--force]
"""

import argparse
import sys

from sr_course.data.lists import DataError, create_data_lists


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", default="data", help="data root (default: data)")
    parser.add_argument("--splits", nargs="*", help="splits to list (default: all found)")
    parser.add_argument("--crop-size", type=int, default=96, help="training crop size (default 96)")
    parser.add_argument("--force", action="store_true", help="rewrite lists that exist")
    args = parser.parse_args()
    try:
        create_data_lists(args.root, args.splits, crop_size=args.crop_size, force=args.force)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
