"""``mmrag eval``: measure retrieval on labelled queries (recall, MRR, nDCG, abstention, calibration)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mmrag.cli.common import ChromaUrlOpt, DbOpt, JsonFlag, cli, emit, settings_from
from mmrag.defaults import DEFAULT_THRESHOLD


@cli.command("eval")
def evaluate_command(
    ctx: typer.Context,
    queries: Annotated[
        Path,
        typer.Argument(
            help="Labelled queries: JSON lines or CSV with query and relevant; 'toy' for the shapes demo's set."
        ),
    ],
    k: Annotated[int, typer.Option("-k", help="Depth of recall@k.")] = 10,
    threshold: Annotated[
        list[float] | None, typer.Option(help="Relevance threshold; repeat it to compare several.")
    ] = None,
    channels: Annotated[str, typer.Option(help="Channels to compare: 'both', 'clip', or 'both,clip'.")] = "both",
    plot: Annotated[Path | None, typer.Option(help="Write a reliability diagram (PNG) here.")] = None,
    db: DbOpt = None,
    chroma_url: ChromaUrlOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Measure retrieval on your labelled queries, to choose a threshold and check your knowledge base."""
    from mmrag.factory import open_knowledge_base
    from mmrag.search.evaluation import evaluate, read_queries
    from mmrag.search.reliability_plot import draw_reliability

    if str(queries) == "toy" and not queries.exists():
        from mmrag.toy import checkpoint_dir

        queries = checkpoint_dir().parent / "eval" / "shapes.jsonl"
    labelled = read_queries(queries)
    wanted = [c.strip() for c in channels.split(",") if c.strip()]
    if not wanted or any(c not in ("both", "clip") for c in wanted):
        msg = f"--channels takes 'both', 'clip' or both of them, got {channels!r}"
        raise typer.BadParameter(msg)
    kb = open_knowledge_base(settings_from(ctx, db=db, chroma_url=chroma_url), create=False)
    reports = [
        evaluate(kb.searcher, labelled, k=k, threshold=t, keywords=c == "both")
        for c in wanted
        for t in (threshold or [DEFAULT_THRESHOLD])
    ]
    if plot is not None:
        draw_reliability(reports[0].calibration, plot, title=f"{queries.name}: score against observed precision")
    if as_json:
        emit([r.to_json() for r in reports])
        return
    for r in reports:
        typer.echo(
            f"channels={'clip+keywords' if r.settings['keywords'] else 'clip'}  threshold={r.threshold:g}  k={r.k}  "
            f"queries={r.queries} ({r.none_queries} expect nothing)"
        )
        for modality in ("all", "image", "text"):
            typer.echo(
                f"  {modality:5}  recall@{r.k} {_pct(r.recall[modality])}  hit@{r.k} {_pct(r.success[modality])}  "
                f"MRR {_num(r.mrr[modality])}  "
                f"nDCG@10 {_num(r.ndcg10[modality])}"
            )
        typer.echo(
            f"  abstention on 'none' queries: recall {_pct(r.abstention_recall)}, precision "
            f"{_pct(r.abstention_precision)}; precision of what is shown {_pct(r.shown_precision)}"
        )
        typer.echo(f"  calibration (ECE {_num(r.ece)}):  score bin → hits, mean score, observed precision")
        for b in r.calibration:
            typer.echo(f"    {b.low:.1f}-{b.high:.1f}  {b.hits:5}  {b.mean_score:.3f}  {b.precision:.3f}")
    if plot is not None:
        typer.echo(f"reliability diagram: {plot}")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
