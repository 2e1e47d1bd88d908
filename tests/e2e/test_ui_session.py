"""The UI's session functions without Streamlit: opening stores, answer text, examples, gallery pages, messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmrag.errors import NoKnowledgeBaseError
from mmrag.langchain.answer import NOTHING_FOUND, Answer, AnswerSource
from mmrag.langchain.knowledge_base import KnowledgeBase
from mmrag.ui import session
from mmrag.ui.answer_text import LLMStatus, answer_markdown, image_anchor
from tests.support.kbs import copy_kb


def _answer(*, llm_used: bool = False, text: str = "", sources: list[AnswerSource] | None = None) -> Answer:
    if sources is None:
        sources = [
            AnswerSource(1, "img-a", "image", "/very/long/path/images/red_circle_01.png", 0.93, "a red circle"),
            AnswerSource(2, "txt-b", "text", "/very/long/path/notes/red.md", 0.81, "red shapes"),
        ]
    return Answer("q", text, [], sources, llm_used)


def test_retrieval_only_text_uses_short_names_linked_to_the_grid() -> None:
    text = answer_markdown(_answer(), "h1")
    assert "/very/long/path" not in text
    assert f"[[1] red_circle_01.png](#{image_anchor('h1', 1)})" in text
    assert "`red.md`" in text
    assert "none configured" in text


def test_a_configured_but_missing_llm_says_so_in_the_answer() -> None:
    status = LLMStatus("openai:gpt-4o-mini", "OPENAI_API_KEY is not set.")
    text = answer_markdown(_answer(), "h1", status)
    assert "none configured" not in text
    assert "`openai:gpt-4o-mini` could not be loaded: OPENAI_API_KEY is not set." in text
    assert answer_markdown(_answer(sources=[]), "h1", status).endswith(NOTHING_FOUND)


def test_a_chat_models_image_citations_link_to_the_grid() -> None:
    text = answer_markdown(_answer(llm_used=True, text="Red [1], also [2]. Both [1, 2]."), "h3")
    anchor = image_anchor("h3", 1)
    assert text.count(f"[\\[1\\]](#{anchor})") == 2
    assert "also [2]." in text  # a passage: no link
    assert f"[\\[1\\]](#{anchor})\\[2\\]" in text


def test_image_anchors_are_safe_html_ids() -> None:
    assert image_anchor("sim-my photo", 2) == "mmrag-sim-my-photo-img-2"


def test_plurals_and_the_delete_message() -> None:
    assert session.removed_message(1, "/a/b/red.png") == (
        "Removed 1 document of red.png from the knowledge base; the file is untouched."
    )
    assert "Removed 3 documents of notes.md" in session.removed_message(3, "/x/notes.md")
    assert "nothing was removed" in session.removed_message(0, "/x/gone.md")


def test_language_notes_are_correct() -> None:
    assert session.language_note("toy") == (
        "The toy model reads English and Chinese only; a note appears when a question is in another language."
    )
    assert "English only" in (session.language_note("ViT-B-32/laion2b_s34b_b79k") or "")
    assert session.language_note("xlm-roberta-base-ViT-B-32/laion5b_s13b_b90k") is None


def test_examples_come_from_the_captions(demo_kb: KnowledgeBase) -> None:
    examples = session.example_questions(demo_kb)
    captions = {str(m.get("caption")) for m in demo_kb.store.metadatas("image").values()}
    assert len(examples) == 3
    assert len(set(examples)) == 3
    assert all(e.removeprefix("Show me ") in captions for e in examples)


def test_gallery_pages_through_every_image(demo_kb: KnowledgeBase) -> None:
    first = session.gallery(demo_kb)
    assert (first.total, first.pages, len(first.items)) == (48, 2, 24)
    assert first.summary() == "48 images match; showing 1–24 (page 1 of 2)."
    second = session.gallery(demo_kb, page=1)
    assert second.summary() == "48 images match; showing 25–48 (page 2 of 2)."
    assert not {i.id for i in first.items} & {i.id for i in second.items}
    assert session.gallery(demo_kb, page=9).page == 1  # past the end: the last page
    one = session.gallery(demo_kb, contains="red_circle_01")
    assert one.summary() == "1 image matches; showing 1–1 (page 1 of 1)."
    assert session.gallery(demo_kb, contains="no such thing").summary() == "0 images match."


def test_a_typed_path_that_holds_no_knowledge_base_creates_nothing(tmp_path: Path) -> None:
    typo = tmp_path / "typo"
    settings = session.settings_for(db=str(typo), model="toy")
    with pytest.raises(NoKnowledgeBaseError, match="nothing was created"):
        session.open_workspace(settings, create=False)
    assert not typo.exists()
    created = session.open_workspace(settings)
    assert created.created
    assert created.where == str(typo)
    assert (typo / "chroma.sqlite3").is_file()


def test_an_existing_store_is_opened_not_created(ui_demo_db: Path, tmp_path: Path) -> None:
    db = copy_kb(ui_demo_db, tmp_path / "kb")
    ws = session.open_workspace(session.settings_for(db=str(db)), create=False)
    assert not ws.created
    assert (ws.where, ws.model_name) == (str(db), "toy")


def test_split_location() -> None:
    assert session.split_location(" http://127.0.0.1:8000 ") == ("", "http://127.0.0.1:8000")
    assert session.split_location("~/kb") == ("~/kb", "")
