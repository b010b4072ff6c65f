"""The ``artifacts`` command: git-like subcommands over an artifact store.

Which store: ``--store URL``, else ``ARTIFACTS_STORE``, else the nearest
``.artifacts/`` directory above the working directory (see :mod:`artifacts.runs`).
Errors print one line, ``artifacts: error: ...``, and exit 1; ``--debug``
adds the traceback. Progress bars go to stderr, and only to a terminal.

Each command group is a module that registers its subcommands next to their
handlers (``register``); this one collects them and runs the command chosen.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import logging
import os
import stat
import sys
import time
import traceback
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from cas.errors import CasError, DamagedRefError, UsageError

from ..errors import NoSuchArtifactError
from .commands import CommandParser, Commands
from .output import PROG, one_line, printable, progress_shown, show_warning

# The command groups (modules of this package), in the order of `artifacts --help`,
# with the commands each registers. A command imports and builds its own group alone:
# every group's parsers and imports made a fifth of a short command's start-up.
GROUPS: dict[str, tuple[str, ...]] = {
    "init": ("init",),
    "versions": ("log", "ls", "versions", "show", "diff"),
    "files": ("download", "checkout", "verify"),
    "aliases": ("alias",),
    "annotate": ("tag", "edit"),
    "delete": ("rm",),
    "links": ("link", "registry"),
    "objects": ("cat-object", "fsck"),
    "remotes": ("remote", "push", "fetch", "pull", "rebase", "clone"),
    "gc": ("gc",),
    "cache": ("cache",),
    "ui": ("ui",),
}
# Global options that take a value, and every option of the top parser (argparse
# takes any unambiguous prefix of one: `--proj x` is `--project x`).
_VALUED = ("--store", "--entity", "--project")
_TOP_OPTIONS = (*_VALUED, "--debug", "--version", "--help")
OUTPUT_ROOM = 1 << 20  # less free than a write of the output (1 MiB at most): full


def __getattr__(name: str) -> Any:
    # `artifacts.cli.fsck` (docs/cli.md), imported only when asked for.
    if name == "fsck":
        from cas.fsck import fsck

        return fsck
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
        help="entity of unqualified names (default: $ARTIFACTS_ENTITY, else $WANDB_ENTITY, "
        "else your user name)",
    )
    group.add_argument(
        "--project",
        default=argparse.SUPPRESS,
        help="project of unqualified names (default: $ARTIFACTS_PROJECT, else "
        "$WANDB_PROJECT, else uncategorized)",
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


def _command_named(argv: Sequence[str]) -> str | None:
    """The command word of ``argv``: its first word that is neither an option nor the
    value of a global option given before it. None when there is none, or when the
    top parser's help or version comes first (they list every command)."""
    words = iter(argv)
    for word in words:
        if not word.startswith("-"):
            return word
        if word == "-h":
            return None
        if "=" not in word and word.startswith("--"):
            matches = [option for option in _TOP_OPTIONS if option.startswith(word)]
            if matches in (["--help"], ["--version"]):
                return None
            if len(matches) == 1 and matches[0] in _VALUED:
                next(words, None)  # the option's value
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of ``argv``'s command alone when it names one (of every command
    otherwise: `artifacts --help`, a mistyped command, ``argv`` None)."""
    command = None if argv is None else _command_named(argv)
    wanted = [group for group, names in GROUPS.items() if command in names] or list(GROUPS)
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
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=CommandParser
    )
    commands = Commands(subparsers, common)
    for group in wanted:
        importlib.import_module(f"{__name__}.{group}").register(commands)
    return parser


# Off a terminal (CI, nohup), a retried request is said once it has waited this many
# seconds, and a line at most this often: a log says what a long wait waits for, not
# every blip.
WAIT_SAID = 5.0


class _ShowWaits(logging.Handler):
    """Prints the storage's "retrying … (attempt n)" and "waiting for …" records, one
    line each: every one on a terminal; elsewhere, as :data:`WAIT_SAID` says (a record
    without its ``waited`` seconds, as a lock's wait, said after a second, is a long one)."""

    def __init__(self, every: float) -> None:
        super().__init__(logging.INFO)
        self.every = every
        self._said: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.every:
            now = time.monotonic()
            if getattr(record, "waited", self.every) < self.every:
                return
            if self._said is not None and now - self._said < self.every:
                return
            self._said = now
        print(f"{PROG}: {record.getMessage()}", file=sys.stderr)


@contextlib.contextmanager
def _retries_shown() -> Iterator[None]:
    """Say so while a remote is being retried or a lock waited for (the wait can be
    long): every retry on a terminal, a long wait now and then elsewhere."""
    # By name: importing the network storage (fsspec, asyncio) took 0.2 s of a command.
    logger = logging.getLogger("cas.storage")
    handler = _ShowWaits(0.0 if progress_shown() else WAIT_SAID)
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _library_logs_kept(debug: bool) -> None:
    """The libraries' own log records (warnings Python prints for want of a handler)
    printed only with ``--debug``: aiobotocore's, of credentials it failed to renew,
    with its traceback, made the error line that follows it fourteen lines. Kept off
    to the end: the IO thread may still log once the command has failed."""
    root = logging.getLogger()
    if not debug and not any(isinstance(h, logging.NullHandler) for h in root.handlers):
        root.addHandler(logging.NullHandler())


def _hint(exc: BaseException) -> str:
    """Where to look next, for an error the library states without the command line."""
    if isinstance(exc, DamagedRefError):
        return f"; `{PROG} fsck --repair` sets it aside, keeping its bytes"
    if isinstance(exc, NoSuchArtifactError):  # often: another project than meant
        namespace = f"{exc.entity}/{exc.project}"
        return f"; `{PROG} ls {namespace}` lists its artifacts, `{PROG} ls --all` every project's"
    return ""


def _output_filled(exc: BaseException) -> bool:
    """Is ``exc`` a full disk met writing the standard output, redirected to a file?
    The OS names no file; every write of ours to a store or a directory names its
    place, so a full disk unnamed, under the output, is the output's."""
    if not isinstance(exc, OSError) or exc.errno != errno.ENOSPC or exc.filename is not None:
        return False
    try:
        output = os.fstat(sys.stdout.fileno())
        room = os.fstatvfs(sys.stdout.fileno())
    except (OSError, ValueError):
        return False
    return stat.S_ISREG(output.st_mode) and room.f_bavail * room.f_frsize < OUTPUT_ROOM


def _unusable_cache(exc: OSError) -> str | None:
    """The error of a cache directory that cannot be made or written (a file where it
    goes, a directory not ours), said as such: the OS names only a path in it."""
    if not isinstance(exc.filename, str):
        return None
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    mine = os.environ.get("ARTIFACTS_CACHE_DIR")
    # (the cache's directory, the directory named, the variable that sets it)
    caches = [(mine, mine, "ARTIFACTS_CACHE_DIR"), (f"{xdg}/artifacts", xdg, "XDG_CACHE_HOME")]
    path = os.path.abspath(exc.filename)
    for cache, base, variable in caches:
        if cache and os.path.commonpath([path, os.path.abspath(cache)]) == os.path.abspath(cache):
            return (
                f"the cache directory {base} cannot be used ({exc.strerror}: {exc.filename}): "
                f"set {variable} to a directory you can write"
            )
    return None


def _check_working_directory() -> None:
    """Every relative path, and the nearest store, starts here: a directory deleted since
    the shell entered it fails each with an error that names no path."""
    try:
        os.getcwd()
    except FileNotFoundError:
        raise UsageError(
            "the working directory no longer exists (deleted since the shell entered it): "
            "cd to one that does"
        ) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``artifacts`` command; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    debug = getattr(args, "debug", False)
    try:
        _check_working_directory()
        _library_logs_kept(debug)
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
        message = isinstance(exc, OSError) and _unusable_cache(exc) or one_line(exc)
        message = f"{printable(message)}{_hint(exc)}"
        if _output_filled(exc):
            message = (
                "no space left on the device the standard output goes to: free some space "
                "there, or send the output elsewhere"
            )
            with contextlib.suppress(OSError):  # else the flush at exit fails again, in words
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print(f"{PROG}: error: {message}", file=sys.stderr)
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
