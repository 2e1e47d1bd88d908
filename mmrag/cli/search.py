"""CLI commands that query: ``search``, ``classify``, ``match``.

Arguments are checked before anything heavy loads: a missing image file is an error in a fraction of a
second. A text search opens the knowledge base and encodes its text, on a cached ONNX export without torch
when there is one (:mod:`mmrag.model.query_card`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from mmrag.cli.common import ChromaUrlOpt, DbOpt, JsonFlag, cli, emit, read_stdin_if_dash, settings_from
from mmrag.defaults import DEFAULT_THRESHOLD

if TYPE_CHECKING:
    from mmrag.files.images import ImageSource
    from mmrag.model.clip import ClipModel
    from mmrag.search.hits import Modality
    from mmrag.vectors import Matrix

SEARCH_K = 10
"""``mmrag search`` lists more than a chat answer shows (the library's DEFAULT_K)."""
ModalityOpt = Annotated[str, typer.Option("--modality", help="image, text or all.")]


def _warn(warnings: list[str] | tuple[str, ...]) -> None:
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)


def check_image_file(path: Path) -> None:
    """Fail at once, before any model loads, when an image argument is not a file.

    Raises:
        ImageNotFoundError: naming the path.
    """
    if not path.is_file():
        from mmrag.errors import ImageNotFoundError

        what = "is a directory" if path.is_dir() else "does not exist or is not a regular file"
        msg = f"image {path} {what}"
        raise ImageNotFoundError(msg, path)


def percent(probability: float) -> str:
    """A probability as people read it: ``87.50%``, ``<0.01%``, ``>99.99%``."""
    if 0.0 < probability < 0.0001:
        return "<0.01%"
    if 0.9999 < probability < 1.0:
        return ">99.99%"
    return f"{probability:.2%}"


@cli.command()
def search(
    ctx: typer.Context,
    text: Annotated[str | None, typer.Argument(help="The text query; - reads it from stdin.")] = None,
    image: Annotated[Path | None, typer.Option("--image", help="An image query (search by image).")] = None,
    image_weight: Annotated[float, typer.Option(help="Weight of --image when combined with text.")] = 1.0,
    minus: Annotated[list[str] | None, typer.Option("--minus", help="Text to subtract (repeatable).")] = None,
    k: Annotated[int, typer.Option("-k", help="How many results.")] = SEARCH_K,
    modality: ModalityOpt = "all",
    threshold: Annotated[float, typer.Option(help="Minimum calibrated relevance, 0-1.")] = DEFAULT_THRESHOLD,
    mmr: Annotated[bool, typer.Option("--mmr", help="Diversify results (maximal marginal relevance).")] = False,
    db: DbOpt = None,
    chroma_url: ChromaUrlOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Search the knowledge base by text, by image, or both (query arithmetic: TEXT + w·IMAGE − MINUS)."""
    if text is not None:
        text = read_stdin_if_dash(text, "query")
    if image is not None:
        check_image_file(image)
    from mmrag.factory import open_knowledge_base
    from mmrag.search.query import Query

    terms = []
    if text:
        terms.append(Query.text(text))
    if image is not None:
        terms.append(Query.image(image, image_weight))
    terms += [Query.text(m, -1.0) for m in minus or []]
    if not terms:
        msg = "give a TEXT query, an --image, or both"
        raise typer.BadParameter(msg)
    query = sum(terms[1:], terms[0])
    kb = open_knowledge_base(settings_from(ctx, one_query=True, db=db, chroma_url=chroma_url), create=False)
    result = kb.searcher.search(query, k=k, modality=cast("Modality", modality), threshold=threshold, mmr=mmr)
    _warn(result.warnings)
    if as_json:
        emit([hit.to_json() for hit in result.hits])
        return
    if not result.hits:
        hint = {"empty": " (add files with `mmrag index FOLDER`)", "filtered": "", "irrelevant": ""}
        typer.echo(result.message + hint.get(result.reason or "", ""))
    for hit in result.hits:
        what = hit.document.replace("\n", " ")[:100] if hit.modality == "text" else (hit.caption or "")
        typer.echo(f"{hit.relevance:.3f}  {hit.modality:5}  {hit.source}  {what}")


def _image_or_kb_vector(
    ctx: typer.Context, image: str, db: Path | None, chroma_url: str | None
) -> tuple[ClipModel, ImageSource | Matrix]:
    """(clip, image): a file path, or an image id from the knowledge base (its stored vector)."""
    if not image.startswith("img-") or Path(image).exists():
        check_image_file(Path(image))
    import numpy as np

    from mmrag.errors import ImageNotFoundError
    from mmrag.factory import build_clip, open_knowledge_base
    from mmrag.kb.records import IMAGE

    settings = settings_from(ctx, one_query=True, db=db, chroma_url=chroma_url)
    if Path(image).exists() or not image.startswith("img-"):
        if db or chroma_url or settings.db or settings.chroma_url:
            return open_knowledge_base(settings, create=False).clip, Path(image)
        return build_clip(settings), Path(image)
    kb = open_knowledge_base(settings, create=False)
    found = kb.store.get(IMAGE, [image], embeddings=True)
    if not found:
        msg = f"{image} is neither a file nor an image id in the knowledge base at {kb.location}"
        raise ImageNotFoundError(msg, image)
    return kb.clip, np.asarray(found[0].embedding, dtype=np.float32)


@cli.command()
def classify(
    ctx: typer.Context,
    image: Annotated[str, typer.Argument(help="An image file, or an image id from the knowledge base.")],
    labels: Annotated[str, typer.Option("--labels", help='Comma-separated labels, e.g. "cat,dog,car".')],
    top_k: Annotated[int | None, typer.Option("--top-k", help="Show only the k most likely.")] = None,
    threshold: Annotated[
        float | None, typer.Option(help='Below this best probability, answer "none of these".')
    ] = None,
    db: DbOpt = None,
    chroma_url: ChromaUrlOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Zero-shot classification: the probability of each label for the image."""
    from mmrag.search.zeroshot import ZeroShotClassifier

    clip, target = _image_or_kb_vector(ctx, image, db, chroma_url)
    result = ZeroShotClassifier(clip).classify(target, labels.split(","), top_k=top_k, threshold=threshold)
    _warn(result.warnings)
    if as_json:
        emit(result.as_dict())
        return
    for score in result.scores:
        typer.echo(f"{percent(score.probability):>7}  {score.label}  (fits the image: {percent(score.match)})")
    if result.none_fit:
        typer.echo("none of these labels fits the image (each label's own match is below 50%)")
    elif result.best is None:
        typer.echo("none of these (best probability below the threshold)")


@cli.command()
def match(
    ctx: typer.Context,
    image: Annotated[str, typer.Argument(help="An image file, or an image id from the knowledge base.")],
    text: Annotated[str, typer.Argument(help="The description to check; - reads it from stdin.")],
    db: DbOpt = None,
    chroma_url: ChromaUrlOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Image–text matching: similarity, match probability and a verdict."""
    text = read_stdin_if_dash(text, "description")
    from mmrag.search.zeroshot import ZeroShotClassifier

    clip, target = _image_or_kb_vector(ctx, image, db, chroma_url)
    result = ZeroShotClassifier(clip).match(target, text)
    _warn(result.warnings)
    data = {
        "similarity": round(result.similarity, 6),
        "probability": round(result.probability, 6),
        "match": result.verdict,
    }
    if as_json:
        emit(data)
    else:
        verdict = "match" if result.verdict else "no match"
        typer.echo(f"{verdict}  (probability {percent(result.probability)}, similarity {result.similarity:.3f})")
