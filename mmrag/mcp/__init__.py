"""mmrag's tools as an MCP server (the official ``mcp`` SDK), over stdio or streamable HTTP on a loopback address.

The tools are the same :class:`~mmrag.tools.specs.ToolSpec` s the LangChain tools adapt (:mod:`mmrag.tools`):
same schemas, limits, confinement and path redaction. :func:`~mmrag.mcp.server.build_server` makes the
server; :mod:`mmrag.mcp.transports` runs it. ``mmrag mcp`` (:mod:`mmrag.cli.mcp`) is the command line.
"""
