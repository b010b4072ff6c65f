"""``artifacts ui``: serve the read-only web view of a store (artifacts.ui)."""

from __future__ import annotations

import argparse
import socket
import webbrowser

from cas.errors import UsageError

from . import context
from .commands import Commands
from .output import PROG

INSTALL = f"{PROG} ui needs the ui extra: pip install 'artifacts[ui]'"


def cmd_ui(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..ui import create_app
    except ImportError:
        raise UsageError(INSTALL) from None
    context.open_repo(args)  # a store that does not exist: said before serving
    app = create_app(context.store_url(args))
    # Bound here, not by uvicorn: a port in use is then our one line, before "serving"
    # (uvicorn logs it and exits 3).
    listening = _listen(args.host, args.port)
    config = uvicorn.Config(app, log_level="warning")
    url = f"http://{args.host}:{listening.getsockname()[1]}/"
    print(f"serving {context.store_url(args)} read-only at {url} (Ctrl-C stops)", flush=True)
    if args.open:
        webbrowser.open(url)
    uvicorn.Server(config).run(sockets=[listening])
    return 0


def _listen(host: str, port: int) -> socket.socket:
    try:
        return socket.create_server((host, port))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UsageError(
            f"cannot listen on {host}:{port}: {reason}; choose another --port (or --host)"
        ) from None


def port_number(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 0 to 65535, not {text!r}")
    return port


def register(commands: Commands) -> None:
    p = commands.add(
        "ui",
        cmd_ui,
        "browse versions, files, diffs and lineage in a web browser (read-only)",
        "artifacts ui --open\nartifacts ui --store s3://bucket/artifacts --port 8080",
    )
    p.add_argument("--port", type=port_number, default=8765, help="port (default: 8765)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only)",
    )
    p.add_argument("--open", action="store_true", help="open the page in a browser")
