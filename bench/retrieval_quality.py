"""Benchmark: retrieval quality on the toy model's mixed knowledge base (shapes + notes about them).

Prints, from one run:

1. mixed text queries (24 English + 24 Chinese class captions; relevant = the class's images and its note):
   recall@10 of the relevant images and how often the relevant note is in the top 10, for mmrag's calibrated
   retriever and for one raw-cosine collection (how ``langchain_chroma.Chroma`` and Chroma rank mixed documents);
2. exactness: mmrag's ranks against brute-force numpy over the same embeddings (recall@10 vs exact);
3. zero-shot accuracy with prompt ensembling against single templates, on held-out drawings (clean and blurred);
4. the absolute relevance figures (issue "Relevance users can trust"), on knowledge bases built for them
   (``tests/support/relevance.py``): absent-class abstention, present-class image recall@10 with drawings from
   another renderer, out-of-world queries (EN and ZH), precision of what is shown, calibration error, the
   mixed corpus (shapes + sample_kb + 200 unrelated notes), ``sample_kb`` with the toy through ``mmrag eval``,
   and ``match`` in and out of the toy's world. Baseline: the relative Φ(z) score of mmrag 0.1 (the figures
   the issue measured).

    python bench/retrieval_quality.py          # the toy model as it is (it has no modality gap)
    python bench/retrieval_quality.py --gap    # with real CLIP's modality gap simulated (see GappedClip)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

if (_root := str(Path(__file__).resolve().parents[1])) not in sys.path:
    sys.path.insert(0, _root)  # as a script only bench/ is on sys.path; tests.support sits at the repo root

import numpy as np

from mmrag.config import Settings
from mmrag.factory import open_knowledge_base
from mmrag.kb.records import IMAGE, TEXT
from mmrag.model.clip import ClipModel
from mmrag.search.evaluation import evaluate, read_queries
from mmrag.search.zeroshot import ZeroShotClassifier
from mmrag.toy.demo import write_demo_folder
from mmrag.toy.shapes import EN_TEMPLATES
from tests.support.relevance import match_figures, measure, mixed_corpus
from tests.support.toyworld import (
    GappedClip,
    calibrated_figures,
    exactness,
    held_out_images,
    raw_cosine_figures,
    zero_shot_accuracy,
)

PER_CLASS = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gap", action="store_true", help="simulate real CLIP's modality gap on the toy model")
    parser.add_argument("--kbs", type=int, default=20, help="small knowledge bases for the relevance figures")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="mmrag-bench-quality-"))
    write_demo_folder(root / "files", per_class=PER_CLASS)
    clip = GappedClip() if args.gap else ClipModel("toy", device="cpu")
    kb = open_knowledge_base(Settings.from_env({}, home=root / "home", model="toy"), clip=clip)
    kb.sync(root / "files")
    texts, images = kb.store.sample_vectors(TEXT, 200), kb.store.sample_vectors(IMAGE, 200)
    print(
        f"model: toy{' + simulated modality gap' if args.gap else ''}; mean cosine text-text "
        f"{np.mean(texts @ texts.T):.2f}, image-image {np.mean(images @ images.T):.2f}, "
        f"text-image {np.mean(texts @ images.T):.2f}"
    )
    print(f"KB: {kb.store.count(IMAGE)} images, {kb.store.count(TEXT)} notes")
    searcher = kb.as_retriever().searcher
    print(f"mmrag calibrated retriever : {calibrated_figures(searcher, PER_CLASS).line()}")
    print(f"raw cosine, one collection : {raw_cosine_figures(kb, PER_CLASS).line()}")
    recall, identical, n = exactness(kb, searcher)
    print(f"exactness: recall@10 vs brute-force numpy {recall:.3f}; identical top-10 order in {identical}/{n}")

    classifier = ZeroShotClassifier(kb.clip)
    toy_templates = [t.replace("{a} {colour} {shape}", "a {}").replace("{colour} {shape}", "{}") for t in EN_TEMPLATES]
    for name, blurred in [("clean 96 px", False), ("blurred 24 px", True)]:
        items = held_out_images(10, seed=4242, blurred=blurred)
        for label, templates in [
            ("single template '{}'", ["{}"]),
            ("single template 'a photo of a {}.'", ["a photo of a {}."]),
            (f"ensemble of the {len(toy_templates)} toy caption templates", toy_templates),
            ("ensemble of mmrag's 6 default templates", None),
        ]:
            accuracy = zero_shot_accuracy(classifier, items, templates)
            print(f"zero-shot, {name} ({len(items)} images), {label:42} accuracy {accuracy:.3f}")
    relevance(root, clip, gap=args.gap, kbs=args.kbs)


def relevance(root: Path, clip: object, *, gap: bool, kbs: int) -> None:
    """Section 4: the absolute relevance figures, with floors from the issue."""
    figures = measure(root / "small", clip=clip, kbs=kbs)
    print(f"\n-- absolute relevance ({kbs} small KBs; toy{' + gap' if gap else ''}) --")
    for line in figures.lines():
        print(line)
    mixed = mixed_corpus(root / "corpus", clip=clip)
    print(
        f"mixed corpus: in-domain image recall@10 alone {mixed.alone_recall:.3f}, mixed {mixed.mixed_recall:.3f} "
        f"(change {mixed.mixed_recall - mixed.alone_recall:+.3f}); exact-class image first in "
        f"{mixed.exact_first:.0%} of {mixed.queries} queries"
    )
    oow, inworld, n_oow, n_in = match_figures(clip)
    print(f"match: out-of-world judged 'no match' {oow:.1%} of {n_oow}; in-world judged right {inworld:.1%} of {n_in}")
    sample = root / "sample"
    kb = open_knowledge_base(Settings.from_env({}, home=sample / "home", model="toy"), clip=clip)
    kb.sync(Path(_root) / "sample_kb")
    report = evaluate(kb.searcher, read_queries(Path(_root) / "sample_kb" / "eval.jsonl"), k=3)
    print(
        f"sample_kb with the toy (mmrag eval, sample_kb/eval.jsonl): right photo or note in the top 3 "
        f"{report.success['all']:.0%}; 'none' queries abstained {report.abstention_recall:.0%}"
    )


if __name__ == "__main__":
    main()
