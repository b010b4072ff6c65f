"""The ``artifacts`` command: git-like subcommands over an artifact store.

Which store: ``--store URL``, else ``ARTIFACTS_STORE``, else the nearest
``.artifacts/`` directory above the working directory (see :mod:`artifacts.run`).
Errors print one line, ``artifacts: error: ...``, and exit 1; ``--debug``
adds the traceback. Progress bars go to stderr, and only to a terminal.

Each command group is a module that registers its subcommands next to their
handlers (``register``); this one collects them and runs the command chosen.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Iterator, Sequence

from cas.errors import CasError
from cas.fsck import fsck  # noqa: F401  (documented as artifacts.cli.fsck in docs/cli.md)

from . import (
    aliases,
    annotate,
    cache,
    delete,
    files,
    gc,
    init,
    links,
    objects,
    remotes,
    ui,
    versions,
)
from .commands import Commands
from .output import PROG, one_line, printable, progress_shown, show_warning

# In the order of `artifacts --help`.
GROUPS = (init, versions, files, aliases, annotate, delete, links, objects, remotes, gc, cache, ui)


def _global_options() -> argparse.ArgumentParser:
    # SUPPRESS defaults: an option given before the command survives the
    # command's own parser, which would otherwise reset it to None.
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("global options")
    group.add_argument(
        "--store",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="the store (default: $ARTIFACTS_STORE, else the nearest .artifacts/)",
    )
    group.add_argument(
        "--entity",
        default=argparse.SUPPRESS,
        help="entity of unqualified names (default: $ARTIFACTS_ENTITY, else your user name)",
    )
    group.add_argument(
        "--project",
        default=argparse.SUPPRESS,
        help="project of unqualified names (default: $ARTIFACTS_PROJECT, else uncategorized)",
    )
    group.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the traceback of an error",
    )
    return parent


class _Version(argparse.Action):
    """``--version``: the installed version, looked up only when asked (importing
    importlib.metadata costs every other command a fifth of its start-up)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_args: object) -> None:
        import importlib.metadata

        try:
            version = importlib.metadata.version("artifacts")
        except importlib.metadata.PackageNotFoundError:  # run from a source tree
            version = "(not installed)"
        print(f"{PROG} {version}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    common = _global_options()
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Version datasets and models in a content-addressed store.",
        epilog=(
            "example:\n"
            "  artifacts init\n"
            "  artifacts log data/ --name dataset --type dataset\n"
            "  artifacts show dataset:latest\n\n"
            "Run `artifacts COMMAND --help` for a command's options."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action=_Version)
    commands = Commands(
        parser.add_subparsers(dest="command", metavar="COMMAND", required=True), common
    )
    for group in GROUPS:
        group.register(commands)
    return parser


class _ShowRetries(logging.Handler):
    """Prints the storage's "retrying … (attempt n)" records, one line each."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"{PROG}: {record.getMessage()}", file=sys.stderr)


@contextlib.contextmanager
def _retries_shown() -> Iterator[None]:
    """On a terminal, say so while a remote is being retried (the wait can be long)."""
    if not progress_shown():
        yield
        return
    from cas.storage.network import logger

    handler = _ShowRetries(logging.INFO)
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``artifacts`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    try:
        with warnings.catch_warnings(), _retries_shown():
            warnings.showwarning = show_warning  # catch_warnings restores Python's own
            return args.func(args) or 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`artifacts ls | head`): not an error worth a line.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (CasError, OSError) as exc:
        if debug:
            traceback.print_exc()
        print(f"{PROG}: error: {printable(one_line(exc))}", file=sys.stderr)
        return 1
    except Exception as exc:
        if debug:
            traceback.print_exc()
        hint = "" if debug else " (run with --debug for the traceback)"
        print(
            f"{PROG}: internal error: {type(exc).__name__}: {printable(one_line(exc))}{hint}",
            file=sys.stderr,
        )
        return 1
