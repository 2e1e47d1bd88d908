"""The Streamlit UI through AppTest: asking (from the one chat column), the sidebar telling the truth, fresh
counts, enlarging and paging images, first impressions, uploads, and the visible fallback to the toy demo."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from mmrag.langchain.knowledge_base import KnowledgeBase
from tests.support.files import shape_png
from tests.support.kbs import copy_kb
from tests.support.ui import APP, TIMEOUT, started_app, texts


@pytest.fixture
def kb_dir(ui_demo_db: Path, tmp_path: Path) -> Path:
    return copy_kb(ui_demo_db, tmp_path / "kb")


@pytest.fixture
def app(kb_dir: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    return started_app(kb_dir, monkeypatch)


def ok(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def open_store(at: AppTest, where: str | None = None, model: str | None = None) -> None:
    """Type into the sidebar's store fields and press Open."""
    if where is not None:
        at.text_input(key="kb_where").set_value(where)
    if model is not None:
        at.text_input(key="kb_model").set_value(model)
    at.button(key="open_store").click().run()
    assert not at.exception, at.exception


def sidebar_captions(at: AppTest) -> str:
    return "\n".join(str(c.value) for c in at.sidebar.caption)


# --- asking -----------------------------------------------------------------------------------------------


def test_ask_shows_the_answer_with_its_images(app: AppTest, kb_dir: Path) -> None:
    app.chat_input[0].set_value("a red circle").run()
    ok(app)
    answer = next(m.value for m in app.markdown if m.value.startswith("No LLM was used"))
    assert "red_circle_01.png](#mmrag-h1-img-" in answer  # a short name, linked to its place in the grid
    assert str(kb_dir.parent) not in answer  # no absolute paths in the text
    assert any('<span id="mmrag-h1-img-' in c.value for c in app.caption)  # the anchors in the grid
    assert len(app.image) >= 1
    app.run()  # the answer stays in the session's history
    assert "No LLM was used" in texts(app)
    assert "Query texts: torch (text_runtime=torch)" in sidebar_captions(app)  # the tests' MMRAG_TEXT_RUNTIME


def test_enlarge_shows_the_original_with_caption_source_and_score(app: AppTest) -> None:
    app.chat_input[0].set_value("a red circle").run()
    shown = len(app.image)
    app.button(key="h1-0").click().run()  # the first image of the first answer
    ok(app)
    assert len(app.image) == shown + 1  # the dialog's image
    [facts] = [c.value for c in app.caption if c.value.startswith("Source: ")]
    assert facts.split("`")[1].endswith(".png")
    assert Path(facts.split("`")[1]).is_file()  # the original file, not the thumbnail
    assert "Score (relevance): " in facts
    assert any(m.value.startswith("**a ") for m in app.markdown)  # its caption


def test_the_chat_input_and_its_answers_share_one_column(app: AppTest) -> None:
    """No tab hides the chat: the input and the answers live in the first column; the tools in the second."""
    chat, tools = app.columns[0], app.columns[1]
    assert len(chat.get("chat_input")) == 1
    assert [t.label for t in app.tabs] == ["Image", "Knowledge base"]
    assert all(len(t.get("chat_input")) == 0 for t in app.tabs)
    app.chat_input[0].set_value("a blue star").run()
    ok(app)
    assert any(m.value.startswith("No LLM was used") for m in app.columns[0].markdown)
    assert not any(m.value.startswith("No LLM was used") for m in tools.markdown)


def test_an_empty_chat_offers_example_questions_from_the_kb(app: AppTest) -> None:
    examples = [b for b in app.button if (b.key or "").startswith("example-")]
    assert len(examples) == 3
    assert all(b.label.startswith("Show me a") for b in examples), [b.label for b in examples]
    label = examples[0].label
    examples[0].click().run()
    ok(app)
    assert label in [m.value for m in app.markdown]  # asked, as if typed
    assert "No LLM was used" in texts(app)
    assert not [b for b in app.button if (b.key or "").startswith("example-")]  # gone once the chat has begun


# --- the sidebar ----------------------------------------------------------------------------------------------


def test_the_sidebar_shows_what_is_in_use(app: AppTest, kb_dir: Path) -> None:
    assert app.text_input(key="kb_where").value == str(kb_dir)
    assert app.text_input(key="kb_model").value == "toy"
    captions = sidebar_captions(app)
    assert f"Knowledge base: `{kb_dir}`" in captions
    assert "The toy model reads English and Chinese only" in captions
    assert "(the toy" not in captions


def test_a_typed_path_without_a_knowledge_base_creates_nothing(app: AppTest, kb_dir: Path, tmp_path: Path) -> None:
    typo = tmp_path / "typo"
    open_store(app, str(typo))
    assert not typo.exists()
    assert any(str(typo) in e.value and "nothing was created" in e.value for e in app.sidebar.error)
    assert app.text_input(key="kb_where").value == str(kb_dir)  # still showing the one in use
    assert int(app.metric[0].value) > 0
    app.button(key="create_store").click().run()  # asked for, visibly: now it is made
    ok(app)
    assert (typo / "chroma.sqlite3").is_file()
    assert app.text_input(key="kb_where").value == str(typo)
    assert int(app.metric[0].value) == 0
    assert any("is empty" in i.value for i in app.info)


def test_typing_another_knowledge_base_opens_it(app: AppTest, ui_demo_db: Path, tmp_path: Path) -> None:
    other = copy_kb(ui_demo_db, tmp_path / "other")
    open_store(app, str(other))
    ok(app)
    assert app.text_input(key="kb_where").value == str(other)
    assert f"Knowledge base: `{other}`" in sidebar_captions(app)


def test_a_model_the_kb_was_not_built_with_is_a_message(app: AppTest, kb_dir: Path, tiny_model_id: str) -> None:
    open_store(app, model=tiny_model_id)
    assert app.sidebar.error, "a model mismatch must be reported"
    assert "Not opened" in app.sidebar.error[0].value
    assert app.text_input(key="kb_model").value == "toy"
    assert app.text_input(key="kb_where").value == str(kb_dir)


def test_an_unreachable_server_is_a_message(app: AppTest, kb_dir: Path) -> None:
    from tests.support.net import free_port

    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    open_store(app, url)
    assert any(e.value.startswith("Not opened: ") for e in app.sidebar.error), [e.value for e in app.sidebar.error]
    assert not [b for b in app.button if b.key == "create_store"]  # a server is never created
    assert app.text_input(key="kb_where").value == str(kb_dir)


# --- fresh state ------------------------------------------------------------------------------------------


def test_delete_updates_the_counts_at_once(app: AppTest) -> None:
    before = int(app.metric[0].value)
    assert "24 images match" in texts(app)
    app.text_input(key="gallery_filter").set_value("red").run()
    assert "4 images match" in texts(app)
    source = next(o for o in app.selectbox(key="delete_source").options if o.endswith("red_circle_01.png"))
    app.selectbox(key="delete_source").set_value(source).run()
    app.button(key="delete").click().run()
    ok(app)
    assert [s.value for s in app.success] == [
        "Removed 1 document of red_circle_01.png from the knowledge base; the file is untouched."
    ]
    assert int(app.metric[0].value) == before - 1  # no reload needed
    assert "3 images match" in texts(app)


def test_add_upload_grows_the_count_at_once(app: AppTest) -> None:
    before = int(app.metric[0].value)
    app.file_uploader(key="uploads").set_value(("new.png", shape_png("blue-star", seed=99), "image/png"))
    app.radio(key="action").set_value("Add to the knowledge base").run()
    app.button(key="run").click().run()
    ok(app)
    assert any("added 1" in s.value for s in app.success), [s.value for s in app.success]
    assert int(app.metric[0].value) == before + 1


def test_re_adding_an_unchanged_file_leaves_no_progress_bar(app: AppTest) -> None:
    app.file_uploader(key="uploads").set_value(("again.png", shape_png("red-star", seed=5), "image/png"))
    app.radio(key="action").set_value("Add to the knowledge base").run()
    app.button(key="run").click().run()
    count = int(app.metric[0].value)
    app.button(key="run").click().run()  # the same file, unchanged
    ok(app)
    assert any("unchanged 1" in s.value for s in app.success), [s.value for s in app.success]
    assert not app.get("progress")
    assert "Indexing…" not in texts(app)
    assert int(app.metric[0].value) == count


# --- images -----------------------------------------------------------------------------------------------


def test_the_gallery_pages(demo_kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMRAG_DB", demo_kb.location)  # 48 images; only read here
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    ok(at)
    assert "48 images match; showing 1–24 (page 1 of 2)." in texts(at)
    assert at.button(key="gallery_prev").disabled
    first = {c.value for c in at.caption}
    at.button(key="gallery_next").click().run()
    ok(at)
    assert "48 images match; showing 25–48 (page 2 of 2)." in texts(at)
    assert at.button(key="gallery_next").disabled
    assert {c.value for c in at.caption} != first
    at.button(key="gallery-0").click().run()  # enlarge from the gallery
    ok(at)
    assert any(c.value.startswith("Source: ") for c in at.caption)
    at.text_input(key="gallery_filter").set_value("blue").run()  # a new filter starts at its first page
    assert "8 images match; showing 1–8 (page 1 of 1)." in texts(at)


def test_upload_then_classify(app: AppTest) -> None:
    app.file_uploader(key="uploads").set_value(("mine.png", shape_png("red-circle"), "image/png"))
    app.radio(key="action").set_value("Classify into labels").run()
    app.text_input(key="labels").set_value("red circle, blue square, green star")
    app.button(key="run").click().run()
    ok(app)
    assert "**red circle**" in [m.value for m in app.markdown]


def test_a_bad_upload_is_refused_with_a_message(app: AppTest) -> None:
    app.file_uploader(key="uploads").set_value(("fake.png", b"this is not a png", "image/png")).run()
    assert not app.exception, app.exception
    assert any("fake.png is not an image" in e.value for e in app.error), [e.value for e in app.error]
    assert app.button(key="run").disabled


# --- fallback and chat models ---------------------------------------------------------------------------------


def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The configured model's weights can't be had (the toy still loads)."""
    from mmrag.errors import ModelUnavailableError
    from mmrag.model.clip import ClipModel

    real_load = ClipModel.load

    def load(self: ClipModel) -> None:
        if self.model_name != "toy":
            msg = f"weights for {self.model_name} are not cached and the network is off (offline)"
            raise ModelUnavailableError(msg)
        real_load(self)

    monkeypatch.setattr(ClipModel, "load", load)
    monkeypatch.setenv("MMRAG_MODEL", "ViT-B-32")


def test_offline_the_ui_shows_the_folder_it_was_asked_to_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`mmrag ui --index sample_kb` offline: sample_kb, indexed with the toy, not the shapes demo."""
    from mmrag.cli.ui import _index_first
    from mmrag.config import Settings

    _offline(monkeypatch)
    _index_first(Settings.from_env(), Path("sample_kb"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    [banner] = [w.value for w in at.warning]
    assert "toy model" in banner
    assert len(banner) < 120
    offline = tmp_path / "mmrag-home" / "offline" / "kb"
    assert at.text_input(key="kb_where").value == str(offline)
    at.chat_input[0].set_value("a tabby cat").run()
    assert not at.exception, at.exception
    shown = texts(at)
    assert "cat_chelsea" in shown
    at.chat_input[0].set_value("a giraffe").run()
    assert "Nothing in the knowledge base matches" in texts(at)


def test_unavailable_weights_fall_back_to_the_toy_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _offline(monkeypatch)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    [banner] = [w.value for w in at.warning]
    assert "toy model" in banner
    assert "(" not in banner
    assert ").)." not in banner
    assert len(banner) < 120
    assert "not cached" in texts(at)  # the reason, under the banner
    assert int(at.metric[0].value) > 0  # the demo was built under MMRAG_HOME/demo
    demo = Path(tmp_path / "mmrag-home") / "demo" / "kb"
    assert demo.is_dir()
    assert at.text_input(key="kb_where").value == str(demo)  # the fields show what is in use
    assert at.text_input(key="kb_model").value == "toy"
    assert not (Path(tmp_path / "mmrag-home") / "kb").exists()  # and nothing was made for the unavailable model


def test_a_chat_model_answer_streams_with_citations(
    kb_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from mmrag.ui import session

    monkeypatch.setattr(session, "open_llm", lambda spec: FakeListChatModel(responses=["A red circle [1]."]))
    monkeypatch.setenv("MMRAG_DB", str(kb_dir))
    monkeypatch.setenv("MMRAG_MODEL", "toy")
    monkeypatch.setenv("MMRAG_LLM", f"fake:{tmp_path.name}")  # a fresh cache key
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.chat_input[0].set_value("a red circle").run()
    ok(at)
    assert len(at.image) >= 1
    [text] = [m.value for m in at.markdown if m.value.startswith("A red circle")]
    assert "(cited)" in texts(at) or "[\\[1\\]](#mmrag-h1-img-1)" in text


def test_a_configured_but_missing_llm_says_so_in_the_answer(app: AppTest) -> None:
    app.text_input(key="llm_text").set_value("nosuchprovider:model").run()
    assert any("nosuchprovider" in w.value for w in app.sidebar.warning), [w.value for w in app.sidebar.warning]
    app.chat_input[0].set_value("a blue star").run()
    assert not app.exception, app.exception
    answer = next(m.value for m in app.markdown if m.value.startswith("No LLM was used"))
    assert "`nosuchprovider:model` could not be loaded" in answer
    assert "none configured" not in answer
