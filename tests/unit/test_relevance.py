"""Absolute relevance: the probe prior, the vocabulary gate, the keyword channel, abstention and `mmrag eval`."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from mmrag.errors import ConfigError
from mmrag.kb.records import IMAGE, TEXT
from mmrag.langchain.knowledge_base import KnowledgeBase
from mmrag.model.clip import ClipModel
from mmrag.search.evaluation import evaluate, read_queries
from mmrag.search.keyword import KEYWORD_CEILING
from mmrag.search.prior import ModelPrior, anchor, measure_prior
from mmrag.search.query import Query
from mmrag.search.reliability_plot import draw_reliability
from mmrag.search.scoring import Scorer
from mmrag.search.terms import terms, words
from mmrag.search.vocabulary import toy_vocabulary, vocabulary_of
from mmrag.search.zeroshot import ZeroShotClassifier
from mmrag.toy.shapes import CLASSES, ToyClass, draw
from tests.support.kbs import open_kb
from tests.support.relevance import OUT_OF_WORLD, paraphrases
from tests.support.renderers import sketch
from tests.support.toyworld import GappedClip


def test_terms_split_file_names_fold_plurals_and_index_chinese_by_characters_and_pairs() -> None:
    assert terms("falcon9_rocket_on_launchPad.jpg") == ["falcon", "9", "rocket", "launch", "pad", "jpg"]
    assert terms("Show me the cats") == ["cat"]
    assert "猫" in terms("一只猫")
    assert "只猫" in terms("一只猫")
    assert set(terms("日落海边")) >= {"日落", "海边"}
    assert words("abc一只猫") == ["abc", "一", "只", "猫"]


def test_the_toy_vocabulary_is_its_training_captions() -> None:
    vocabulary = toy_vocabulary()
    assert vocabulary.unknown("show me a yellow star") == []
    assert vocabulary.unknown("red circles") == []
    assert vocabulary.unknown("a rocket on a launch pad") == ["rocket", "launch", "pad"]
    assert vocabulary.unknown("一只猫") == ["猫"]
    assert vocabulary.known_share("A rocket flies by throwing hot gas downward") < 0.5
    assert vocabulary_of(ClipModel("toy")) is vocabulary
    assert vocabulary_of(GappedClip()) is vocabulary  # a wrapper of the toy is the toy
    assert vocabulary_of(ClipModel("ViT-B-32", "laion2b_s34b_b79k")) is None  # real CLIP reads any word


def test_the_prior_is_deterministic_round_trips_and_tells_models_apart(toy_clip: ClipModel) -> None:
    prior = measure_prior(toy_clip)
    again = measure_prior(toy_clip)
    assert prior.pairs == again.pairs
    assert ModelPrior.from_json(prior.to_json()) == prior
    assert prior.matches(toy_clip.label, anchor(toy_clip))
    gapped = GappedClip(toy_clip)
    assert not prior.matches(gapped.label, anchor(gapped))
    shipped = Scorer(toy_clip).prior  # the packaged toy prior is this model's
    assert shipped.matches(toy_clip.label, anchor(toy_clip))
    for pair, curve in prior.pairs.items():
        assert curve.slope > 0, pair
        assert abs(curve.midpoint - shipped.pairs[pair].midpoint) < 0.05, pair


def test_a_measured_prior_is_cached_on_disk(tmp_path: Path, toy_clip: ClipModel) -> None:
    gapped = GappedClip(toy_clip, text_shift=1.5)  # a model no process has measured yet
    first = Scorer(gapped, cache_dir=tmp_path).prior
    files = list(tmp_path.glob("prior-*.json"))
    assert len(files) == 1
    assert ModelPrior.from_json(files[0].read_text(encoding="utf-8")).pairs == first.pairs


SMALL_KB = ("red-circle", "blue-square", "green-triangle")


def by_label(label: str) -> ToyClass:
    return next(c for c in CLASSES if c.label == label)


@pytest.fixture(scope="module")
def small_kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    """Three classes (red circle, blue square, green triangle), two drawings each from two renderers, a note
    each, anonymous image names; and one captioned photo-like image of a cat and a note about rockets."""
    root = tmp_path_factory.mktemp("small-kb")
    folder = root / "files"
    (folder / "images").mkdir(parents=True)
    (folder / "notes").mkdir()
    rng = random.Random(5)
    for n, label in enumerate(SMALL_KB):
        cls = by_label(label)
        draw(cls, rng, size=128).save(folder / "images" / f"img_{n}a.png")
        sketch(cls, rng).save(folder / "images" / f"img_{n}b.jpg")
        (folder / "notes" / f"note_{n}.md").write_text(f"{cls.caption_en}\n\n{cls.caption_zh}\n", encoding="utf-8")
    shutil.copy(Path("sample_kb/images/cat_chelsea.jpg"), folder / "images" / "photo_0001.jpg")
    (folder / "images" / "photo_0001.txt").write_text("一只猫: a tabby cat on a sofa\n", encoding="utf-8")
    (folder / "notes" / "rockets.md").write_text("Rockets\n\nA rocket stands on its launch pad.\n", encoding="utf-8")
    kb = open_kb(root / "kb", "toy")
    kb.sync(folder)
    return kb


def _names(hits: list) -> list[str]:  # type: ignore[type-arg]
    return [Path(h.source).name for h in hits]


def test_an_absent_class_and_out_of_world_words_find_nothing(small_kb: KnowledgeBase) -> None:
    for query in ["a yellow star", "purple squares", "一个橙色的星形", "a dog", "一辆汽车", "日落海边"]:
        result = small_kb.searcher.search(query)
        assert result.hits == [], (query, [(h.source, h.relevance) for h in result.hits])
        assert result.reason == "irrelevant"
        assert "nothing in the knowledge base matches" in result.message


def test_present_classes_are_found_with_both_renderers(small_kb: KnowledgeBase) -> None:
    for n, label in enumerate(SMALL_KB):
        for query in paraphrases(by_label(label)):
            hits = small_kb.searcher.search(query, k=10, modality="image").hits
            assert {f"img_{n}a.png", f"img_{n}b.jpg"} <= set(_names(hits)), query
            assert all(h.relevance >= 0.8 for h in hits)


def test_the_keyword_channel_finds_what_clip_does_not_know(small_kb: KnowledgeBase) -> None:
    cat = small_kb.searcher.search("a cat", k=3).hits
    assert _names(cat)[0] == "photo_0001.jpg"
    assert cat[0].clip == 0.0
    assert cat[0].keyword > 0.8
    assert cat[0].matched == ("cat",)
    assert _names(small_kb.searcher.search("猫", k=3).hits)[0] == "photo_0001.jpg"  # 猫 finds 一只猫
    rocket = small_kb.searcher.search("a rocket on a launch pad", k=3).hits
    assert _names(rocket) == ["rockets.md"]
    assert small_kb.searcher.search("a cat", keywords=False).reason == "irrelevant"
    partial = small_kb.searcher.keywords.search("cat astronaut")  # half the query: well below the ceiling
    assert partial
    assert partial[0].relevance < KEYWORD_CEILING / 2


def test_empty_and_filtered_results_say_why(tmp_path: Path, small_kb: KnowledgeBase) -> None:
    empty = open_kb(tmp_path / "empty", "toy")
    result = empty.searcher.search("a red circle")
    assert result.reason == "empty"
    assert "empty" in result.message
    filtered = small_kb.searcher.search("a red circle", where={"source": "/nowhere.png"})
    assert filtered.reason == "filtered"


def test_scores_do_not_depend_on_what_else_the_kb_holds(tmp_path: Path, small_kb: KnowledgeBase) -> None:
    files = tmp_path / "files"
    shutil.copytree(Path(small_kb.location).parent / "files", files)
    for i in range(30):
        (files / "notes" / f"minutes_{i}.md").write_text(f"Minutes of meeting {i}: budget, hiring, travel.\n", "utf-8")
    bigger = open_kb(tmp_path / "kb", "toy")
    bigger.sync(files)
    for query in ["a red circle", "一个绿色的三角形", "a cat"]:
        alone = {Path(h.source).name: h for h in small_kb.searcher.search(query, k=10, threshold=0).hits}
        mixed = {Path(h.source).name: h for h in bigger.searcher.search(query, k=10, threshold=0).hits}
        shared = [name for name in alone if name in mixed]
        assert len(shared) >= 3, query
        for name in shared:
            assert mixed[name].clip == pytest.approx(alone[name].clip, abs=1e-6), (query, name)
            assert mixed[name].keyword == pytest.approx(alone[name].keyword, abs=0.05), (query, name)  # IDF moves
        in_domain = [n for n in mixed if n in alone and alone[n].relevance >= 0.8]
        assert in_domain == [n for n in alone if alone[n].relevance >= 0.8], query  # same order
    top = _names(bigger.searcher.search("a red circle", k=3, modality="image").hits)
    assert set(top[:2]) == {"img_0a.png", "img_0b.jpg"}


def test_match_and_classify_say_when_nothing_fits(toy_clip: ClipModel) -> None:
    classifier = ZeroShotClassifier(toy_clip)
    square = draw(by_label("blue-square"), random.Random(2), size=128)
    assert classifier.match(square, "a blue square").verdict
    assert not classifier.match(square, "a cat on a sofa").verdict
    assert not classifier.match(square, "a red circle").verdict
    animals = classifier.classify(square, ["cat", "dog"])
    assert sum(s.probability for s in animals.scores) == pytest.approx(1.0)
    assert animals.none_fit
    shapes = classifier.classify(square, ["blue square", "red circle"])
    assert not shapes.none_fit
    assert shapes.scores[0].label == "blue square"


def test_match_is_right_in_and_out_of_the_toy_world(toy_clip: ClipModel) -> None:
    classifier = ZeroShotClassifier(toy_clip)
    rng = random.Random(9)
    wrong = 0
    for i, cls in enumerate(CLASSES[::3]):
        image = sketch(cls, rng) if i % 2 else draw(cls, rng, size=128)
        wrong += not classifier.match(image, paraphrases(cls)[0]).verdict
        wrong += sum(classifier.match(image, text).verdict for text in OUT_OF_WORLD[i::8])
    assert wrong <= 1


def test_eval_reads_labelled_queries_and_measures(tmp_path: Path, small_kb: KnowledgeBase) -> None:
    jsonl = tmp_path / "q.jsonl"
    rows = [
        {"query": "a red circle", "relevant": ["img_0a.png", "img_0b.jpg", "note_0.md"]},
        {"query": "a tabby cat", "relevant": ["images/photo_0001.*"]},
        {"query": "a yellow star", "relevant": "none"},
        {"query": "一只狗", "relevant": "none"},
    ]
    jsonl.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    csv = tmp_path / "q.csv"
    csv.write_text("query,relevant\na red circle,img_0a.png|img_0b.jpg|note_0.md\na yellow star,none\n", "utf-8")
    assert [q.query for q in read_queries(csv)] == ["a red circle", "a yellow star"]
    queries = read_queries(jsonl)
    assert queries[2].expects_none
    assert not queries[0].expects_none
    report = evaluate(small_kb.searcher, queries, k=10)
    assert report.recall["all"] == pytest.approx(1.0)
    assert report.success[IMAGE] == 1.0
    assert report.mrr["all"] == 1.0
    assert report.abstention_recall == 1.0
    assert report.abstention_precision == 1.0
    assert report.ece is not None
    assert report.ece < 0.3
    assert sum(b.hits for b in report.calibration) > 0
    without = evaluate(small_kb.searcher, queries, k=10, keywords=False)
    assert without.success[IMAGE] is not None
    assert without.success[IMAGE] < 1.0
    png = draw_reliability(report.calibration, tmp_path / "plot.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"relevant": []}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="needs a 'query'"):
        read_queries(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        read_queries(tmp_path / "missing.jsonl")


def test_the_gap_changes_no_verdict(tmp_path: Path, toy_clip: ClipModel) -> None:
    """With real CLIP's modality gap simulated, the same images and queries get the same decisions."""
    gapped = Scorer(GappedClip(toy_clip))
    plain = Scorer(toy_clip)
    rng = random.Random(4)
    images = [draw(c, rng, size=128) for c in CLASSES[::4]] + [sketch(c, rng) for c in CLASSES[::4]]
    labels = [c.label for c in CLASSES[::4]] * 2
    for scorer, clip in ((plain, toy_clip), (gapped, GappedClip(toy_clip))):
        vectors = clip.encode_images(images)
        for cls in CLASSES[::4]:
            text = cls.caption_en
            q = Query.text(text)
            _, centred = scorer.query_side(q, clip.encode_query_texts([text])[0])
            p = scorer.relevance(TEXT, centred, IMAGE, vectors)
            relevant = np.asarray([label == cls.label for label in labels])
            assert p[relevant].min() >= 0.5, (text, p)
            assert p[~relevant].max() < 0.5, (text, p)
