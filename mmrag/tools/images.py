"""The tools that look at one image: ``classify_image`` and ``match_image_text``."""

from __future__ import annotations

from collections.abc import Sequence

from mmrag.errors import ConfigError
from mmrag.tools.artifacts import ToolArtifact
from mmrag.tools.context import ToolContext
from mmrag.tools.result import ToolResult
from mmrag.tools.schemas import MAX_LABEL_CHARS, ClassifyInput, MatchInput
from mmrag.tools.search import warned
from mmrag.tools.specs import ToolSpec


def _classify(context: ToolContext, args: ClassifyInput) -> ToolResult:
    labels = check_labels(args.labels, context.max_labels)
    ref = context.image(args.image)
    result = context.classifier.classify(ref.image, labels)
    name = ref.id or context.view.show(ref.source)
    lines = [f"{s.probability:7.2%}  {s.label}  (fits the image: {s.match:.0%})" for s in result.scores]
    verdict = ["None of these labels fits the image."] if result.none_fit else []
    warnings = [context.view.redact(w) for w in result.warnings]
    content = "\n".join([f"Label probabilities for {name}:", *lines, *verdict, *warned(warnings)])
    artifact = ToolArtifact(
        image=ref.to_json(),
        best=result.best,
        labels=[
            {
                "label": s.label,
                "probability": round(s.probability, 6),
                "match": round(s.match, 6),
                "cosine": round(s.cosine, 6),
            }
            for s in result.scores
        ],
        warnings=list(result.warnings),
    )
    return ToolResult(content, artifact)


def _match(context: ToolContext, args: MatchInput) -> ToolResult:
    ref = context.image(args.image)
    result = context.classifier.match(ref.image, args.text)
    verdict = "match" if result.verdict else "no match"
    name = ref.id or context.view.show(ref.source)
    warnings = [context.view.redact(w) for w in result.warnings]
    content = "\n".join(
        [
            f"{verdict}: probability {result.probability:.2%} that {args.text!r} describes {name} "
            f"(similarity {result.similarity:.3f})",
            *warned(warnings),
        ]
    )
    artifact = ToolArtifact(
        image=ref.to_json(),
        text=args.text,
        similarity=round(result.similarity, 6),
        probability=round(result.probability, 6),
        match=result.verdict,
        warnings=list(result.warnings),
    )
    return ToolResult(content, artifact)


CLASSIFY_IMAGE = ToolSpec(
    name="classify_image",
    title="Classify an image",
    description=(
        "Zero-shot image classification: the probability of each candidate label for one image, "
        "relative to the labels given (they sum to 1), and each label's own match (does it describe the "
        "image at all?). Give at least two labels. If no label fits, say so."
    ),
    args_schema=ClassifyInput,
    run=_classify,
)
MATCH_IMAGE_TEXT = ToolSpec(
    name="match_image_text",
    title="Match an image and a description",
    description=(
        "Check whether a description fits an image. Returns the match probability (0-1; a match at 0.5 or "
        "more), the verdict and the raw CLIP similarity."
    ),
    args_schema=MatchInput,
    run=_match,
)


def check_labels(labels: Sequence[str], max_labels: int) -> list[str]:
    """The labels stripped and deduplicated, or a :class:`~mmrag.errors.ConfigError` over the limits."""
    cleaned = list(dict.fromkeys(label.strip() for label in labels if label.strip()))
    if len(cleaned) > max_labels:
        msg = f"at most {max_labels} labels per call, got {len(cleaned)}; split them over several calls"
        raise ConfigError(msg)
    long = [label for label in cleaned if len(label) > MAX_LABEL_CHARS]
    if long:
        msg = f"labels are short phrases of at most {MAX_LABEL_CHARS} characters; {long[0][:40]!r}… is longer"
        raise ConfigError(msg)
    return cleaned
