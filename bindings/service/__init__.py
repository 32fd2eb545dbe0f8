"""The k50core HTTP service: an ASGI (Starlette) app over one Engine.

``create_app(engine=None, *, config=None, store=None, api_keys=(), cors_origins=(), now=None)``;
run it with ``k50core serve`` or any ASGI server.
"""
from ..visitors import VISITOR_COOKIE
from .app import create_app
from .errors import MAX_BODY
from .openapi import openapi_document

__all__ = ["MAX_BODY", "VISITOR_COOKIE", "create_app", "openapi_document"]
