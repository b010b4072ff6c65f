"""``artifacts ui``: serve the read-only web view of a store (artifacts.ui)."""

from __future__ import annotations

import argparse
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
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning")
    server = uvicorn.Server(config)
    url = f"http://{args.host}:{args.port}/"
    print(f"serving {context.store_url(args)} read-only at {url} (Ctrl-C stops)", flush=True)
    if args.open:
        webbrowser.open(url)
    server.run()
    return 0


def register(commands: Commands) -> None:
    p = commands.add(
        "ui",
        cmd_ui,
        "browse versions, files, diffs and lineage in a web browser (read-only)",
        "artifacts ui --open\nartifacts ui --store s3://bucket/artifacts --port 8080",
    )
    p.add_argument("--port", type=int, default=8765, help="port (default: 8765)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only)",
    )
    p.add_argument("--open", action="store_true", help="open the page in a browser")
