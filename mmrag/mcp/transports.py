"""Running the MCP server: over stdio (for desktop clients and IDEs that start it), or streamable HTTP on a
loopback address (for clients that connect to a running server).

HTTP listens on loopback addresses only (``127.0.0.1``, ``::1``, ``localhost``): the tools read the user's
files, and the server has no authentication. Requests whose ``Host`` or ``Origin`` header names another host
are refused (the SDK's DNS-rebinding protection).
"""

from __future__ import annotations

import contextlib
import ipaddress
import sys
from collections.abc import AsyncIterator
from typing import Any

from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from mmrag.errors import ConfigError

MCP_PATH = "/mcp"
"""Where the streamable HTTP endpoint is: ``http://127.0.0.1:PORT/mcp``."""
DEFAULT_PORT = 8765


async def run_stdio(server: Server[Any, Any]) -> None:
    """Serve ``server`` over this process's stdin and stdout until the client closes them.

    stdout carries the protocol alone: once the transport holds it, anything else printed in this process
    (a library's stray ``print``) goes to stderr.
    """
    async with stdio_server() as (read, write):
        with contextlib.redirect_stdout(sys.stderr):
            await server.run(read, write, server.create_initialization_options())


def check_loopback(host: str) -> None:
    """Raise :class:`~mmrag.errors.ConfigError` unless ``host`` is a loopback address."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        msg = (
            f"--host {host} is not a loopback address; the MCP server reads your files and has no authentication, "
            "so it listens on 127.0.0.1, ::1 or localhost only"
        )
        raise ConfigError(msg)


def http_app(server: Server[Any, Any]) -> Starlette:
    """A Starlette app serving ``server`` over streamable HTTP at :data:`MCP_PATH` (run it with uvicorn)."""
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
    )
    manager = StreamableHTTPSessionManager(app=server, security_settings=security)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with manager.run():
            yield

    return Starlette(routes=[Route(MCP_PATH, endpoint=_Endpoint(manager))], lifespan=lifespan)


class _Endpoint:
    """The session manager as an ASGI app (an instance, not a function, so Starlette passes ASGI calls on)."""

    def __init__(self, manager: StreamableHTTPSessionManager) -> None:
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.manager.handle_request(scope, receive, send)


async def run_http(server: Server[Any, Any], host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
    """Serve ``server`` over streamable HTTP at ``http://HOST:PORT/mcp`` until interrupted.

    Raises:
        ConfigError: ``host`` is not a loopback address.
    """
    import uvicorn

    check_loopback(host)
    config = uvicorn.Config(http_app(server), host=host.strip("[]"), port=port, log_level="warning")
    await uvicorn.Server(config).serve()
