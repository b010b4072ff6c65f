"""``python -m artifacts`` and the ``artifacts`` command's entry point.

Kept light on purpose: the interrupt handler goes in before the heavy imports, so
a Ctrl-C at any instant after the interpreter has started, even while Python is
still importing our modules, prints one line and exits 130 instead of a traceback.
"""

# The C module under ``signal``: the same functions without the enum wrappers, whose
# import (enum, re) would keep the window before the handler open several times longer.
import _signal as signal
import _thread
import atexit
import os
import sys

INTERRUPTED = 130


def main() -> int:
    interrupts = _Interrupts(os.getpid())
    signal.signal(signal.SIGINT, interrupts.on_signal)
    sys.unraisablehook = interrupts.on_unraisable
    # The command's workers ignore Ctrl-C from their first instant, not only once their
    # initialiser runs: the terminal sends it to them too, and the parent decides.
    os.register_at_fork(after_in_child=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    status = None
    try:
        # A path that is no UTF-8 is printed as its bytes, as Python does in the C locale:
        # under a strict locale it would fail the command after its work was done.
        if sys.stdout is not None and sys.stdout.errors == "strict":
            sys.stdout.reconfigure(errors="surrogateescape")
        from .cli import main as run

        status = run()  # prints "interrupted" itself when it catches the interrupt
    except KeyboardInterrupt:  # raised while importing, before the command ran
        pass
    finally:  # also when argparse exits (--help, a usage error)
        # The interrupt may land now, while Python joins threads on the way out: the
        # process ends as interrupted all the same. Python's finalisation would then
        # restore the default action (a silent death by SIGINT), so the last stretch
        # ignores it.
        if interrupts.seen:
            _exit_interrupted(said=status == INTERRUPTED)
        signal.signal(signal.SIGINT, lambda _signum, _frame: _exit_interrupted())
        atexit.register(signal.signal, signal.SIGINT, signal.SIG_IGN)
    return status


class _Interrupts:
    """Ctrl-C as a KeyboardInterrupt in the command's own code, wherever it lands.

    Where Python swallows exceptions (a finaliser, an at-fork handler, a callback: it
    only reports them, "Exception ignored in ..."), the interrupt reaches
    ``on_unraisable``, which has another thread mark it pending again for the main
    thread: raised at once, there, it would be swallowed again. A worker forked at that
    instant (it ignores interrupts once started) lets the parent decide.
    """

    def __init__(self, main_pid: int) -> None:
        self.main_pid = main_pid
        self.seen = False

    def on_signal(self, _signum: int, frame: object) -> None:
        self.seen = True
        if _inside(frame, self.on_unraisable.__code__):
            _pend_again()
            return
        raise KeyboardInterrupt

    def on_unraisable(self, unraisable: object) -> None:
        if not isinstance(getattr(unraisable, "exc_value", None), KeyboardInterrupt):
            sys.__unraisablehook__(unraisable)  # type: ignore[arg-type]
        elif os.getpid() == self.main_pid:
            _pend_again()


def _pend_again() -> None:
    """Mark SIGINT pending for the main thread from another one: from this one, the
    handler would run before this call returns."""
    _thread.start_new_thread(_thread.interrupt_main, ())


def _inside(frame: object, code: object) -> bool:
    while frame is not None:
        if getattr(frame, "f_code", None) is code:
            return True
        frame = getattr(frame, "f_back", None)
    return False


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
