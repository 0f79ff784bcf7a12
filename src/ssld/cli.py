"""The ``ssld`` command: parses arguments, then hands off to one module per subcommand.

User mistakes (:class:`ssld.errors.UserError`), and OS errors about a named file (an output folder that is a file,
no permission, a full disk), print one line and exit 2; Ctrl-C exits 130 without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from types import ModuleType

from ssld import __version__
from ssld.commands import COMMANDS
from ssld.errors import UserError


def _load(module: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"ssld.commands.{module}")
    except ModuleNotFoundError as e:
        if e.name == f"ssld.commands.{module}":
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="ssld",
        description="Semi-supervised label knowledge distillation (SSLD) for image classifiers.",
        epilog="Run `ssld <command> --help` for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"ssld {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name, module in COMMANDS.items():
        mod = _load(module)
        if mod is None:
            continue
        p = sub.add_parser(
            name,
            help=mod.HELP,
            description=mod.HELP,
            epilog="examples:\n" + mod.EXAMPLES if getattr(mod, "EXAMPLES", "") else None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def _setup_logging(verbose: bool) -> None:
    rank = int(os.environ.get("RANK", "0"))
    level = logging.DEBUG if verbose else (logging.INFO if rank == 0 else logging.WARNING)
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    if not verbose:  # faiss logs every instruction set it fails to load (ModuleNotFoundError lines) at INFO
        logging.getLogger("faiss").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ssld`` console script and ``python -m ssld``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    _setup_logging(args.verbose)
    try:
        return int(args._run(args) or 0)
    except UserError as e:
        print(f"ssld: error: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:
        if e.filename is None or args.verbose:  # not about a named file (or -v asks for the traceback)
            raise
        # a path the user gave that cannot be written or read: an output folder that is a file, no permission,
        # a full disk
        where = f"{e.filename}" + (f" -> {e.filename2}" if e.filename2 else "")
        print(f"ssld: error: {where}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ssld: interrupted; finished work is kept and the current step can be resumed", file=sys.stderr)
        return 130
