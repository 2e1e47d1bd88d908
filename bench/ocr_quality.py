"""OCR word recall and speed of the installed engines on generated text images (English and Chinese).

    python bench/ocr_quality.py                  # both engines, 24 images a language
    python bench/ocr_quality.py --engine tesseract --count 48 --json
    python bench/ocr_quality.py --index sample_kb   # what OCR adds to indexing a folder (toy model)
    python bench/ocr_quality.py --pdf-speed         # figure extraction and page rendering per second
    python bench/ocr_quality.py --phrases 10        # a phrase only inside an image finds it first (toy model)

Images: tests/support/ocr_images.py (several fonts and sizes, ±5° rotation, light noise). Recall is the share
of the drawn words found in the engine's text. The issue's floors: English ≥ 0.90, Chinese ≥ 0.80.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmrag.errors import OcrError
from mmrag.files.ocr import ENGINES, ocr_engine, run_ocr
from tests.support.ocr_images import samples, word_recall


def measure(engine_name: str, count: int, seed: int) -> dict[str, object]:
    engine = ocr_engine(engine_name)
    run_ocr(engine, samples("en", 1, seed=99)[0].image, budget_s=60)  # load models, warm caches
    out: dict[str, object] = {"engine": engine_name}
    for language in ("en", "zh"):
        recalls, seconds, worst = [], [], []
        for sample in samples(language, count, seed=seed):
            try:
                result = run_ocr(engine, sample.image, budget_s=60)
                text, took = result.text, result.seconds
            except OcrError:
                text, took = "", 60.0
            r = word_recall(sample.words, text)
            recalls.append(r)
            seconds.append(took)
            if r < 0.75:
                worst.append(f"{sample.font} {sample.size}px {sample.angle:+.1f}°: {r:.2f}")
        out[language] = {
            "recall": round(statistics.mean(recalls), 3),
            "images": len(recalls),
            "median_s": round(statistics.median(seconds), 3),
            "images_per_s": round(len(seconds) / sum(seconds), 2),
            "worst": worst[:6],
        }
    return out


def index_cost(folder: Path) -> dict[str, object]:
    """Index ``folder`` with the toy model twice, OCR off then on, into fresh knowledge bases."""
    import tempfile

    from mmrag.factory import open_knowledge_base

    out: dict[str, object] = {"folder": str(folder)}
    for mode in ("off", "on"):
        with tempfile.TemporaryDirectory() as tmp:
            kb = open_knowledge_base(db=Path(tmp) / "kb", model="toy", ocr=mode)
            kb.clip.load()
            report = kb.sync(folder)
            out[f"ocr_{mode}"] = {
                "seconds": round(report.seconds, 1),
                "ocr_seconds": round(report.ocr_seconds, 1),
                "ocr_images": report.ocr_images,
                "children": sum(1 for m in kb.store.metadatas("text").values() if m.get("parent_id")),
            }
    return out


def phrase_top1(count: int, seed: int) -> dict[str, object]:
    """Images that each show a phrase found nowhere else; the share whose phrase finds them first (toy model).

    Through CLIP's text tower on the OCR children only: the keyword channel is not there yet.
    """
    import random
    import tempfile

    from mmrag.factory import open_knowledge_base
    from tests.support.ocr_images import EN_FONTS, EN_WORDS, fonts_present, render

    rng = random.Random(seed)
    fonts = fonts_present(EN_FONTS)
    words = rng.sample(EN_WORDS, count * 3)
    phrases = [words[3 * i : 3 * i + 3] for i in range(count)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        for i, phrase in enumerate(phrases):
            render(phrase, fonts[i % len(fonts)], 36, angle=rng.uniform(-3, 3)).image.save(folder / f"sign{i:02d}.png")
        kb = open_knowledge_base(db=Path(tmp) / "kb", model="toy", ocr="on")
        report = kb.sync(folder)
        top1 = 0
        for i, phrase in enumerate(phrases):
            hits = kb.searcher.search(" ".join(phrase), k=3, threshold=0.0).hits
            top1 += bool(hits) and Path(hits[0].source).name == f"sign{i:02d}.png"
    return {"images": count, "ocr_images": report.ocr_images, "top1": round(top1 / count, 3), "model": "toy"}


def pdf_speed(pages: int = 20) -> dict[str, object]:
    """Figures extracted and scanned pages rendered per second, on a generated PDF."""
    import tempfile

    from mmrag.files.pdf import PdfFigure, PdfFile
    from tests.support.pdfs import PageSpec, write_pdf

    specs = [PageSpec([f"Page {i} text about the study."], [("chart", "red"), ("chart", "blue")]) for i in range(pages)]
    with tempfile.TemporaryDirectory() as tmp:
        path = write_pdf(Path(tmp) / "speed.pdf", specs)
        start = time.perf_counter()
        with PdfFile(path) as pdf:
            figures = [f for f in pdf.figures(pdf.pages()) if isinstance(f, PdfFigure)]
        extract = time.perf_counter() - start
        start = time.perf_counter()
        with PdfFile(path) as pdf:
            for i in range(min(pages, 8)):
                pdf.render(i)
        render = time.perf_counter() - start
    return {
        "figures_per_s": round(len(figures) / extract, 1),
        "pages_rendered_per_s": round(min(pages, 8) / render, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=[*ENGINES, "all"], default="all")
    parser.add_argument("--count", type=int, default=24, help="images per language")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--index", type=Path, help="measure what OCR adds to indexing this folder instead")
    parser.add_argument("--pdf-speed", action="store_true", help="measure figure extraction and rendering instead")
    parser.add_argument("--phrases", type=int, help="measure phrase-in-image top-1 on this many images instead")
    args = parser.parse_args()
    if args.index or args.pdf_speed or args.phrases:
        if args.index:
            data = index_cost(args.index)
        elif args.phrases:
            data = phrase_top1(args.phrases, args.seed)
        else:
            data = pdf_speed()
        print(json.dumps(data, indent=2))
        return 0
    names = list(ENGINES) if args.engine == "all" else [args.engine]
    start = time.perf_counter()
    results = []
    for name in names:
        try:
            results.append(measure(name, args.count, args.seed))
        except OcrError as e:
            results.append({"engine": name, "error": str(e)})
    if args.json:
        print(json.dumps({"results": results, "seconds": round(time.perf_counter() - start, 1)}, indent=2))
        return 0
    for r in results:
        if "error" in r:
            print(f"{r['engine']:10} unavailable: {r['error']}")
            continue
        for language in ("en", "zh"):
            m = r[language]
            assert isinstance(m, dict)
            print(
                f"{r['engine']:10} {language}  recall {m['recall']:.3f} over {m['images']} images  "
                f"median {m['median_s']:.2f} s/image  ({m['images_per_s']:.1f} images/s)"
            )
            for w in m["worst"]:
                print(f"{'':14}low: {w}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
