"""mmrag's Streamlit chat page: ``mmrag ui`` (from any install), or ``streamlit run ui/app.py`` in a checkout.

Widgets and layout only. Everything else goes through :mod:`mmrag.ui.session`, the page's only door into mmrag.
The knowledge base, its model and the chat model load once per process (``st.cache_resource``). Errors from
mmrag are shown as messages.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from mmrag.ui import session
from mmrag.ui.session import IMAGE, TEXT, LLMUnavailableError, MmragError, thumbnail_bytes

MODALITY_LABELS = {"all": "images and text", IMAGE: "images only", TEXT: "text only"}
ACTIONS = ("Find similar", "Classify into labels", "Match a description", "Add to the knowledge base")


@st.cache_resource(show_spinner="Loading the model and the knowledge base…")
def workspace(db: str, chroma_url: str, model: str) -> session.Workspace:
    return session.open_workspace(session.settings_for(db=db, chroma_url=chroma_url, model=model))


@st.cache_resource(show_spinner="Loading the chat model…")
def chat_model(spec: str) -> session.BaseChatModel:
    return session.open_llm(spec)


@st.cache_resource
def classifier(_ws: session.Workspace, key: str) -> session.ZeroShotClassifier:
    return session.classifier(_ws)


@st.dialog("Image", width="large")
def enlarge(source: str, caption: str, thumbnail: str) -> None:
    path = Path(source)
    st.image(str(path) if path.is_file() else thumbnail_bytes(thumbnail), caption=caption or path.name)
    st.caption(source)


def image_grid(items: list[tuple[str, float, str, str]], key: str) -> None:
    """A grid of (source, score, caption, thumbnail) with an enlarge button each."""
    columns = st.columns(3)
    for i, (source, score, caption, thumbnail) in enumerate(items):
        with columns[i % 3]:
            st.image(thumbnail_bytes(thumbnail) or source, width="stretch")
            st.caption(f"**{score:.2f}** · {caption or Path(source).name}  \n`{source}`")
            if st.button("Enlarge", key=f"{key}-{i}"):
                enlarge(source, caption, thumbnail)


def show_images(images: list[session.AnswerImage], key: str) -> None:
    """Answer images (AnswerImage) in the grid."""
    image_grid([(im.source, im.score, im.caption, im.thumbnail) for im in images], key)


def show_hits(hits: list[session.Hit], key: str) -> None:
    """Image search hits (Hit) in the same grid."""
    image_grid([(h.source, h.relevance, h.caption, h.document) for h in hits], key)


def lines(text: str) -> str:
    """Keep the answer's line breaks in Markdown."""
    return text.replace("\n", "  \n")


def show_answer(entry: dict[str, Any], key: str) -> None:
    st.markdown(lines(entry["answer"].answer))
    show_details(entry["answer"], key)


def show_details(answer: session.Answer, key: str) -> None:
    """An answer's warnings, image grid and text sources (below its text)."""
    for warning in answer.warnings:
        st.warning(warning)
    if answer.images:
        show_images(answer.images, key)
    texts = [s for s in answer.sources if s.modality == TEXT]
    if texts:
        with st.expander(f"Text sources ({len(texts)})"):
            for source in texts:
                mark = " (cited)" if source.cited else ""
                st.markdown(f"**[{source.n}]** {source.score:.2f} · `{source.source}`{mark}")
                st.caption(source.snippet)


def show_report(report: session.SyncReport) -> None:
    st.success(report.summary())
    if report.skipped:
        with st.expander(f"Skipped files ({len(report.skipped)})", expanded=True):
            for skipped in report.skipped:
                st.markdown(f"- `{skipped.source}`: {skipped.reason}")


def progress_bar() -> Callable[[session.SyncProgress], None]:
    bar = st.progress(0.0, text="Indexing…")

    def update(p: session.SyncProgress) -> None:
        bar.progress(min(1.0, p.done / p.total) if p.total else 1.0, text=f"{p.done}/{p.total} {Path(p.current).name}")

    return update


# --- sidebar ------------------------------------------------------------------------------------------

st.set_page_config(page_title="mmrag", layout="wide")
with contextlib.suppress(Exception):  # no secrets.toml: keys come from the environment
    session.export_secrets(dict(st.secrets))

try:
    defaults = session.settings_for()
except MmragError as e:
    st.error(str(e))
    st.stop()

with st.sidebar:
    st.header("mmrag")
    st.subheader("Knowledge base")
    kb_where = st.text_input(
        "Directory or Chroma server URL",
        value=defaults.chroma_url or str(defaults.db_path),
        help="An embedded knowledge base directory, or http://HOST:PORT of a `chroma run` server.",
    )
    model_name = st.text_input(
        "CLIP model", value=defaults.model or "", help="Empty: the knowledge base's model. 'toy' works offline."
    )
    st.subheader("Chat model")
    llm_text = st.text_input(
        "LLM (provider:model, or none)",
        value=defaults.llm or session.NO_LLM,
        help="e.g. openai:gpt-4o-mini; the key comes from the environment or Streamlit secrets. "
        "'none' answers retrieval-only.",
    )
    st.subheader("Retrieval")
    k = st.slider("k (documents)", 1, session.MAX_UI_K, session.DEFAULT_K)
    modality = st.selectbox("Modality", list(MODALITY_LABELS), format_func=MODALITY_LABELS.__getitem__)
    threshold = st.slider("Threshold (calibrated relevance)", 0.0, 1.0, session.DEFAULT_THRESHOLD, 0.05)

is_url = kb_where.strip().startswith(("http://", "https://"))
try:
    ws = workspace("" if is_url else kb_where, kb_where if is_url else "", model_name)
except MmragError as e:
    st.error(f"Cannot open the knowledge base: {e}")
    st.stop()

llm: session.BaseChatModel | None = None
llm_spec = session.llm_choice(llm_text)
if llm_spec:
    try:
        llm = chat_model(llm_spec)
    except LLMUnavailableError as e:
        st.sidebar.warning(f"{e}. Answering retrieval-only.")

with st.sidebar:
    st.caption(
        f"Knowledge base: `{ws.kb.location}`  \nModel: `{ws.model_label}`  \n"
        f"Query texts: {ws.kb.clip.text_runtime_status}"
    )
    if not ws.multilingual:
        st.caption(
            "This model reads English only (the toy: English and Chinese); a note appears when a question "
            "needs a multilingual model."
        )

if ws.fallback:
    st.warning(ws.fallback, icon="⚠️")

chat_tab, image_tab, kb_tab = st.tabs(["Chat", "Image", "Knowledge base"])

# --- chat -------------------------------------------------------------------------------------------

history: list[dict[str, Any]] = st.session_state.setdefault("history", [])
question = st.chat_input("Ask about the knowledge base")

with chat_tab:
    for n, entry in enumerate(history):
        with st.chat_message(entry["role"]):
            if entry["role"] == "user":
                st.markdown(entry["text"])
            else:
                show_answer(entry, key=f"h{n}")
    if question:
        history.append({"role": "user", "text": question})
        with st.chat_message("user"):
            st.markdown(question)
        with st.chat_message("assistant"):
            note = session.query_note(question, ws.model_label)
            if note:
                st.info(note)
            try:
                stream = session.ask(ws.kb, question, llm, k=k, modality=modality, threshold=threshold)
                st.write_stream(lines(chunk) for chunk in stream)
                answer = stream.answer
            except MmragError as e:
                st.error(str(e))
            else:
                history.append({"role": "assistant", "answer": answer})
                show_details(answer, key=f"h{len(history) - 1}")

# --- image tools ----------------------------------------------------------------------------------

with image_tab:
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
    action = st.radio("What to do", ACTIONS, horizontal=True, key="action")
    labels_text = st.text_input("Labels (comma-separated)", key="labels") if action == ACTIONS[1] else ""
    description = st.text_input("Description", key="description") if action == ACTIONS[2] else ""
    if st.button("Run", key="run", disabled=not saved):
        for item in saved:
            st.image(str(item.path), width=160, caption=item.name)
            try:
                if action == ACTIONS[0]:
                    hits = session.similar_images(ws.kb, item.path, k=k)
                    if hits:
                        show_hits(hits, key=f"sim-{item.path.name}")
                    else:
                        st.info("No similar images in the knowledge base.")
                elif action == ACTIONS[1]:
                    result = classifier(ws, ws.model_label).classify(item.path, session.parse_labels(labels_text))
                    st.markdown(f"**{result.best or 'none of these'}**")
                    st.dataframe(
                        {
                            "label": [s.label for s in result.scores],
                            "probability": [s.probability for s in result.scores],
                        },
                        hide_index=True,
                    )
                    for warning in result.warnings:
                        st.warning(warning)
                elif action == ACTIONS[2]:
                    match = classifier(ws, ws.model_label).match(item.path, description)
                    verdict = "matches" if match.verdict else "does not match"
                    st.markdown(
                        f"**{verdict}** (probability {match.probability:.2f}, similarity {match.similarity:.3f})"
                    )
                    for warning in match.warnings:
                        st.warning(warning)
            except MmragError as e:
                st.error(str(e))
        if action == ACTIONS[3]:
            try:
                show_report(session.index_paths(ws, [s.path for s in saved], on_progress=progress_bar()))
            except MmragError as e:
                st.error(str(e))
    st.divider()
    folder = st.text_input("Or add a whole folder by path", key="folder", placeholder="/path/to/photos")
    if st.button("Index folder", key="index_folder"):
        st.session_state.pop("confirm_removal", None)
        try:
            show_report(session.index_folder(ws, folder, on_progress=progress_bar()))
        except session.MassRemovalError as e:
            st.session_state["confirm_removal"] = (folder, str(e))
        except MmragError as e:
            st.error(str(e))
    pending = st.session_state.get("confirm_removal")
    if pending:
        st.warning(pending[1])
        if st.button("Remove them and sync", key="confirm_removal_button"):
            st.session_state.pop("confirm_removal", None)
            try:
                show_report(session.index_folder(ws, pending[0], on_progress=progress_bar(), allow_removal=True))
            except MmragError as e:
                st.error(str(e))

# --- knowledge base browser -------------------------------------------------------------------------

with kb_tab:
    try:
        counts = ws.kb.counts()
        a, b, c = st.columns(3)
        a.metric("Images", counts.images)
        b.metric("Text chunks", counts.text_chunks)
        c.metric("Text files", counts.text_sources)
        contains = st.text_input("Filter images by file name or caption", key="gallery_filter")
        items, total = session.gallery(ws.kb, contains=contains)
        st.caption(f"{total} images match; showing {len(items)}.")
        columns = st.columns(6)
        for i, shown in enumerate(items):
            with columns[i % 6]:
                if shown.thumbnail:
                    st.image(shown.thumbnail, width="stretch")
                st.caption(shown.caption or Path(shown.source).name)
        st.subheader("Delete a document")
        target = st.selectbox("File", session.document_sources(ws.kb), index=None, key="delete_source")
        if st.button("Delete from the knowledge base", key="delete", disabled=target is None) and target:
            removed = session.delete_document(ws, target)
            st.success(f"removed {removed} documents of {target} (the file itself is untouched)")
    except MmragError as e:
        st.error(str(e))
