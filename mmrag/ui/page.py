"""mmrag's Streamlit chat page: ``mmrag ui`` (from any install), or ``streamlit run ui/app.py`` in a checkout.

Widgets and layout only. Everything else goes through :mod:`mmrag.ui.session`, the page's only door into mmrag.
The knowledge base, its model and the chat model load once per process (``st.cache_resource``). Errors from
mmrag are shown as messages.

One layout: the sidebar holds the settings (each field shows what is in use); the main area is the chat
(its input under its own answers, always on screen together) beside the tools, in two tabs (Image,
Knowledge base). Writes (adding, indexing, deleting) rerun the page, so every count on it is fresh.
"""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from mmrag.ui import session
from mmrag.ui.session import IMAGE, TEXT, LLMUnavailableError, MmragError, thumbnail_bytes

MODALITY_LABELS = {"all": "images and text", IMAGE: "images only", TEXT: "text only"}
ACTIONS = ("Find similar", "Classify into labels", "Match a description", "Add to the knowledge base")
# Bare strings at the top level of this script would be drawn (Streamlit's "magic"): comments only here.
CHAT_HEIGHT = 560  # pixels of chat history above its input (the history scrolls; the input stays under it)
TOOLS_HEIGHT = 640  # the tools beside the chat scroll inside this height, so the page itself stays put
GRID_COLUMNS = 3


@st.cache_resource(show_spinner="Loading the model and the knowledge base…")
def workspace(db: str, chroma_url: str, model: str) -> session.Workspace:
    return session.open_workspace(session.settings_for(db=db, chroma_url=chroma_url, model=model))


@st.cache_resource(show_spinner="Loading the chat model…")
def chat_model(spec: str) -> session.BaseChatModel:
    return session.open_llm(spec)


@st.cache_resource
def classifier(_ws: session.Workspace, key: str) -> session.ZeroShotClassifier:
    return session.classifier(_ws)


def plain(text: str) -> str:
    """Text from a file or the user, shown literally inside Markdown (no HTML, no emphasis, no links)."""
    return re.sub(r"([\\`*_{}\[\]()#+!|~>-])", r"\\\1", html.escape(text, quote=False))


# --- images ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """One image of a grid: its source number in the answer (None in the gallery), file, score, caption."""

    n: int | None
    source: str
    score: float | None
    caption: str
    thumbnail: str | bytes
    page: int | None = None
    """The 0-based page of a PDF figure or page image (shown as ``page + 1``)."""
    matched: str = ""
    """The text inside the image (OCR) that matched the query."""


@st.dialog("Image", width="large")
def enlarge(item: Shown) -> None:
    """The original file at the dialog's full width, with its caption, source and score."""
    st.markdown(f"**{plain(item.caption or session.short_name(item.source))}**")
    facts = [
        f"Source: `{item.source}`"
        + (f", {session.page_place(item.source, item.page)}" if item.page is not None else "")
    ]
    if item.score is not None:
        facts.append(f"Score (relevance): {item.score:.2f}")
    if item.matched:
        facts.append(f"Text in the image: {plain(item.matched)}")
    st.caption("  \n".join(facts))
    path = Path(item.source)
    if item.page is not None:  # a PDF's figure or page has no file of its own: its stored image
        st.image(
            _thumbnail(item.thumbnail),
            width="stretch",
            caption=f"From {session.page_place(item.source, item.page)} of {path.name}",
        )
    elif path.is_file():
        st.image(str(path), width="stretch")
    else:
        st.warning("The original file is gone; this is the stored thumbnail.")
        st.image(_thumbnail(item.thumbnail), width="stretch")


def _thumbnail(thumbnail: str | bytes) -> bytes:
    return thumbnail if isinstance(thumbnail, bytes) else thumbnail_bytes(thumbnail)


def image_grid(items: list[Shown], key: str) -> None:
    """A grid of images, each with its caption, an anchor the answer's text links to, and an Enlarge button."""
    columns = st.columns(GRID_COLUMNS)
    for i, item in enumerate(items):
        with columns[i % GRID_COLUMNS]:
            thumb = _thumbnail(item.thumbnail)
            st.image(thumb or item.source, width="stretch")
            label = plain(item.caption or session.short_name(item.source))
            if item.page is not None:
                label += f" · {session.page_place(item.source, item.page)}"
            if item.matched:
                label += f" · “{plain(item.matched[:80])}”"
            if item.n is not None:
                anchor = session.image_anchor(key, item.n)
                score = f" · {item.score:.2f}" if item.score is not None else ""
                label = f'<span id="{anchor}"></span>**[{item.n}]**{score} · {label}'
            st.caption(label, help=item.source, unsafe_allow_html=True)
            if st.button("Enlarge", key=f"{key}-{i}"):
                enlarge(item)


def show_images(answer: session.Answer, key: str) -> None:
    """An answer's images in the grid, numbered as in its text."""
    numbers = {s.id: s.n for s in answer.sources}
    texts = {s.id: s.snippet for s in answer.sources if s.snippet}
    image_grid(
        [
            Shown(
                numbers.get(im.id),
                im.source,
                im.score,
                im.caption,
                im.thumbnail,
                im.page,
                texts.get(im.id, "") if texts.get(im.id, "") not in (im.caption, session.short_name(im.source)) else "",
            )
            for im in answer.images
        ],
        key,
    )


def show_hits(hits: list[session.Hit], key: str) -> None:
    """Image search hits in the same grid."""
    image_grid(
        [
            Shown(n, h.source, h.relevance, h.caption, h.document, _page(h), str(h.metadata.get("matched", "")))
            for n, h in enumerate(hits, 1)
        ],
        key,
    )


def _page(hit: session.Hit) -> int | None:
    page = hit.metadata.get("page")
    return page if isinstance(page, int) and not isinstance(page, bool) else None


# --- answers --------------------------------------------------------------------------------------------


def lines(text: str) -> str:
    """Keep the answer's line breaks in Markdown."""
    return text.replace("\n", "  \n")


def show_answer(entry: dict[str, Any], key: str) -> None:
    st.markdown(session.answer_markdown(entry["answer"], key, entry.get("llm")))
    show_details(entry["answer"], key)


def show_details(answer: session.Answer, key: str) -> None:
    """An answer's warnings, image grid and text sources (below its text)."""
    for warning in answer.warnings:
        st.warning(warning)
    if answer.images:
        show_images(answer, key)
    texts = [s for s in answer.sources if s.modality == TEXT]
    if texts:
        with st.expander(f"Text sources ({len(texts)})"):
            for source in texts:
                mark = " (cited)" if source.cited else ""
                st.markdown(f"**[{source.n}]** {source.score:.2f} · `{source.source}`{mark}")
                st.caption(plain(source.snippet))


def ask(question: str, history: list[dict[str, Any]], llm: session.BaseChatModel | None) -> None:
    """Ask, and draw the exchange (the answer streams in when a chat model writes it)."""
    history.append({"role": "user", "text": question})
    with st.chat_message("user"):
        st.markdown(plain(question))
    with st.chat_message("assistant"):
        note = session.query_note(question, ws.model_label)
        if note:
            st.info(note)
        key = f"h{len(history)}"
        try:
            stream = session.ask(ws.kb, question, llm, k=k, modality=modality, threshold=threshold)
            text_area = st.empty()
            if llm is not None:
                written = ""
                for chunk in stream:
                    written += chunk
                    text_area.markdown(lines(written))
            answer = stream.answer
        except MmragError as e:
            st.error(str(e))
            return
        text_area.markdown(session.answer_markdown(answer, key, llm_status))
        history.append({"role": "assistant", "answer": answer, "llm": llm_status})
        show_details(answer, key)


def choose_example(question: str) -> None:
    st.session_state["example_question"] = question


# --- writing --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def progress_bar() -> Iterator[Callable[[session.SyncProgress], None]]:
    """A progress bar while indexing; it is gone when indexing ends, whether anything needed doing or not."""
    bar = st.progress(0.0, text="Indexing…")

    def update(p: session.SyncProgress) -> None:
        bar.progress(min(1.0, p.done / p.total) if p.total else 1.0, text=f"{p.done}/{p.total} {Path(p.current).name}")

    try:
        yield update
    finally:
        bar.empty()


def finish_write(report: session.SyncReport) -> None:
    """Keep the report to show after the rerun that refreshes the page's counts."""
    st.session_state["image_report"] = report
    st.rerun()


def show_report(report: session.SyncReport) -> None:
    st.success(report.summary())
    if report.skipped:
        with st.expander(f"Skipped files ({len(report.skipped)})", expanded=True):
            for skipped in report.skipped:
                st.markdown(f"- `{skipped.source}`: {plain(skipped.reason)}")


def delete_selected() -> None:
    """The Delete button's callback: runs before the page is drawn, so the counts below are already fresh."""
    target = st.session_state.get("delete_source")
    if not target:
        return
    try:
        removed = session.delete_document(ws, target)
    except MmragError as e:
        st.session_state["kb_flash"] = ("error", str(e))
    else:
        st.session_state["kb_flash"] = ("success", session.removed_message(removed, target))
        st.session_state["delete_source"] = None


def turn_page(step: int) -> None:
    st.session_state["gallery_page"] = max(0, st.session_state.get("gallery_page", 0) + step)


def first_page() -> None:
    st.session_state["gallery_page"] = 0


# --- the knowledge base and model in use ------------------------------------------------------------------


def request_store() -> None:
    """The sidebar's Open button: ask for the typed store and model (never creating a store)."""
    where = st.session_state.get("kb_where", "").strip() or startup["where"]
    model = st.session_state.get("kb_model", "").strip()
    in_use = st.session_state.get("in_use", ("", ""))
    st.session_state.pop("kb_error", None)
    if (where, model) == in_use:
        return
    # an unchanged model field means "the new knowledge base's own model"
    st.session_state["kb_request"] = {"where": where, "model": "" if model == in_use[1] else model, "create": False}


def create_store(request: dict[str, Any]) -> None:
    st.session_state.pop("kb_error", None)
    st.session_state["kb_request"] = {**request, "create": True}


def open_requested(request: dict[str, Any]) -> session.Workspace:
    db, chroma_url = session.split_location(request["where"])
    if not request["create"]:
        session.require_store(session.settings_for(db=db, chroma_url=chroma_url, model=request["model"]))
    return workspace(db, chroma_url, request["model"])


def set_field(key: str, value: str) -> None:
    """Show ``value`` in a sidebar field (only when it changed, so a field being typed in is left alone)."""
    if st.session_state.get(key) != value:
        st.session_state[key] = value


def store_form() -> None:
    with st.form("store", border=False):
        st.text_input(
            "Directory or Chroma server URL",
            key="kb_where",
            help="The knowledge base in use. Type another directory (it must hold a knowledge base) or "
            "http://HOST:PORT of a `chroma run` server, then Open.",
        )
        st.text_input(
            "CLIP model",
            key="kb_model",
            help="The model in use. Leave it as it is to use the other knowledge base's own model; 'toy' works "
            "offline.",
        )
        st.form_submit_button("Open", key="open_store", on_click=request_store)
    failed = st.session_state.get("kb_error")
    if failed:
        request, message, missing = failed
        st.error(f"Not opened: {message}")
        if missing:
            st.button(
                f"Create a new knowledge base at {request['where']}",
                key="create_store",
                on_click=create_store,
                args=(request,),
            )


# --- the page -----------------------------------------------------------------------------------------

st.set_page_config(page_title="mmrag", layout="wide")
with contextlib.suppress(Exception):  # `mmrag ui` passes it as a flag; this covers `streamlit run`
    st.set_option("client.toolbarMode", "minimal")
with contextlib.suppress(Exception):  # no secrets.toml: keys come from the environment
    session.export_secrets(dict(st.secrets))

try:
    defaults = session.settings_for()
except MmragError as e:
    st.error(str(e))
    st.stop()

startup = {"where": defaults.chroma_url or str(defaults.db_path), "model": defaults.model or "", "create": True}
request = st.session_state.setdefault("kb_request", startup)
good = st.session_state.get("kb_good")
try:
    ws = open_requested(request)
except MmragError as e:
    if good is None or good == request:
        with st.sidebar:
            set_field("kb_where", request["where"])
            set_field("kb_model", request["model"])
            store_form()
        st.error(f"Cannot open the knowledge base: {e}")
        st.stop()
    missing = isinstance(e, session.NoKnowledgeBaseError)
    st.session_state["kb_error"] = (request, str(e), missing)
    st.session_state["kb_request"] = request = good
    try:
        ws = open_requested(good)
    except MmragError as again:  # the one in use went away meanwhile
        st.error(f"Cannot open the knowledge base: {again}")
        st.stop()
st.session_state["kb_good"] = request
st.session_state["in_use"] = (ws.where, ws.model_name)

with st.sidebar:
    st.header("mmrag")
    st.subheader("Knowledge base")
    set_field("kb_where", ws.where)
    set_field("kb_model", ws.model_name)
    store_form()
    st.subheader("Chat model")
    st.session_state.setdefault("llm_text", defaults.llm or session.NO_LLM)
    llm_text = st.text_input(
        "LLM (provider:model, or none)",
        key="llm_text",
        help="e.g. openai:gpt-4o-mini; the key comes from the environment or Streamlit secrets. "
        "'none' answers retrieval-only.",
    )
    st.subheader("Retrieval")
    k = st.slider("k (documents)", 1, session.MAX_UI_K, session.DEFAULT_K)
    modality = st.selectbox("Modality", list(MODALITY_LABELS), format_func=MODALITY_LABELS.__getitem__)
    threshold = st.slider("Threshold (calibrated relevance)", 0.0, 1.0, session.DEFAULT_THRESHOLD, 0.05)

llm: session.BaseChatModel | None = None
llm_spec = session.llm_choice(llm_text)
llm_status = session.LLMStatus(llm_spec)
if llm_spec:
    try:
        llm = chat_model(llm_spec)
    except LLMUnavailableError as e:
        llm_status = session.LLMStatus(llm_spec, str(e))
        st.sidebar.warning(f"{e}. Answering retrieval-only.")

with st.sidebar:
    st.caption(
        f"Knowledge base: `{ws.kb.location}`  \nModel: `{ws.model_label}`  \n"
        f"Query texts: {ws.kb.clip.text_runtime_status}"
    )
    language = session.language_note(ws.model_label)
    if language:
        st.caption(language)

if ws.fallback:
    st.warning(ws.fallback, icon="⚠️")
    if ws.fallback_detail:
        with st.expander("Why, and how to use the real model"):
            st.markdown(plain(ws.fallback_detail))

try:
    counts = ws.kb.counts()
except MmragError as e:
    st.error(str(e))
    st.stop()
if counts.images == 0 and counts.text_chunks == 0:
    st.info(
        f"The knowledge base at `{ws.where}` is empty. Add images under Image → Add to the knowledge base, "
        "or a whole folder by path."
    )

chat_column, tools_column = st.columns([3, 2], gap="medium")

# --- chat -------------------------------------------------------------------------------------------

with chat_column:
    history: list[dict[str, Any]] = st.session_state.setdefault("history", [])
    chat_box = st.container(height=CHAT_HEIGHT, autoscroll=True, key="chat_box")
    question = st.chat_input("Ask about the knowledge base", key="question")
    question = question or st.session_state.pop("example_question", None)
    with chat_box:
        if not history and not question:
            examples = session.example_questions(ws.kb)
            st.markdown("Ask anything about the knowledge base" + (", for example:" if examples else "."))
            for i, example in enumerate(examples):
                st.button(example, key=f"example-{i}", on_click=choose_example, args=(example,))
        for n, entry in enumerate(history):
            with st.chat_message(entry["role"]):
                if entry["role"] == "user":
                    st.markdown(plain(entry["text"]))
                else:
                    show_answer(entry, key=f"h{n}")
        if question:
            ask(question, history, llm)

# --- image tools ----------------------------------------------------------------------------------

with tools_column, st.container(height=TOOLS_HEIGHT, border=False, key="tools"):
    image_tab, kb_tab = st.tabs(["Image", "Knowledge base"])

with image_tab:
    report = st.session_state.get("image_report")
    if report is not None:
        show_report(report)
    uploads = st.file_uploader(
        "Images",
        type=list(session.UPLOAD_TYPES),
        accept_multiple_files=True,
        key="uploads",
        help=f"Checked by content; at most {ws.settings.max_upload_mb:g} MB each.",
    )
    saved = []
    for upload in uploads or []:
        try:
            saved.append(session.keep_upload(ws, upload.name, upload.getvalue()))
        except MmragError as e:
            st.error(str(e))
    action = st.radio("What to do", ACTIONS, key="action")
    labels_text = st.text_input("Labels (comma-separated)", key="labels") if action == ACTIONS[1] else ""
    description = st.text_input("Description", key="description") if action == ACTIONS[2] else ""
    if st.button("Run", key="run", disabled=not saved):
        st.session_state.pop("image_report", None)
        if action == ACTIONS[3]:
            try:
                with progress_bar() as on_progress:
                    written = session.index_paths(ws, [s.path for s in saved], on_progress=on_progress)
            except MmragError as e:
                st.error(str(e))
            else:
                finish_write(written)
        for item in saved:
            st.image(str(item.path), width=160, caption=item.name)
            try:
                if action == ACTIONS[0]:
                    hits = session.similar_images(ws.kb, item.path, k=k)
                    if hits:
                        show_hits(hits, key=f"sim-{item.path.stem}")
                    else:
                        st.info("No similar images in the knowledge base.")
                elif action == ACTIONS[1]:
                    result = classifier(ws, ws.model_label).classify(item.path, session.parse_labels(labels_text))
                    st.markdown(f"**{plain(result.best or 'none of these')}**")
                    st.dataframe(
                        {
                            "label": [s.label for s in result.scores],
                            "probability": [f"{s.probability:.1%}" for s in result.scores],
                        },
                        hide_index=True,
                    )
                    for warning in result.warnings:
                        st.warning(warning)
                elif action == ACTIONS[2]:
                    match = classifier(ws, ws.model_label).match(item.path, description)
                    verdict = "matches" if match.verdict else "does not match"
                    odds = f"probability {match.probability:.1%}, similarity {match.similarity:.3f}"
                    st.markdown(f"**{verdict}**: {odds}")
                    for warning in match.warnings:
                        st.warning(warning)
            except MmragError as e:
                st.error(str(e))
    st.divider()
    folder = st.text_input("Or add a whole folder by path", key="folder", placeholder="/path/to/photos")
    if st.button("Index folder", key="index_folder"):
        st.session_state.pop("confirm_removal", None)
        st.session_state.pop("image_report", None)
        try:
            with progress_bar() as on_progress:
                written = session.index_folder(ws, folder, on_progress=on_progress)
        except session.MassRemovalError as e:
            st.session_state["confirm_removal"] = (folder, str(e))
        except MmragError as e:
            st.error(str(e))
        else:
            finish_write(written)
    pending = st.session_state.get("confirm_removal")
    if pending:
        st.warning(pending[1])
        if st.button("Remove them and sync", key="confirm_removal_button"):
            st.session_state.pop("confirm_removal", None)
            try:
                with progress_bar() as on_progress:
                    written = session.index_folder(ws, pending[0], on_progress=on_progress, allow_removal=True)
            except MmragError as e:
                st.error(str(e))
            else:
                finish_write(written)

# --- knowledge base browser -------------------------------------------------------------------------

with kb_tab:
    flash = st.session_state.pop("kb_flash", None)
    if flash:
        (st.success if flash[0] == "success" else st.error)(flash[1])
    try:
        a, b, c = st.columns(3)
        a.metric("Images", counts.images)
        b.metric("Text chunks", counts.text_chunks)
        c.metric("Text files", counts.text_sources)
        contains = st.text_input("Filter images by file name or caption", key="gallery_filter", on_change=first_page)
        shown = session.gallery(ws.kb, contains=contains, page=st.session_state.get("gallery_page", 0))
        st.session_state["gallery_page"] = shown.page
        st.caption(shown.summary())
        image_grid([Shown(None, i.source, None, i.caption, i.thumbnail) for i in shown.items], key="gallery")
        if shown.pages > 1:
            with st.container(horizontal=True, vertical_alignment="center", key="gallery_pager"):
                st.button("‹ Previous", key="gallery_prev", disabled=shown.page == 0, on_click=turn_page, args=(-1,))
                st.caption(f"Page {shown.page + 1} of {shown.pages}")
                st.button(
                    "Next ›", key="gallery_next", disabled=shown.page + 1 >= shown.pages, on_click=turn_page, args=(1,)
                )
        st.subheader("Delete a document")
        st.selectbox("File", session.document_sources(ws.kb), index=None, key="delete_source")
        st.button(
            "Delete from the knowledge base",
            key="delete",
            disabled=not st.session_state.get("delete_source"),
            on_click=delete_selected,
        )
    except MmragError as e:
        st.error(str(e))
