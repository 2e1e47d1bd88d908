"""The relevance figures of the toy world, shared by ``bench/retrieval_quality.py`` and the tests (not shipped).

Small knowledge bases hold a few of the 24 classes: images drawn by the toy's renderer *and* by another one
(:func:`tests.support.renderers.sketch`), with anonymous file names (so only CLIP can know what they show),
plus one note per present class. Queries are paraphrases of class captions in English and Chinese (not the
training templates), for present classes (recall), absent ones (abstention), and out-of-world subjects.
"""

from __future__ import annotations

import random
import shutil
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmrag.config import Settings
from mmrag.defaults import DEFAULT_THRESHOLD
from mmrag.factory import open_knowledge_base
from mmrag.search.evaluation import calibration
from mmrag.search.zeroshot import ZeroShotClassifier
from mmrag.toy.demo import class_note
from mmrag.toy.shapes import CLASSES, ToyClass, draw
from tests.support.renderers import sketch

OUT_OF_WORLD = (
    "a cat",
    "a dog running on grass",
    "a red car",
    "a bicycle",
    "a bowl of noodles",
    "a slice of pizza",
    "a horse",
    "an airplane in the sky",
    "a sunset over the sea",
    "a cup of coffee",
    "一只猫",
    "一只狗",
    "一辆红色的汽车",
    "火车",
    "一碗面条",
    "日落海边",
    "一杯咖啡",
    "飞机",
)
"""Animals, vehicles, food and scenes, in English and Chinese: nothing a shapes knowledge base holds."""


def paraphrases(cls: ToyClass) -> list[str]:
    """Ways to ask for a class that are not the toy's training templates."""
    return [
        f"{cls.colour.en} {cls.shape.en}s",
        f"show me {cls.article} {cls.colour.en} {cls.shape.en}",
        f"{cls.colour.zh}的{cls.shape.zh}",
        f"找一个{cls.colour.zh}{cls.shape.zh}",
    ]


@dataclass
class Figures:
    """Relevance figures over many small knowledge bases (fractions 0-1)."""

    absent_abstention: float = 0.0
    present_recall: float = 0.0
    out_of_world: float = 0.0
    shown_precision: float = 0.0
    ece: float = 0.0
    queries: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        return [
            f"absent-class abstention (no hit ≥ {DEFAULT_THRESHOLD}):  {self.absent_abstention:.1%} "
            f"of {self.queries.get('absent', 0)} queries",
            f"present-class image recall@10 (default settings):    {self.present_recall:.3f} "
            f"over {self.queries.get('present', 0)} queries",
            f"out-of-world queries with no hit:                    {self.out_of_world:.1%} "
            f"of {self.queries.get('oow', 0)} queries",
            f"precision of what is shown:                          {self.shown_precision:.1%}",
            f"calibration error (ECE, 10 bins, top-10 hits):       {self.ece:.3f}",
        ]


def write_small_kb(folder: Path, classes: list[ToyClass], rng: random.Random, per_class: int) -> dict[str, str]:
    """Images of ``classes`` (both renderers, anonymous names) and a note each; returns file name → class label."""
    images = folder / "images"
    notes = folder / "notes"
    images.mkdir(parents=True, exist_ok=True)
    notes.mkdir(parents=True, exist_ok=True)
    labels: dict[str, str] = {}
    n = 0
    for cls in classes:
        for i in range(per_class):
            n += 1
            if i % 2 == 0:
                name = f"img_{n:03d}.png"
                draw(cls, rng, size=rng.choice((96, 128, 200))).save(images / name)
            else:
                name = f"img_{n:03d}.jpg"
                sketch(cls, rng).save(images / name)
            labels[name] = cls.label
        note = f"{cls.label.replace('-', '_')}.md"
        (notes / note).write_text(class_note(cls), encoding="utf-8")
        labels[note] = cls.label
    return labels


def measure(
    root: Path,
    *,
    clip: Any = None,
    kbs: int = 12,
    seed: int = 0,
    threshold: float = DEFAULT_THRESHOLD,
) -> Figures:
    """Build ``kbs`` small knowledge bases under ``root`` and measure them (see the module doc)."""
    from mmrag.model.clip import ClipModel

    clip = clip if clip is not None else ClipModel("toy", device="cpu", text_runtime="torch")  # one model for all
    rng = random.Random(seed)
    absent_ok: list[bool] = []
    recalls: list[float] = []
    oow_ok: list[bool] = []
    shown: list[bool] = []
    scored: list[tuple[float, bool]] = []
    for n in range(kbs):
        present = rng.sample(list(CLASSES), rng.choice((2, 3, 4)))
        per_class = rng.choice((2, 3, 4))
        folder = root / f"kb{n}"
        shutil.rmtree(folder, ignore_errors=True)
        labels = write_small_kb(folder / "files", present, rng, per_class)
        kb = open_knowledge_base(Settings.from_env({}, home=folder / "home", model="toy", ocr="off"), clip=clip)
        kb.sync(folder / "files")
        present_labels = {c.label for c in present}
        for cls in CLASSES:
            for query in paraphrases(cls)[:2] if cls.label not in present_labels else paraphrases(cls):
                hits = kb.searcher.search(query, k=10, threshold=0).hits
                relevant = [labels.get(Path(h.source).name) == cls.label for h in hits]
                scored += [(h.relevance, r) for h, r in zip(hits, relevant, strict=True)]
                shown += [r for h, r in zip(hits, relevant, strict=True) if h.relevance >= threshold]
                above = [h for h in hits if h.relevance >= threshold]
                if cls.label in present_labels:
                    found = sum(
                        1 for h in above if h.modality == "image" and labels.get(Path(h.source).name) == cls.label
                    )
                    recalls.append(found / per_class)
                else:
                    absent_ok.append(not above)
        for query in OUT_OF_WORLD[n % 3 :: 3]:
            hits = kb.searcher.search(query, k=10, threshold=0).hits
            scored += [(h.relevance, False) for h in hits]
            shown += [False for h in hits if h.relevance >= threshold]
            oow_ok.append(not any(h.relevance >= threshold for h in hits))
    return Figures(
        absent_abstention=statistics.mean(absent_ok),
        present_recall=statistics.mean(recalls),
        out_of_world=statistics.mean(oow_ok),
        shown_precision=statistics.mean(shown) if shown else 1.0,
        ece=calibration(scored)[1] or 0.0,
        queries={"absent": len(absent_ok), "present": len(recalls), "oow": len(oow_ok)},
    )


def match_figures(clip: Any = None, *, seed: int = 3, per_class: int = 2) -> tuple[float, float, int, int]:
    """(out-of-world descriptions judged "no match", in-world judged correctly, counts) on both renderers."""
    from mmrag.model.clip import ClipModel

    model = clip if clip is not None else ClipModel("toy", device="cpu")
    classifier = ZeroShotClassifier(model)
    rng = random.Random(seed)
    oow_right, oow_total, in_right, in_total = 0, 0, 0, 0
    for i, cls in enumerate(CLASSES):
        for j in range(per_class):
            image = draw(cls, rng, size=128) if j % 2 == 0 else sketch(cls, rng)
            for text in OUT_OF_WORLD[(i + j) % 4 :: 4]:
                oow_total += 1
                oow_right += not classifier.match(image, text).verdict
            other = CLASSES[(i + 7 + j) % len(CLASSES)]
            in_total += 2
            in_right += classifier.match(image, rng.choice(paraphrases(cls))).verdict
            in_right += not classifier.match(image, rng.choice(paraphrases(other))).verdict
    return oow_right / oow_total, in_right / in_total, oow_total, in_total


UNRELATED_TOPICS = ("budget", "hiring", "travel", "roadmap", "security", "payroll", "offsite", "legal")


def write_unrelated_notes(folder: Path, n: int = 200) -> None:
    """``n`` short office notes that share no subject with shapes or with ``sample_kb``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(17)
    for i in range(n):
        a, b = rng.sample(UNRELATED_TOPICS, 2)
        text = f"Meeting notes {i}\n\nWe discussed the {a} and the {b} for next quarter. Action items follow.\n"
        (folder / f"minutes_{i:03d}.md").write_text(text, encoding="utf-8")


@dataclass
class MixedCorpus:
    alone_recall: float
    mixed_recall: float
    exact_first: float
    queries: int


def mixed_corpus(root: Path, *, clip: Any = None, per_class: int = 3) -> MixedCorpus:
    """Shapes alone against shapes + ``sample_kb`` + 200 unrelated notes, on the class captions (EN and ZH).

    ``exact_first``: the share of queries whose best exact-class image outranks every other-class document.
    """
    from mmrag.toy.demo import write_demo_folder
    from tests.support.toyworld import class_of, class_queries

    shapes = root / "shapes"
    write_demo_folder(shapes / "files", per_class=per_class)
    mixed = root / "mixed"
    shutil.copytree(shapes / "files", mixed / "files" / "shapes")
    shutil.copytree(Path(__file__).resolve().parents[2] / "sample_kb", mixed / "files" / "sample_kb")
    write_unrelated_notes(mixed / "files" / "office")
    from mmrag.model.clip import ClipModel

    clip = clip if clip is not None else ClipModel("toy", device="cpu", text_runtime="torch")
    recalls: dict[str, list[float]] = {"alone": [], "mixed": []}
    exact_first = []
    for name, folder in (("alone", shapes), ("mixed", mixed)):
        kb = open_knowledge_base(Settings.from_env({}, home=folder / "home", model="toy", ocr="off"), clip=clip)
        kb.sync(folder / "files")
        for text, cls in class_queries():
            hits = kb.searcher.search(text, k=10).hits
            recalls[name].append(sum(h.modality == "image" and class_of(h.source) == cls for h in hits) / per_class)
            if name == "mixed":
                ranked = kb.searcher.search(text, k=40, threshold=0).hits
                best = next(i for i, h in enumerate(ranked) if h.modality == "image" and class_of(h.source) == cls)
                others = [i for i, h in enumerate(ranked) if class_of(h.source) != cls]
                exact_first.append(best < min(others, default=len(ranked)))
    return MixedCorpus(
        statistics.mean(recalls["alone"]),
        statistics.mean(recalls["mixed"]),
        statistics.mean(exact_first),
        len(exact_first),
    )
