"""Build the offline sample dataset (real photographs bundled with scikit-image).

python data_prep/make_sample.py [--root data] [--force]
"""

import argparse

from sr_course.data.sample import build_sample


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", default="data", help="data root (default: data)")
    parser.add_argument("--force", action="store_true", help="rewrite the sample images")
    args = parser.parse_args()
    print(f"sample written to {build_sample(args.root, force=args.force)}")


if __name__ == "__main__":
    main()
