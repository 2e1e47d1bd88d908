"""``mmrag mcp`` as a real server process: over stdio (started by the MCP Python client, and by
langchain-mcp-adapters for an agent), and over streamable HTTP on 127.0.0.1 (a real HTTP client)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage
from langchain_mcp_adapters.client import MultiServerMCPClient
from langchain_mcp_adapters.tools import load_mcp_tools
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from mmrag.langchain.knowledge_base import KnowledgeBase
from tests.support.chat import ScriptedChatModel, call, tool_messages
from tests.support.cli import MmragCli
from tests.support.kbs import LABELS, image_id_of, kb_folder
from tests.support.net import free_port, wait_for_port

READ_ONLY = ["search_knowledge_base", "search_images", "find_similar_images", "classify_image", "match_image_text"]


def text_of(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def check_session(session: ClientSession, kb: KnowledgeBase, *, allow_add: bool = False) -> None:
    """What every transport must do: list the five read-only tools (and the add tool when the server allows it),
    search with images, refuse a system file, send no absolute path."""
    tools = (await session.list_tools()).tools
    assert [t.name for t in tools] == READ_ONLY + (["add_to_knowledge_base"] if allow_add else [])
    assert [t.annotations is not None and t.annotations.readOnlyHint for t in tools] == [True] * 5 + [False] * allow_add
    found = await session.call_tool("search_images", {"query": "a red circle", "k": 2})
    assert not found.isError
    assert "source=red_circle_0" in text_of(found)
    assert any(isinstance(block, types.ImageContent) for block in found.content)
    refused = await session.call_tool("classify_image", {"image": "/etc/shadow", "labels": LABELS})
    assert refused.isError
    assert "outside the allowed folders" in text_of(refused)
    for result in (found, refused):
        assert kb.location not in text_of(result)
        assert str(kb_folder(kb)) not in text_of(result)


async def test_stdio_server_process_serves_the_tools_and_an_agent(tools_kb: KnowledgeBase) -> None:
    """The MCP Python client starts ``python -m mmrag mcp`` (as a desktop client would start ``mmrag mcp``);
    then langchain-mcp-adapters loads the tools from that session into create_agent."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mmrag", "mcp", "--db", tools_kb.location], env=dict(os.environ)
    )
    star = image_id_of(tools_kb, "blue_star_02.png")
    model = ScriptedChatModel(
        responses=[
            call("search_images", 1, query="a blue star", k=2),
            call("classify_image", 2, image=star, labels=LABELS),
            AIMessage("A blue star."),
        ]
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        initialized = await session.initialize()
        assert initialized.serverInfo.name == "mmrag"
        assert "never instructions" in (initialized.instructions or "")
        await check_session(session, tools_kb)
        tools = await load_mcp_tools(session)
        assert [t.name for t in tools] == READ_ONLY
        result = await create_agent(model, tools).ainvoke({"messages": [HumanMessage("find the blue stars")]})
    [search] = tool_messages(result["messages"], "search_images")
    assert "blue_star" in str(search.content)
    [classified] = tool_messages(result["messages"], "classify_image")
    text = "\n".join(b["text"] for b in classified.content if isinstance(b, dict) and b.get("type") == "text")
    assert text.splitlines()[1].split("  (fits")[0].endswith("blue star")  # the most probable label comes first
    assert result["messages"][-1].content == "A blue star."


@pytest.fixture(scope="module")
def http_server(tools_kb: KnowledgeBase) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "mmrag", "mcp", "--transport", "http", "--port", str(port)]
    # --allow-add: the add tool is listed, never called (tools_kb is shared by the session's tests).
    proc = subprocess.Popen(
        [*command, "--db", tools_kb.location, "--allow-add"],
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, proc, timeout=120, what="mmrag mcp --transport http")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_streamable_http_on_loopback(http_server: str, tools_kb: KnowledgeBase) -> None:
    async with streamable_http_client(http_server) as (read, write, _), ClientSession(read, write) as session:
        await session.initialize()
        await check_session(session, tools_kb, allow_add=True)
    client = MultiServerMCPClient({"mmrag": {"url": http_server, "transport": "streamable_http"}})
    async with client.session("mmrag") as session:
        tools = await load_mcp_tools(session)
        assert [t.name for t in tools] == [*READ_ONLY, "add_to_knowledge_base"]


def test_http_refuses_other_hosts(http_server: str, mmrag_cli: MmragCli) -> None:
    """DNS rebinding: a request naming another host is refused; and the server never listens off loopback."""
    hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "Host": "attacker.example:80"}
    response = httpx.post(http_server, json=hello, headers=headers, timeout=10)
    assert response.status_code in (400, 421)
    evil_origin = {"Accept": "application/json, text/event-stream", "Origin": "http://attacker.example"}
    assert httpx.post(http_server, json=hello, headers=evil_origin, timeout=10).status_code in (400, 403)
    refused = mmrag_cli("mcp", "--transport", "http", "--host", "0.0.0.0", check=False)
    assert refused.exit_code == 1
    assert "not a loopback address" in refused.stderr
