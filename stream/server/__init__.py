"""``carcolor serve``: the car-colour HTTP API, compatible with the original Flask server.

- ``app``: ``create_app`` (the Flask app, its classifier built once), the endpoints, the JSON errors;
- ``openapi``: the OpenAPI document; ``wsgi``: waitress (``make_server``, ``serve``); ``cli``: ``main``.
"""
from .app import ApiError, create_app, max_upload_bytes
from .cli import main
from .openapi import openapi_spec
from .wsgi import make_server, serve

__all__ = ["ApiError", "create_app", "main", "make_server", "max_upload_bytes", "openapi_spec", "serve"]
