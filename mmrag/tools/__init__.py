"""mmrag's tools, defined once for every surface (no LangChain, no MCP here).

Each tool is a :class:`~mmrag.tools.specs.ToolSpec` (:mod:`mmrag.tools.catalog`): an argument model written
for the LLM (:mod:`mmrag.tools.schemas`), an implementation over a :class:`~mmrag.tools.context.ToolContext`
that returns a :class:`~mmrag.tools.result.ToolResult`, and whether it only reads. The surfaces adapt them:
:mod:`mmrag.langchain.tools` (LangChain ``BaseTool``s) and :mod:`mmrag.mcp` (an MCP server). Image arguments
are confined by :mod:`mmrag.kb.guard`, and what the LLM sees of paths is set by :mod:`mmrag.tools.paths`.
"""
