"""``mmrag mcp``: serve the knowledge base's tools to MCP clients, over stdio or streamable HTTP on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from mmrag.cli.common import ChromaUrlOpt, DbOpt, ModelOpt, cli, settings_from
from mmrag.defaults import DEFAULT_MAX_K, DEFAULT_MAX_LABELS

DEFAULT_PORT = 8765
"""The HTTP port unless ``--port`` (the same as :data:`mmrag.mcp.transports.DEFAULT_PORT`)."""


@cli.command()
def mcp(
    ctx: typer.Context,
    transport: Annotated[
        Literal["stdio", "http"],
        typer.Option(help="stdio (the client starts this command) or http (streamable HTTP at /mcp)."),
    ] = "stdio",
    host: Annotated[str, typer.Option(help="HTTP: a loopback address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP: the port.")] = DEFAULT_PORT,
    db: DbOpt = None,
    chroma_url: ChromaUrlOpt = None,
    model: ModelOpt = None,
    root: Annotated[
        list[Path] | None,
        typer.Option("--root", help="A folder whose images the tools may read too (repeatable)."),
    ] = None,
    max_k: Annotated[int, typer.Option(help="The most results one tool call returns.")] = DEFAULT_MAX_K,
    max_labels: Annotated[int, typer.Option(help="The most labels one classification takes.")] = DEFAULT_MAX_LABELS,
    allow_add: Annotated[
        bool,
        typer.Option("--allow-add", help="Offer add_to_knowledge_base, confined to the knowledge base's folders."),
    ] = False,
    full_paths: Annotated[
        bool,
        typer.Option("--full-paths", help="Send absolute paths and the KB's location (default: relative paths)."),
    ] = False,
) -> None:
    """Serve search, image search, similar images, zero-shot classification and image-text matching as MCP tools."""
    import anyio

    from mmrag.factory import open_knowledge_base
    from mmrag.mcp.server import build_server
    from mmrag.mcp.transports import check_loopback, run_http, run_stdio

    if transport == "http":
        check_loopback(host)
    kb = open_knowledge_base(settings_from(ctx, db=db, chroma_url=chroma_url, model=model), create=False)
    server = build_server(
        kb, roots=root, max_k=max_k, max_labels=max_labels, full_paths=full_paths, allow_add=allow_add
    )
    if transport == "stdio":
        anyio.run(run_stdio, server)
        return
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"mmrag MCP server at http://{shown}:{port}/mcp (Ctrl-C to stop)", err=True)
    anyio.run(run_http, server, host, port)
