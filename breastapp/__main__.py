"""`python -m breastapp <command>`: the engine's and research tools' command line.

Needs no database, broker or web server. Each sub-command lives in `breastapp/commands/<name>.py`
and exposes `add_arguments(parser)` and `run(args) -> int` (the process exit status).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# command name -> (module under breastapp.commands, one-line help)
COMMANDS = {
    "analyze": ("analyze", "analyse image files and write overlay/mask/heatmap PNGs and result.json"),
    "train": ("train", "train segmentation or classification weights"),
    "evaluate": ("evaluate", "evaluate weights on a dataset and write a report folder"),
    "retrain-all": ("retrain_all", "retrain every shipped weights file from ../shared/data"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m breastapp", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f"breastapp.commands.{module_name}")
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command_parser)
        command_parser.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
