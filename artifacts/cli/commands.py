"""How a command group adds its subcommands: each with its summary, an example in its
help, the global options, and (optionally) ``--json``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

Handler = Callable[[argparse.Namespace], int | None]


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
        subparsers = parser.add_subparsers(dest=dest, metavar=metavar, required=True)
        return Commands(subparsers, self._common)
