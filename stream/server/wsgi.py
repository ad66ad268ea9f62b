"""The WSGI server under the app: waitress, one process, ``server.threads`` threads.

Why waitress. It is a production WSGI server in pure Python that runs one
process with ``server.threads`` worker threads. One process means the model is
built once, in :func:`create_app`, and shared by all threads: ONNX Runtime and
OpenCV release the GIL, so image decoding overlaps across threads while model
calls are serialised on the classifier's lock, each using all ``threads``
inference cores. gunicorn's pre-fork workers would each hold a copy of the model
and its own intra-op thread pool (N x memory, N x oversubscribed cores); ONNX
Runtime sessions are not fork-safe, so ``--preload`` cannot share one; and
gunicorn does not run on Windows. Waitress also buffers each request body before
the app sees it, so slow clients never hold a worker thread.
"""
from __future__ import annotations

import json
import signal
import threading

from flask import Flask

from ..config import Config
from .app import MB, max_upload_bytes


def make_server(app: Flask, cfg: Config):
    """A bound (not yet running) waitress server for ``app`` on ``cfg.server``'s host and port.

    Waitress refuses bodies over twice the app's limit as soon as it reads the
    Content-Length header (so a 1 GB upload is never buffered); bodies between
    the limit and that are read and refused by Flask. Both answer 413 in JSON.
    """
    from waitress import create_server

    limit = max_upload_bytes(cfg)
    server = create_server(
        app, host=cfg.server.host, port=cfg.server.port, threads=cfg.server.threads,
        max_request_body_size=2 * limit + MB, ident="carcolor", channel_timeout=60,
        asyncore_use_poll=True, clear_untrusted_proxy_headers=True)
    _json_errors(server)
    return server


def _json_errors(server) -> None:
    """Make waitress's own error answers (413, 400 bad framing, ...) JSON too."""
    from waitress.channel import HTTPChannel
    from waitress.task import ErrorTask

    class JsonErrorTask(ErrorTask):
        def execute(self):
            e = self.request.error
            body = json.dumps({"error": f"{e.reason}: {e.body}"}).encode()
            self.status = f"{e.code} {e.reason}"
            self.response_headers.append(("Content-Type", "application/json"))
            self.set_close_on_finish()
            self.content_length = len(body)
            self.write(body)

    class JsonChannel(HTTPChannel):
        error_task_class = JsonErrorTask

    if hasattr(server, "channel_class"):
        server.channel_class = JsonChannel


def serve(app: Flask, cfg: Config, announce=None) -> None:
    """Serve ``app`` until SIGINT/SIGTERM. ``announce(url)`` is called once listening."""
    server = make_server(app, cfg)
    url = f"http://{server.effective_host}:{server.effective_port}"
    if announce:
        announce(url)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        server.run()     # returns after KeyboardInterrupt, having stopped its threads
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt
