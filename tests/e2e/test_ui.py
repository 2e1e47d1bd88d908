"""The Streamlit UI through AppTest: ask, classify an upload, add to the knowledge base, refuse a bad upload,
and fall back visibly to the toy demo when the model's weights can't be had."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.support.files import shape_png
from tests.support.kbs import copy_kb
from tests.support.ui import APP, TIMEOUT, texts


@pytest.fixture
def app(ui_demo_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("MMRAG_DB", str(copy_kb(ui_demo_db, tmp_path / "kb")))
    monkeypatch.setenv("MMRAG_MODEL", "toy")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def test_ask_shows_the_answer_with_its_images(app: AppTest) -> None:
    app.chat_input[0].set_value("a red circle").run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    assert "No LLM was used" in texts(app)
    assert len(app.image) >= 1  # the answer's image grid
    assert "red" in texts(app).lower()
    app.run()  # the answer stays in the session's history
    assert "No LLM was used" in texts(app)
    app.button(key="h1-0").click().run()  # enlarge the first image (a dialog)
    assert not app.exception, app.exception
    sidebar = "\n".join(str(c.value) for c in app.sidebar.caption)
    assert "Query texts: torch (text_runtime=torch)" in sidebar  # the tests' MMRAG_TEXT_RUNTIME


def test_browse_and_delete_a_document(app: AppTest) -> None:
    before = int(app.metric[0].value)
    assert "24 images match" in texts(app)
    app.text_input(key="gallery_filter").set_value("red").run()
    assert "4 images match" in texts(app)
    source = next(o for o in app.selectbox(key="delete_source").options if o.endswith("red_circle_01.png"))
    app.selectbox(key="delete_source").set_value(source).run()
    app.button(key="delete").click().run()
    assert not app.exception, app.exception
    assert any("removed 1 documents" in s.value for s in app.success), [s.value for s in app.success]
    app.run()
    assert int(app.metric[0].value) == before - 1


def test_upload_then_classify(app: AppTest) -> None:
    app.file_uploader(key="uploads").set_value(("mine.png", shape_png("red-circle"), "image/png"))
    app.radio(key="action").set_value("Classify into labels").run()
    app.text_input(key="labels").set_value("red circle, blue square, green star")
    app.button(key="run").click().run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    assert "**red circle**" in [m.value for m in app.markdown]


def test_add_upload_grows_the_count(app: AppTest) -> None:
    before = int(app.metric[0].value)
    app.file_uploader(key="uploads").set_value(("new.png", shape_png("blue-star", seed=99), "image/png"))
    app.radio(key="action").set_value("Add to the knowledge base").run()
    app.button(key="run").click().run()
    assert not app.exception, app.exception
    assert any("added 1" in s.value for s in app.success), [s.value for s in app.success]
    app.run()
    assert int(app.metric[0].value) == before + 1


def test_a_bad_upload_is_refused_with_a_message(app: AppTest) -> None:
    app.file_uploader(key="uploads").set_value(("fake.png", b"this is not a png", "image/png")).run()
    assert not app.exception, app.exception
    assert any("fake.png is not an image" in e.value for e in app.error), [e.value for e in app.error]
    assert app.button(key="run").disabled


def test_unavailable_weights_fall_back_to_the_toy_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mmrag.errors import ModelUnavailableError
    from mmrag.model.clip import ClipModel

    real_load = ClipModel.load

    def load(self: ClipModel) -> None:
        if self.model_name != "toy":
            msg = f"weights for {self.model_name} are not cached and the network is off"
            raise ModelUnavailableError(msg)
        real_load(self)

    monkeypatch.setattr(ClipModel, "load", load)
    monkeypatch.setenv("MMRAG_MODEL", "ViT-B-32")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    assert any("toy model" in w.value for w in at.warning), [w.value for w in at.warning]
    assert int(at.metric[0].value) > 0  # the demo was built under MMRAG_HOME/demo
    home = Path(tmp_path / "mmrag-home")
    assert (home / "demo" / "kb").is_dir()


def test_a_chat_model_answer_streams_with_citations(
    ui_demo_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from mmrag.ui import session

    monkeypatch.setattr(session, "open_llm", lambda spec: FakeListChatModel(responses=["A red circle [1]."]))
    monkeypatch.setenv("MMRAG_DB", str(copy_kb(ui_demo_db, tmp_path / "kb")))
    monkeypatch.setenv("MMRAG_MODEL", "toy")
    monkeypatch.setenv("MMRAG_LLM", f"fake:{tmp_path.name}")  # a fresh cache key
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.chat_input[0].set_value("a red circle").run()
    assert not at.exception, at.exception
    assert "A red circle [1]." in texts(at)
    assert len(at.image) >= 1
    assert "(cited)" in texts(at) or any("[1]" in m.value for m in at.markdown)


def test_an_unknown_llm_warns_and_answers_retrieval_only(app: AppTest) -> None:
    app.sidebar.text_input[2].set_value("nosuchprovider:model").run()
    assert any("nosuchprovider" in w.value for w in app.sidebar.warning), [w.value for w in app.sidebar.warning]
    app.chat_input[0].set_value("a blue star").run()
    assert not app.exception, app.exception
    assert "No LLM was used" in texts(app)
