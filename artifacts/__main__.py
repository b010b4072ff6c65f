"""``python -m artifacts`` and the ``artifacts`` command's entry point.

Kept light on purpose: the interrupt handler goes in before the heavy imports, so
a Ctrl-C at any instant after the interpreter has started, even while Python is
still importing our modules, prints one line and exits 130 instead of a traceback.
"""

# The C module under ``signal``: the same functions without the enum wrappers, whose
# import (enum, re) would keep the window before the handler open several times longer.
import _signal as signal
import atexit
import os
import sys

INTERRUPTED = 130


def main() -> int:
    interrupted = False

    def on_interrupt(_signum: int, _frame: object) -> None:
        nonlocal interrupted
        interrupted = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_interrupt)
    sys.unraisablehook = _interrupt_where_python_swallows_it(os.getpid())
    status = None
    try:
        from .cli import main as run

        status = run()  # prints "interrupted" itself when it catches the interrupt
    except KeyboardInterrupt:  # raised while importing, before the command ran
        pass
    finally:  # also when argparse exits (--help, a usage error)
        # The interrupt may have landed where Python swallows exceptions (a finaliser, a
        # callback), or it may land now, while Python joins threads on the way out:
        # either way the process ends as interrupted. Python's finalisation would then
        # restore the default action (a silent death by SIGINT), so the last stretch
        # ignores it.
        if interrupted:
            _exit_interrupted(said=status == INTERRUPTED)
        signal.signal(signal.SIGINT, lambda _signum, _frame: _exit_interrupted())
        atexit.register(signal.signal, signal.SIGINT, signal.SIG_IGN)
    return status


def _interrupt_where_python_swallows_it(main_pid: int) -> object:
    """A ``sys.unraisablehook`` for an interrupt that landed in a callback whose
    exceptions Python only reports ("Exception ignored in ..."), e.g. an at-fork
    handler: no traceback. In our process it is raised again, to land in the command's
    own code; a worker forked at that instant (it ignores interrupts once started)
    lets the parent decide."""

    def hook(unraisable: object) -> None:
        if not isinstance(getattr(unraisable, "exc_value", None), KeyboardInterrupt):
            sys.__unraisablehook__(unraisable)  # type: ignore[arg-type]
        elif os.getpid() == main_pid:
            signal.raise_signal(signal.SIGINT)

    return hook


def _exit_interrupted(said: bool = False) -> None:
    """End the process now, status 130; the command's cleanup has run (or never began)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    if not said:
        os.write(2, b"artifacts: interrupted\n")
    os._exit(INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
