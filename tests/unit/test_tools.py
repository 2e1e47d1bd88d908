"""mmrag's LangChain tools: the standard suites for each tool, their outputs and limits, and image confinement.

The knowledge base is small (4 toy classes, 2 images each, a note per class and one prompt-injection note) and
built once per session: the ``tools_kb`` fixture (tests/conftest.py), which the agent, answer and CLI tests share.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from langchain_tests.integration_tests import ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests

from mmrag.errors import ConfigError, CorruptStoreError, ImageNotFoundError, PathNotAllowedError
from mmrag.kb.guard import ImageGuard, resolve_image_argument
from mmrag.kb.store import corrupt_message
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
from mmrag.tools.paths import PathView
from tests.support.attacks import hostile_arguments, make_jail, outside_reads
from tests.support.kbs import LABELS, image_id_of, kb_folder

ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/[\w.-]+/")
"""An absolute POSIX path (two components or more) in text sent to the LLM."""


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
    assert classified.content.splitlines()[1].split("  (fits")[0].endswith("blue star")
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
def jail(tmp_path: Path) -> dict[str, Path]:
    return make_jail(tmp_path)


def test_confined_arguments_are_refused_and_nothing_is_read(
    kb: KnowledgeBase, jail: dict[str, Path], opened: list[str]
) -> None:
    tools = {tool.name: tool for tool in make_tools(kb, roots=[jail["uploads"]])}
    for argument, reason in hostile_arguments(jail):
        for name, extra in [
            ("classify_image", {"labels": LABELS}),
            ("match_image_text", {"text": "a red circle"}),
            ("find_similar_images", {}),
        ]:
            message = tool_call(tools[name], image=argument, **extra)
            assert message.status == "error", (name, argument)
            assert reason in message.content, (name, argument, message.content)
            assert _leaks(message.content, _private(kb, jail["uploads"])) == [], message.content
    assert outside_reads(opened) == []


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
    for argument, reason in hostile_arguments(jail):
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


# --- what goes to the LLM: no absolute paths, no knowledge-base location ----------------------------------


def _private(kb: KnowledgeBase, *more: Path) -> list[str]:
    """What must not reach the LLM: the KB's location, its folders and the home folder."""
    return [kb.location, str(kb_folder(kb)), str(Path.home()), *(str(p) for p in more)]


def _leaks(text: str, private: list[str]) -> list[str]:
    return [p for p in private if p in text]


def test_contents_show_sources_relative_to_the_folders(kb: KnowledgeBase, tools: dict[str, BaseTool]) -> None:
    message = tool_call(tools["search_knowledge_base"], query="a red circle", k=4)
    assert "source=red_circle_01.png" in message.content
    assert "source=red_circle.md" in message.content
    assert not ABSOLUTE_PATH.search(message.content), message.content
    assert all(Path(h["source"]).is_absolute() for h in message.artifact["hits"])  # programs keep full paths
    by_path = tool_call(tools["find_similar_images"], image="red_circle_01.png", k=2)
    assert by_path.content.startswith("Images similar to red_circle_01.png")
    assert _leaks(by_path.content, _private(kb)) == []
    # A shown source is an argument the image tools take back.
    shown = next(line for line in message.content.splitlines() if "source=red_circle_02.png" in line)
    assert shown
    again = tool_call(tools["match_image_text"], image="red_circle_02.png", text="a red circle")
    assert again.status == "success"
    assert again.artifact["image"]["source"] == (kb_folder(kb) / "images" / "red_circle_02.png").as_posix()


class _DamagedKnowledgeBase:
    """The tools_kb whose searches fail as a damaged store's do (the message names its location)."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.store = kb.store
        self.clip = kb.clip

    @property
    def searcher(self) -> Any:
        raise CorruptStoreError(corrupt_message(self.kb.location))

    def add_files(self, paths: Any) -> Any:
        return self.kb.add_files(paths)


def _failing_calls(kb: KnowledgeBase) -> list[tuple[str, dict[str, Any], str]]:
    """(tool, arguments, what the message says): an mmrag error from every tool, most naming a path."""
    images = kb_folder(kb) / "images"
    return [
        ("classify_image", {"image": "img-" + "0" * 24, "labels": LABELS}, "in the knowledge base at <kb>"),
        ("match_image_text", {"image": "missing.png", "text": "a red circle"}, "under the allowed folders (images)"),
        ("find_similar_images", {"image": str(images / "nope.png")}, "no image file 'nope.png'"),
        ("classify_image", {"image": str(images / ".." / "notes" / "x.png"), "labels": LABELS}, "'../notes/x.png'"),
        ("match_image_text", {"image": "txt-" + "0" * 24 + "-00000", "text": "x"}, "text passage's id"),
        ("find_similar_images", {"image": "/etc/hostname", "k": 2}, "'/etc/hostname' is outside"),
    ]


def test_errors_of_every_tool_carry_no_absolute_paths(kb: KnowledgeBase, tools: dict[str, BaseTool]) -> None:
    for name, args, says in _failing_calls(kb):
        message = tool_call(tools[name], **args)
        assert message.status == "error", (name, args)
        assert says in message.content, (name, message.content)
        assert _leaks(message.content, _private(kb)) == [], (name, message.content)
    damaged = {tool.name: tool for tool in make_tools(_DamagedKnowledgeBase(kb))}
    for name in ("search_knowledge_base", "search_images"):
        message = tool_call(damaged[name], query="a red circle")
        assert message.status == "error"
        assert message.content.startswith("the knowledge base at <kb> is damaged")
        assert _leaks(message.content, _private(kb)) == []


def test_full_paths_sends_paths_as_they_are(kb: KnowledgeBase) -> None:
    tools = {tool.name: tool for tool in make_tools(kb, full_paths=True)}
    message = tool_call(tools["search_images"], query="a red circle", k=2)
    assert f"source={(kb_folder(kb) / 'images').as_posix()}/red_circle_0" in message.content
    missing = tool_call(tools["classify_image"], image="img-" + "0" * 24, labels=LABELS)
    assert kb.location in missing.content


def test_path_view_redacts_folders_location_home_and_other_paths(tmp_path: Path) -> None:
    photos, notes = tmp_path / "photos", tmp_path / "notes"
    view = PathView(lambda: (photos, notes), str(tmp_path / "kb"))
    assert view.show(f"{photos}/trips/beach.jpg") == "trips/beach.jpg"
    assert view.show("/elsewhere/x.png") == "x.png"
    assert view.show("img-0123") == "img-0123"
    message = (
        f"'{photos}/a.png' is outside ({photos}, {notes}); the knowledge base at {tmp_path}/kb; "
        f"lock {tmp_path}/kb.lock; "
        f"{Path.home()}/.cache/x; see /opt/models/weights.bin and http://example.com/a/b and and/or"
    )
    redacted = view.redact(message, keep=["/opt/models/weights.bin"])
    assert redacted == (
        "'a.png' is outside (photos, notes); the knowledge base at <kb>; lock …/kb.lock; "
        "~/.cache/x; see /opt/models/weights.bin and http://example.com/a/b and and/or"
    )
    assert view.redact(message).count("…/weights.bin") == 1
    assert PathView(lambda: (photos,), "kb", full_paths=True).redact(message) == message
