"""``carcolor serve``: options, config, the app, and the server until SIGINT/SIGTERM."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional

from ..config import load_config
from ..errors import CarcolorError
from .app import _EXT, create_app
from .wsgi import serve


def main(argv: Optional[List[str]] = None) -> int:
    """``carcolor serve [--config F] [--host H] [--port P] [--threads N]``; returns the exit code."""
    p = argparse.ArgumentParser(prog="carcolor serve", description="Serve the car-colour HTTP API "
                                "(POST / with an 'image' field, as the original server).")
    p.add_argument("--config", help="config YAML (default: the shipped config.yaml)")
    p.add_argument("--host", help="interface to listen on (config server.host, default 0.0.0.0)")
    p.add_argument("--port", type=int, help="port (config server.port, default 6002; 0 = any free port)")
    p.add_argument("--threads", type=int, help="worker threads (config server.threads, default 4)")
    p.add_argument("--max-upload-mb", type=float, help="request size limit in MB (config server.max_upload_mb)")
    args = p.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        cfg = load_config(args.config)
        given = {"host": args.host, "port": args.port, "threads": args.threads,
                 "max_upload_mb": args.max_upload_mb}
        given = {k: v for k, v in given.items() if v is not None}
        if given:
            cfg = cfg.override(server={**cfg.server.model_dump(), **given})
        app = create_app(cfg)
    except CarcolorError as e:
        print(f"carcolor: error: {e}", file=sys.stderr)
        return 2
    clf = app.extensions[_EXT].classifier

    def announce(url: str) -> None:
        print(f"carcolor: serving {clf.name} ({len(clf.labels)} colours) on {url} "
              f"with {cfg.server.threads} threads", file=sys.stderr, flush=True)

    try:
        serve(app, cfg, announce)     # until SIGINT/SIGTERM: a clean stop exits 0
    except OSError as e:
        print(f"carcolor: error: cannot listen on {cfg.server.host}:{cfg.server.port}: "
              f"{e.strerror or e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
