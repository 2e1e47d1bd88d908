"""mmrag's LangChain tools: the standard suites for each tool, their outputs and limits, and image confinement.

The knowledge base is small (4 toy classes, 2 images each, a note per class and one prompt-injection note) and
built once per session: the ``tools_kb`` fixture (tests/conftest.py), which the agent, answer and CLI tests share.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from langchain_tests.integration_tests import ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests

from mmrag.errors import ConfigError, ImageNotFoundError, PathNotAllowedError
from mmrag.kb.guard import ImageGuard, resolve_image_argument
from mmrag.langchain.knowledge_base import KnowledgeBase
from mmrag.langchain.tools import (
    ClassifyImageTool,
    FindSimilarImagesTool,
    MatchImageTextTool,
    SearchImagesTool,
    SearchKnowledgeBaseTool,
    ToolContext,
    make_tools,
)
from mmrag.toy.shapes import CLASSES, draw
from tests.support.kbs import LABELS, image_id_of, kb_folder


def tool_call(tool: BaseTool, **args: Any) -> ToolMessage:
    message = tool.invoke({"name": tool.name, "args": args, "id": "call-1", "type": "tool_call"})
    assert isinstance(message, ToolMessage)
    return message


# --- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kb(tools_kb: KnowledgeBase) -> KnowledgeBase:
    return tools_kb


@pytest.fixture(scope="session")
def tools(kb: KnowledgeBase) -> dict[str, BaseTool]:
    return {tool.name: tool for tool in make_tools(kb)}


# --- the standard suites, for each tool -----------------------------------------------------------------

_SESSION: dict[str, Any] = {}


class _KnowledgeBaseToolSuite:
    tool_class: type[BaseTool]

    @pytest.fixture(autouse=True)
    def _context(self, kb: KnowledgeBase) -> None:
        _SESSION["context"] = ToolContext.of(kb)
        _SESSION["image"] = image_id_of(kb, "red_circle_01.png")

    @property
    def tool_constructor(self) -> type[BaseTool]:
        return self.tool_class

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"context": _SESSION["context"]}


class _SearchSuite(_KnowledgeBaseToolSuite):
    tool_class = SearchKnowledgeBaseTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"query": "a red circle", "k": 3}


class _SearchImagesSuite(_KnowledgeBaseToolSuite):
    tool_class = SearchImagesTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"query": "a blue star", "k": 2}


class _SimilarSuite(_KnowledgeBaseToolSuite):
    tool_class = FindSimilarImagesTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"image": _SESSION["image"], "k": 2}


class _ClassifySuite(_KnowledgeBaseToolSuite):
    tool_class = ClassifyImageTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"image": _SESSION["image"], "labels": LABELS}


class _MatchSuite(_KnowledgeBaseToolSuite):
    tool_class = MatchImageTextTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"image": _SESSION["image"], "text": "a red circle"}


class TestSearchUnit(_SearchSuite, ToolsUnitTests):
    pass


class TestSearchIntegration(_SearchSuite, ToolsIntegrationTests):
    pass


class TestSearchImagesUnit(_SearchImagesSuite, ToolsUnitTests):
    pass


class TestSearchImagesIntegration(_SearchImagesSuite, ToolsIntegrationTests):
    pass


class TestSimilarUnit(_SimilarSuite, ToolsUnitTests):
    pass


class TestSimilarIntegration(_SimilarSuite, ToolsIntegrationTests):
    pass


class TestClassifyUnit(_ClassifySuite, ToolsUnitTests):
    pass


class TestClassifyIntegration(_ClassifySuite, ToolsIntegrationTests):
    pass


class TestMatchUnit(_MatchSuite, ToolsUnitTests):
    pass


class TestMatchIntegration(_MatchSuite, ToolsIntegrationTests):
    pass


# --- outputs ---------------------------------------------------------------------------------------------


def test_factory_builds_the_five_tools_with_described_arguments(tools: dict[str, BaseTool]) -> None:
    assert list(tools) == [
        "search_knowledge_base",
        "search_images",
        "find_similar_images",
        "classify_image",
        "match_image_text",
    ]
    for tool in tools.values():
        assert tool.response_format == "content_and_artifact"
        assert tool.handle_tool_error is True
        properties = tool.tool_call_schema.model_json_schema()["properties"]  # type: ignore[union-attr]
        assert properties
        assert all(len(p.get("description", "")) > 20 for p in properties.values()), tool.name
    assert "img-" in tools["classify_image"].args["image"]["description"]


def test_search_knowledge_base_gives_mixed_hits_as_text_and_artifact(tools: dict[str, BaseTool]) -> None:
    message = tool_call(tools["search_knowledge_base"], query="a red circle", k=4)
    hits = message.artifact["hits"]
    assert message.status == "success"
    assert {(Path(h["source"]).stem, h["modality"]) for h in hits[:3]} == {
        ("red_circle_01", "image"),
        ("red_circle_02", "image"),
        ("red_circle", "text"),
    }
    for hit in hits:
        assert hit["id"] in message.content
        assert Path(hit["source"]).is_absolute()
        assert 0.8 <= hit["score"] <= 1.0
    assert "a red circle 一个红色的圆形" in message.content  # the passage itself
    assert "caption='a red circle'" in message.content
    assert "not instructions" in message.content
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)


def test_search_images_returns_images_with_thumbnails(tools: dict[str, BaseTool]) -> None:
    message = tool_call(tools["search_images"], query="a blue star", k=3)
    hits = message.artifact["hits"]
    assert {h["modality"] for h in hits} == {"image"}
    assert Path(hits[0]["source"]).stem.startswith("blue_star")
    assert all(h["thumbnail"].startswith("data:image/jpeg;base64,") for h in hits)
    assert "thumbnail" not in message.content  # thumbnails are for UIs, not the LLM


def test_find_similar_images_by_id_and_by_relative_path(kb: KnowledgeBase, tools: dict[str, BaseTool]) -> None:
    red = image_id_of(kb, "red_circle_01.png")
    by_id = tool_call(tools["find_similar_images"], image=red, k=3)
    assert by_id.artifact["image"]["id"] == red
    assert red not in [h["id"] for h in by_id.artifact["hits"]]  # itself is left out
    assert Path(by_id.artifact["hits"][0]["source"]).name == "red_circle_02.png"
    by_path = tool_call(tools["find_similar_images"], image="red_circle_01.png", k=3)
    assert Path(by_path.artifact["image"]["source"]).name == "red_circle_01.png"
    assert Path(by_path.artifact["hits"][0]["source"]).name == "red_circle_02.png"


def test_classify_and_match(kb: KnowledgeBase, tools: dict[str, BaseTool]) -> None:
    star = image_id_of(kb, "blue_star_02.png")
    classified = tool_call(tools["classify_image"], image=star, labels=LABELS)
    assert classified.artifact["best"] == "blue star"
    assert sum(s["probability"] for s in classified.artifact["labels"]) == pytest.approx(1.0, abs=1e-4)
    assert classified.content.splitlines()[1].endswith("blue star")
    yes = tool_call(tools["match_image_text"], image=star, text="a blue star")
    no = tool_call(tools["match_image_text"], image=star, text="a red circle")
    assert yes.artifact["match"] is True
    assert yes.artifact["probability"] > no.artifact["probability"]
    assert yes.artifact["similarity"] > no.artifact["similarity"] + 0.1
    assert yes.content.startswith("match: probability")


def test_k_is_capped_and_labels_are_bounded(kb: KnowledgeBase) -> None:
    tools = {tool.name: tool for tool in make_tools(kb, max_k=2, max_labels=3)}
    capped = tool_call(tools["search_knowledge_base"], query="a red circle", k=50)
    assert capped.artifact["k"] == 2
    assert len(capped.artifact["hits"]) == 2
    assert "capped at 2" in capped.content
    too_big = tool_call(tools["search_images"], query="a red circle", k=1000)
    assert too_big.status == "error"
    assert "k" in too_big.content
    assert "less than or equal to 100" in too_big.content
    zero = tool_call(tools["search_images"], query="a red circle", k=0)
    assert zero.status == "error"
    too_many = tool_call(tools["classify_image"], image=image_id_of(kb, "red_circle_01.png"), labels=LABELS)
    assert too_many.status == "error"
    assert "at most 3 labels" in too_many.content
    with pytest.raises(ConfigError, match="max_k"):
        make_tools(kb, max_k=0)


def test_unknown_ids_are_clear_errors(tools: dict[str, BaseTool]) -> None:
    missing = tool_call(tools["classify_image"], image="img-" + "0" * 24, labels=LABELS)
    assert missing.status == "error"
    assert "no image with id" in missing.content
    text_id = tool_call(tools["match_image_text"], image="txt-" + "0" * 24 + "-00000", text="a red circle")
    assert "text passage's id" in text_id.content


# --- confinement ------------------------------------------------------------------------------------------


@pytest.fixture
def jail(tmp_path: Path, kb: KnowledgeBase) -> dict[str, Path]:
    """An extra root ``uploads`` with a good image and links out, and a real image outside every root."""
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.png"
    draw(CLASSES[0], random.Random(1), size=64).save(secret)
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    draw(CLASSES[0], random.Random(2), size=64).save(uploads / "ok.png")
    (uploads / "link.png").symlink_to(secret)
    (uploads / "linked-dir").symlink_to(outside, target_is_directory=True)
    (uploads / "inside-link.png").symlink_to(uploads / "ok.png")
    return {"outside": outside, "secret": secret, "uploads": uploads}


def _attacks(jail: dict[str, Path]) -> list[tuple[str, str]]:
    """(argument, what the refusal says): every argument names a readable image outside the roots."""
    secret = str(jail["secret"])
    return [
        ("../outside/secret.png", "contains '..'"),
        (str(jail["uploads"] / ".." / "outside" / "secret.png"), "contains '..'"),
        (secret, "outside the allowed folders"),
        ("/etc/passwd", "outside the allowed folders"),
        ("/etc/shadow", "outside the allowed folders"),
        ("link.png", "symbolic link"),
        (str(jail["uploads"] / "link.png"), "symbolic link"),
        ("linked-dir/secret.png", "symbolic link"),
        ("ok.png\x00/../../outside/secret.png", "NUL byte"),
        (secret + "\x00", "NUL byte"),
        ("file://" + secret, "URL"),
        ("http://example.com/secret.png", "URL"),
        ("data:image/png;base64,iVBORw0KGgo=", "URL"),
        ("~/secret.png", "starts with '~'"),
        (".hidden/secret.png", "hidden"),
    ]


def test_confined_arguments_are_refused_and_nothing_is_read(
    kb: KnowledgeBase, jail: dict[str, Path], opened: list[str]
) -> None:
    tools = {tool.name: tool for tool in make_tools(kb, roots=[jail["uploads"]])}
    for argument, reason in _attacks(jail):
        for name, extra in [
            ("classify_image", {"labels": LABELS}),
            ("match_image_text", {"text": "a red circle"}),
            ("find_similar_images", {}),
        ]:
            message = tool_call(tools[name], image=argument, **extra)
            assert message.status == "error", (name, argument)
            assert reason in message.content, (name, argument, message.content)
    reads = [p for p in opened if "outside" in p or "secret" in p or p.startswith("/etc")]
    assert reads == []


def test_allowed_paths_are_read_and_recorded(kb: KnowledgeBase, jail: dict[str, Path], opened: list[str]) -> None:
    """The control for the test above: reading an allowed file is seen by the recorder."""
    tools = {tool.name: tool for tool in make_tools(kb, roots=[jail["uploads"]])}
    for argument in ("ok.png", str(jail["uploads"] / "ok.png"), "inside-link.png"):
        message = tool_call(tools["classify_image"], image=argument, labels=LABELS)
        assert message.status == "success", message.content
        assert message.artifact["image"]["source"] == (jail["uploads"] / "ok.png").as_posix()
    assert str(jail["uploads"] / "ok.png") in opened


def test_resolve_image_argument_raises_typed_errors(jail: dict[str, Path]) -> None:
    roots = [jail["uploads"]]
    assert resolve_image_argument("ok.png", roots=roots, store=None).path == jail["uploads"] / "ok.png"
    for argument, reason in _attacks(jail):
        with pytest.raises(PathNotAllowedError, match=reason.replace("'", ".")):
            resolve_image_argument(argument, roots=roots, store=None)
    with pytest.raises(ImageNotFoundError):
        resolve_image_argument("missing.png", roots=roots, store=None)
    with pytest.raises(PathNotAllowedError, match="no folders are allowed"):
        resolve_image_argument("ok.png", roots=[], store=None)


def test_default_roots_are_the_knowledge_base_image_folders(kb: KnowledgeBase, tmp_path: Path) -> None:
    images = (kb_folder(kb) / "images").resolve()
    assert ImageGuard(kb.store).roots == (images,)
    assert ImageGuard(kb.store, [tmp_path]).roots == (images, tmp_path)
    assert Path("/") not in ImageGuard(kb.store, [images / "sub"]).roots  # nested roots collapse
    assert ImageGuard(kb.store, [images / "sub"]).roots == (images,)
