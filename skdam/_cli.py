"""The ``skdam`` command line."""

import argparse
import sys


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="skdam",
        description="Dimensionality reduction that discovers its own number of dimensions (DAM).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo", help="fit both estimators on scikit-learn's digits, compare with PCA, save a PNG"
    )
    demo.add_argument("--output-dir", default="skdam-demo", help="where the PNG goes (default: %(default)s)")
    demo.add_argument("--random-state", type=int, default=0, help="seed (default: %(default)s)")
    return parser


def main(argv=None):
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run_demo

        run_demo(output_dir=args.output_dir, random_state=args.random_state)
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
