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
    _words: list[str] = []  # the words given, for error()

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if args is not None and not self._intermixing:
            self._words = list(args)
        # Intermixed parsing takes no subcommands (`remote add`), and calls this again;
        # it drops a `--` before its second pass (Python 3.11), so `show -- -data` lost
        # the name after it.
        if self._intermixing or self._subparsers is not None or "--" in self._words:
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            namespace, extras = self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False
        if extras:  # said here, not by the top parser: this command's usage, error()'s hint
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras

    def error(self, message: str) -> Any:
        """argparse takes a name starting with '-' for an option it does not know, and
        then says a name is missing: say how to give one."""
        words = self._words[: self._words.index("--")] if "--" in self._words else self._words
        unknown = next((w for w in words if self._unknown_option(w)), None)
        if unknown is not None:
            message += (
                f"; {unknown!r} is no option: to give a name starting with '-', "
                f"put it after --: {self.prog} -- {unknown}"
            )
        super().error(message)

    def _unknown_option(self, word: str) -> bool:
        if not word.startswith("-") or word == "-" or word[1:].replace(".", "").isdigit():
            return False
        given = word.split("=", 1)[0]
        options = self._option_string_actions
        if word.startswith("--"):
            return not any(option.startswith(given) for option in options)
        return given not in options and word[:2] not in options


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
