"""How a command group adds its subcommands: each with its summary, an example in its
help, the global options, and (optionally) ``--json``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

Handler = Callable[[argparse.Namespace], int | None]


class CommandParser(argparse.ArgumentParser):
    """A command's parser, taking options between its positional arguments as anywhere
    else: argparse alone gives an optional positional nothing once an option interrupts
    them (`push origin --force dataset`: 'unrecognized arguments: dataset')."""

    _intermixing = False

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        # Intermixed parsing takes no subcommands (`remote add`), and calls this again.
        if self._intermixing or self._subparsers is not None:
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


class Commands:
    def __init__(self, subparsers: Any, common: argparse.ArgumentParser) -> None:
        self._subparsers = subparsers
        self._common = common  # the global options, accepted after the command too

    def add(
        self, name: str, func: Handler, summary: str, example: str, json: bool = False
    ) -> argparse.ArgumentParser:
        parser = self._subparsers.add_parser(
            name,
            help=summary,
            description=summary,
            epilog="example:\n" + "\n".join("  " + line for line in example.splitlines()),
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[self._common],
        )
        parser.set_defaults(func=func)
        if json:
            parser.add_argument("--json", action="store_true", help="print JSON")
        return parser

    def below(self, parser: argparse.ArgumentParser, dest: str, metavar: str) -> Commands:
        """The subcommands of ``parser`` (``alias add``, ``remote ls``...)."""
        subparsers = parser.add_subparsers(
            dest=dest, metavar=metavar, required=True, parser_class=CommandParser
        )
        return Commands(subparsers, self._common)
