"""Absolute relevance: the probability that a hit is relevant to its query, on one scale for both channels.

A hit's ``relevance`` (its ``score``) combines two channels:

* **CLIP**: the cosine of the query and the document, both centred on their modality's mean, through the
  model's prior curve for that pair of modalities (:mod:`mmrag.search.prior`). It is 0 for a text query with
  words a closed-vocabulary model never learnt (:mod:`mmrag.search.vocabulary`).
* **keywords**: how much of the query the document's own words cover (:mod:`mmrag.search.keyword`).

They are combined as independent evidence, ``1 − (1 − clip)(1 − keyword)``: either channel alone can find a
document, and a document both find ranks above one only a single channel finds. Nothing here depends on what
else the knowledge base holds, so adding an unrelated corpus changes no score, and an absent class scores low
whatever is present.

Priors are cached: in memory per process, on disk in ``cache_dir`` (``MMRAG_HOME/calibration``), and, for the
packaged toy model, in its checkpoint folder. A prior is used only for the model it was measured on (same
label, same embedding of an anchor text).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from mmrag.kb.records import IMAGE, TEXT
from mmrag.search.prior import ModelPrior, anchor, measure_prior
from mmrag.search.query import Query
from mmrag.search.vocabulary import vocabulary_of
from mmrag.toy import checkpoint_dir
from mmrag.vectors import Matrix

log = logging.getLogger(__name__)
PRIOR_FILE = "mmrag-prior.json"
READABLE_SHARE = 0.5
"""A closed-vocabulary model reads a text document if it knows at least this share of its words."""
_MEMO: list[ModelPrior] = []
_MEMO_LOCK = threading.Lock()


def combine(clip: float, keyword: float) -> float:
    """Two channels' relevances as independent evidence (noisy-OR)."""
    return 1.0 - (1.0 - clip) * (1.0 - keyword)


class Scorer:
    """The CLIP channel's absolute relevance for one model.

    Args:
        clip: the model (a :class:`~mmrag.model.clip.ClipModel` or a wrapper with the same encoders).
        cache_dir: where measured priors are kept between processes (None: in memory only).
    """

    def __init__(self, clip: Any, *, cache_dir: Path | None = None) -> None:
        self.clip = clip
        self.cache_dir = cache_dir
        self._prior: ModelPrior | None = None
        self._lock = threading.Lock()
        self.vocabulary = vocabulary_of(clip)

    @property
    def prior(self) -> ModelPrior:
        """The model's prior, measured once (a few seconds) and cached."""
        if self._prior is None:
            with self._lock:
                if self._prior is None:
                    self._prior = self._load_or_measure()
        return self._prior

    def _load_or_measure(self) -> ModelPrior:
        label, mine = self.clip.label, anchor(self.clip)
        with _MEMO_LOCK:
            for prior in _MEMO:
                if prior.matches(label, mine):
                    return prior
        for path in self._candidates():
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                prior = ModelPrior.from_json(path.read_text(encoding="utf-8"))
                if prior.matches(label, mine):
                    return self._remember(prior)
        log.info("measuring the score scale of %s on the probe set", label)
        prior = measure_prior(self.clip)
        if self.cache_dir is not None:
            name = hashlib.sha256(json.dumps(prior.anchor[:8]).encode()).hexdigest()[:16]
            with contextlib.suppress(OSError):
                _write_atomic(self.cache_dir / f"prior-{name}.json", prior.to_json())
        return self._remember(prior)

    def _candidates(self) -> list[Path]:
        found = sorted(self.cache_dir.glob("prior-*.json")) if self.cache_dir is not None else []
        return [*found, checkpoint_dir() / PRIOR_FILE]

    @staticmethod
    def _remember(prior: ModelPrior) -> ModelPrior:
        with _MEMO_LOCK:
            _MEMO.append(prior)
        return prior

    def readable_query(self, query: Query) -> Query:
        """The query as the model reads it best (closed vocabularies: see ``Vocabulary.normalise``)."""
        vocabulary = self.vocabulary
        return query if vocabulary is None else query.with_texts(lambda t: vocabulary.normalise(t) or t)

    def understood(self, query: Query) -> float:
        """1 if the model can read every text term of ``query``; 0 if a term has a word it never learnt."""
        if self.vocabulary is None:
            return 1.0
        texts = [t.text for t in query.terms if t.text is not None]
        return 0.0 if any(self.vocabulary.unknown(text) for text in texts) else 1.0

    def readable(self, document: str) -> float:
        """1 if the model can read a text document (most of its words), else 0."""
        if self.vocabulary is None:
            return 1.0
        return 1.0 if self.vocabulary.known_share(document) >= READABLE_SHARE else 0.0

    def unknown_words(self, query: Query) -> list[str]:
        if self.vocabulary is None:
            return []
        return [w for t in query.terms if t.text is not None for w in self.vocabulary.unknown(t.text)]

    def query_side(self, query: Query, vector: Matrix) -> tuple[str, Matrix]:
        """The query's modality (its heaviest kind of term) and its centred vector."""
        text_weight = sum(abs(t.weight) for t in query.terms if t.text is not None)
        other_weight = sum(abs(t.weight) for t in query.terms if t.text is None)
        modality = TEXT if text_weight >= other_weight else IMAGE
        return modality, self.prior.centred(vector, modality)[0]

    def relevance(self, query_modality: str, centred_query: Matrix, doc_modality: str, vectors: Matrix) -> Matrix:
        """The CLIP channel's P(relevant) of documents (their stored unit vectors) for a centred query."""
        if len(vectors) == 0:
            return np.zeros(0, dtype=np.float32)
        docs = self.prior.centred(vectors, doc_modality)
        return self.prior.relevance(query_modality, doc_modality, docs @ centred_query)

    def centred_cosines(self, centred_query: Matrix, doc_modality: str, vectors: Matrix) -> Matrix:
        if len(vectors) == 0:
            return np.zeros(0, dtype=np.float32)
        return np.asarray(self.prior.centred(vectors, doc_modality) @ centred_query, dtype=np.float32)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".prior-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
