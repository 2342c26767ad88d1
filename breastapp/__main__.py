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


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Parser listing every command; only `command`'s module is imported (TensorFlow loads lazily)."""
    parser = argparse.ArgumentParser(prog="python -m breastapp", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(f"breastapp.commands.{module_name}")
            module.add_arguments(command_parser)
            command_parser.set_defaults(run=module.run)
    return parser


def _requested_command(argv: list[str]) -> str | None:
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(_requested_command(argv)).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
