"""Calibrated multimodal retrieval on the toy model's demo knowledge base (real embedded Chroma)."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_tests.integration_tests import RetrieversIntegrationTests

from mmrag.errors import ConfigError
from mmrag.kb.records import IMAGE, TEXT
from mmrag.langchain.knowledge_base import KnowledgeBase
from mmrag.langchain.retriever import MultimodalRetriever
from mmrag.search.query import EmptyQueryError, Query
from mmrag.search.searcher import Searcher
from mmrag.toy.shapes import CLASSES, draw
from tests.support.files import make_folder
from tests.support.kbs import open_kb
from tests.support.toyworld import brute_force


@pytest.fixture(scope="session")
def kb(demo_kb: KnowledgeBase) -> KnowledgeBase:
    return demo_kb


@pytest.fixture(scope="session")
def retriever(kb: KnowledgeBase) -> MultimodalRetriever:
    return kb.as_retriever(k=8)


_SESSION_KB: list[KnowledgeBase] = []


class TestStandardRetriever(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _kb(self, kb: KnowledgeBase) -> None:
        _SESSION_KB[:] = [kb]

    @property
    def retriever_constructor(self) -> type[MultimodalRetriever]:
        return MultimodalRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"searcher": _SESSION_KB[0].as_retriever().searcher}

    @property
    def retriever_query_example(self) -> str:
        return "a red circle"


def _name(doc_or_hit: Any) -> str:
    source = doc_or_hit.metadata["source"] if isinstance(doc_or_hit, Document) else doc_or_hit.source
    return Path(source).stem


def test_mixed_results_rank_the_right_images_and_note_first(retriever: MultimodalRetriever) -> None:
    docs = retriever.invoke("a red circle")
    top = {(_name(d), d.metadata["modality"]) for d in docs[:3]}
    assert top == {("red_circle_01", IMAGE), ("red_circle_02", IMAGE), ("red_circle", TEXT)}
    scores = [d.metadata["score"] for d in docs]
    assert scores == sorted(scores, reverse=True)


def test_documents_carry_what_chains_need(retriever: MultimodalRetriever) -> None:
    docs = retriever.invoke("a blue star", k=3)
    image = next(d for d in docs if d.metadata["modality"] == IMAGE)
    assert image.metadata["path"].endswith(".png")
    assert Path(image.metadata["path"]).exists()
    assert image.metadata["thumbnail"].startswith("data:image/jpeg;base64,")
    assert "caption" in image.metadata
    assert 0 < image.metadata["score"] <= 1
    text = next(d for d in docs if d.metadata["modality"] == TEXT)
    assert "blue star" in text.page_content
    assert text.id == text.metadata["id"]


def test_chinese_queries_work_on_the_bilingual_toy(retriever: MultimodalRetriever) -> None:
    result = retriever.search("一个蓝色的星形", k=3)
    assert result.warnings == []
    assert {_name(h) for h in result.hits if h.modality == IMAGE} <= {"blue_star_01", "blue_star_02"}
    assert {_name(h) for h in result.hits} >= {"blue_star_01", "blue_star_02"}


def test_english_only_model_warns_about_chinese(tmp_path: Path, tiny_model_id: str) -> None:
    kb = open_kb(tmp_path / "db", tiny_model_id)
    kb.sync(make_folder(tmp_path / "files"))
    warnings = kb.as_retriever().search("一只猫").warnings
    assert len(warnings) == 1
    assert "xlm-roberta-base-ViT-B-32" in warnings[0]
    assert kb.as_retriever().search("a cat").warnings == []


def test_modality_filter_and_where(retriever: MultimodalRetriever) -> None:
    images = retriever.invoke("a red circle", modality="image", threshold=0)
    assert {d.metadata["modality"] for d in images} == {IMAGE}
    texts = retriever.invoke("a red circle", modality="text", threshold=0)
    assert {d.metadata["modality"] for d in texts} == {TEXT}
    captioned = retriever.invoke("a red circle", where={"caption": "a red circle"}, threshold=0)
    assert [_name(d) for d in captioned] == ["red_circle_01"]


def test_threshold_cuts_and_validates(retriever: MultimodalRetriever) -> None:
    everything = retriever.invoke("a red circle", threshold=0, k=100)
    strict = retriever.invoke("a red circle", threshold=0.97, k=100)
    assert 0 < len(strict) < len(everything)
    assert all(d.metadata["score"] >= 0.97 for d in strict)
    with pytest.raises(ConfigError, match="threshold"):
        retriever.invoke("x", threshold=1.5)
    with pytest.raises(ConfigError, match="unknown retriever options"):
        retriever.invoke("x", top=3)


def test_ranks_equal_brute_force_numpy(kb: KnowledgeBase, retriever: MultimodalRetriever) -> None:
    searcher = retriever.searcher
    for query in ["a red circle", "green", "一个黄色的三角形"]:
        for keywords in (False, True):
            result = searcher.search(query, k=200, threshold=0, fetch_k=200, keywords=keywords)
            expected = brute_force(kb, searcher, query, keywords=keywords)
            # all documents: the quota changes nothing
            assert [h.id for h in result.hits] == [h.id for h in expected]
            got = {h.id: h.relevance for h in result.hits}
            assert all(abs(got[h.id] - h.relevance) < 1e-6 for h in expected)


def test_raw_cosine_ranking_differs_from_calibrated(kb: KnowledgeBase, retriever: MultimodalRetriever) -> None:
    """Scores of the two modalities are on different scales; calibration puts them on one."""
    result = retriever.search("red shapes", k=10, threshold=0)
    by_modality = {m: [h.cosine for h in result.hits if h.modality == m] for m in (IMAGE, TEXT)}
    assert by_modality[IMAGE]
    assert by_modality[TEXT]
    relevances = [h.relevance for h in result.hits]
    assert relevances == sorted(relevances, reverse=True)


def test_search_by_image(retriever: MultimodalRetriever) -> None:
    query = draw(CLASSES[0], random.Random(1234), size=128)  # a new red circle, not in the KB
    docs = retriever.invoke_image(query, k=4)
    assert {_name(d) for d in docs[:3]} == {"red_circle_01", "red_circle_02", "red_circle"}
    assert {d.metadata["modality"] for d in docs} == {IMAGE, TEXT}


def test_query_arithmetic(retriever: MultimodalRetriever) -> None:
    red_circle = draw(CLASSES[0], random.Random(7), size=128)
    query = Query.image(red_circle) - Query.text("a red circle") + Query.text("a blue circle")
    hits = retriever.search(query, k=3, modality="image").hits
    assert {_name(h) for h in hits[:2]} == {"blue_circle_01", "blue_circle_02"}
    assert "blue circle" in str(query)
    with pytest.raises(EmptyQueryError):
        retriever.search(Query.text("a cat") - Query.text("a cat"))


def test_mmr_diversifies(retriever: MultimodalRetriever) -> None:
    plain = retriever.invoke("red shapes", k=4, modality="image", threshold=0)
    diverse = retriever.invoke("red shapes", k=4, modality="image", threshold=0, mmr=True, lambda_mult=0.3)
    kinds = {_name(d).rsplit("_", 1)[0] for d in diverse}
    assert len(kinds) >= len({_name(d).rsplit("_", 1)[0] for d in plain})
    assert len(kinds) == 4
    for doc in diverse:  # MMR fetches the chosen hits' documents after choosing
        assert doc.metadata["thumbnail"].startswith("data:image/jpeg;base64,")
        assert Path(doc.metadata["path"]).is_file()


def test_mmr_and_plain_search_agree_on_what_a_hit_carries(kb: KnowledgeBase) -> None:
    searcher = Searcher(kb.store)
    plain = searcher.search("a red circle", k=6, threshold=0).hits
    mmr = searcher.search("a red circle", k=6, threshold=0, mmr=True, lambda_mult=1.0).hits
    assert [h.id for h in mmr] == [h.id for h in plain]  # lambda 1: pure relevance
    for a, b in zip(plain, mmr, strict=True):
        assert (a.source, a.document, a.metadata) == (b.source, b.document, b.metadata)
    assert {h.modality for h in plain} == {IMAGE, TEXT}


def test_a_hit_deleted_before_its_documents_are_fetched_is_dropped(kb: KnowledgeBase) -> None:
    searcher = Searcher(kb.store)
    hits = searcher.search("a red circle", k=3, threshold=0, mmr=True, modality="image").hits
    gone = replace(hits[0], id="img-deleted-meanwhile", document="")  # image documents are fetched after MMR
    assert [h.id for h in searcher._with_documents([gone, *hits[1:]])] == [h.id for h in hits[1:]]


def test_repeated_queries_hit_the_text_cache(kb: KnowledgeBase) -> None:
    searcher = Searcher(kb.store)
    searcher.search("a green square")
    misses = searcher.encoder.misses
    searcher.search("a green square")
    assert searcher.encoder.misses == misses
    assert searcher.encoder.hits >= 1


async def test_async(retriever: MultimodalRetriever) -> None:
    docs = await retriever.ainvoke("a yellow triangle", k=2)
    assert {_name(d) for d in docs} <= {"yellow_triangle_01", "yellow_triangle_02", "yellow_triangle"}


def test_lcel_chain_with_a_fake_chat_model(retriever: MultimodalRetriever) -> None:
    seen: list[str] = []

    def format_docs(docs: list[Document]) -> str:
        text = "\n".join(f"[{d.metadata['modality']}] {d.page_content} ({d.metadata['source']})" for d in docs)
        seen.append(text)
        return text

    prompt = ChatPromptTemplate.from_messages([("system", "Answer from:\n{context}"), ("human", "{question}")])
    llm = FakeListChatModel(responses=["It is a red circle."])
    chain = (
        {"context": retriever | RunnableLambda(format_docs), "question": RunnableLambda(lambda q: q)}
        | prompt
        | llm
        | StrOutputParser()
    )
    assert chain.invoke("a red circle") == "It is a red circle."
    assert "red_circle_01.png" in seen[0]
    assert "[text] a red circle" in seen[0]


def test_search_by_a_stored_vector(kb: KnowledgeBase, retriever: MultimodalRetriever) -> None:
    some_id = next(i for i, m in kb.store.metadatas(IMAGE).items() if str(m["source"]).endswith("green_star_01.png"))
    [record] = kb.store.get(IMAGE, [some_id], embeddings=True)
    hits = retriever.search(Query.vector(np.asarray(record.embedding)), k=2, modality="image").hits
    assert hits[0].id == some_id
    assert _name(hits[1]) == "green_star_02"


# --- LangChain's conventions: search_type and search_kwargs; k is at most k ---------------------------


def test_search_type_and_search_kwargs_map_onto_mmrags_options(kb: KnowledgeBase) -> None:
    plain = kb.as_retriever(search_type="similarity", search_kwargs={"k": 3, "filter": {"modality": "image"}})
    assert (plain.k, plain.where, plain.mmr) == (3, {"modality": "image"}, False)
    assert {d.metadata["modality"] for d in plain.invoke("a red circle")} == {IMAGE}
    mmr = kb.as_retriever(search_type="mmr", search_kwargs={"k": 4, "fetch_k": 20, "lambda_mult": 0.3})
    assert (mmr.mmr, mmr.fetch_k, mmr.lambda_mult) == (True, 20, 0.3)
    strict = kb.as_retriever(search_type="similarity_score_threshold", search_kwargs={"score_threshold": 0.97})
    assert strict.threshold == 0.97
    docs = strict.invoke("a red circle")
    assert docs
    assert all(d.metadata["score"] >= 0.97 for d in docs)
    at_most = kb.as_retriever(search_type="similarity", search_kwargs={"k": 100})
    assert len(at_most.invoke("a red circle")) < 100  # at most k: the calibrated threshold still applies


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"search_type": "nearest"}, "unknown search_type 'nearest'"),
        ({"search_type": "similarity", "search_kwargs": {"fetch_k": 10}}, "fetch_k can't be used"),
        ({"search_type": "mmr", "search_kwargs": {"score_threshold": 0.5}}, "score_threshold can't be used"),
        ({"search_type": "similarity", "search_kwargs": {"top_k": 3}}, "top_k"),
        ({"search_type": "similarity_score_threshold", "search_kwargs": {"k": 3}}, "needs search_kwargs"),
        ({"search_type": "similarity", "search_kwargs": {"k": 3}, "k": 4}, "given both"),
        ({"search_kwargs": {"filter": {"a": 1}, "where": {"a": 1}}}, "twice"),
        ({"topk": 3}, "topk"),
    ],
)
def test_unknown_search_options_raise(kb: KnowledgeBase, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        kb.as_retriever(**options)


# --- documents chains can use as they are --------------------------------------------------------------


def test_every_document_names_its_modality_id_and_source_for_a_document_prompt(retriever: MultimodalRetriever) -> None:
    from langchain_core.prompts import format_document
    from langchain_core.tools import create_retriever_tool

    from mmrag.langchain.retriever import DOCUMENT_PROMPT, format_documents

    docs = retriever.invoke("a red circle", k=4)
    for doc in docs:
        header = format_document(doc, DOCUMENT_PROMPT).splitlines()[0]
        assert header.startswith(f"[{doc.metadata['modality']} {doc.id}] {Path(doc.metadata['source']).name}")
    tool = create_retriever_tool(retriever, "search_kb", "Search the knowledge base.", document_prompt=DOCUMENT_PROMPT)
    out = tool.invoke({"query": "a red circle"})
    assert "[image img-" in out
    assert "[text txt-" in out
    assert "red_circle.md" in out
    text = format_documents(docs)
    assert [line for line in text.splitlines() if line.startswith(("[image img-", "[text txt-"))] == [
        d.metadata["citation"] for d in docs
    ]


def test_citation_shows_the_page_or_the_chunk() -> None:
    from mmrag.langchain.retriever import citation

    assert citation("txt-a-00002", TEXT, "paper.pdf", {"page": 3, "chunk": 2, "chunks": 9}) == (
        "[text txt-a-00002] paper.pdf, page 4"  # 1-based, as people see it
    )
    assert citation("txt-c-00000", TEXT, "deck.pptx", {"page": 1}) == "[text txt-c-00000] deck.pptx, slide 2"
    assert (
        citation("txt-b-00001", TEXT, "notes.md", {"chunk": 1, "chunks": 4})
        == "[text txt-b-00001] notes.md, chunk 2 of 4"
    )
    assert citation("txt-c-00000", TEXT, "short.md", {"chunk": 0, "chunks": 1}) == "[text txt-c-00000] short.md"


def _cookbook_split_image_text_types(docs: list[Any]) -> dict[str, list[str]]:
    """LangChain's multimodal cookbook (multi_modal_RAG_chroma), as written there (without the resize)."""
    import base64
    import re

    def looks_like_base64(sb: str) -> bool:
        return re.match("^[A-Za-z0-9+/]+[=]{0,2}$", sb) is not None

    def is_image_data(b64data: str) -> bool:
        signatures = {b"\xff\xd8\xff": "jpg", b"\x89PNG\r\n\x1a\n": "png", b"GIF8": "gif", b"RIFF": "webp"}
        try:
            header = base64.b64decode(b64data)[:8]
        except Exception:
            return False
        return any(header.startswith(s) for s in signatures)

    images, texts = [], []
    for doc in docs:
        content = doc.page_content if isinstance(doc, Document) else doc
        (images if looks_like_base64(content) and is_image_data(content) else texts).append(content)
    return {"images": images, "texts": texts}


def test_base64_image_documents_fit_the_multimodal_cookbook(retriever: MultimodalRetriever) -> None:
    from mmrag.langchain.retriever import base64_image_documents

    docs = retriever.invoke("a red circle", k=4)
    split = _cookbook_split_image_text_types(base64_image_documents(docs, max_side=256))
    n_images = sum(d.metadata["modality"] == IMAGE for d in docs)
    assert len(split["images"]) == n_images >= 2
    assert len(split["texts"]) == len(docs) - n_images
    assert _cookbook_split_image_text_types(docs)["images"] == []  # as they come, captions are not images
