"""mmrag's chromadb embedding function: CLIP texts and images, registered under the name ``mmrag``.

mmrag writes this function's config into each of its collections (``configuration.embedding_function``), so a
plain chromadb user can query a knowledge base by text or by image with no extra code:

.. code-block:: python

    import chromadb
    import mmrag  # registers "mmrag" with chromadb (or: import mmrag.kb.embedding_function)
    from chromadb.utils.data_loaders import ImageLoader

    client = chromadb.PersistentClient("kb")  # or chromadb.HttpClient(host="127.0.0.1", port=8000)
    images = client.get_collection("mmrag_images", data_loader=ImageLoader())
    images.query(query_texts=["a red circle"], n_results=3)
    images.query(query_uris=["photos/cat.jpg"], n_results=3)  # by image file (ImageLoader reads it)
    images.query(query_images=[numpy_rgb_array], n_results=3)  # by image array

The function builds a :class:`~mmrag.model.clip.ClipModel` from the config (model and pretrained tag; device,
precision and the rest from ``MMRAG_*`` like :class:`~mmrag.langchain.embeddings.ClipEmbeddings`). The model
loads its weights on first use, once per config and process, however often chromadb rebuilds the function.

Inputs: strings are texts, except ``file://`` URIs and ``data:image/…`` URIs, which are images; numpy arrays
(H×W×C, H×W) and PIL images are images. chromadb's own ``query_uris`` reads files through the collection's
``data_loader`` and passes arrays.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
from chromadb.api.types import EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from mmrag.config import Settings
from mmrag.errors import ConfigError
from mmrag.files.images import ImageSource
from mmrag.model.clip import ClipModel

NAME = "mmrag"
"""The name chromadb's registry knows this function by (``configuration.embedding_function.name``)."""

_models: dict[tuple[str, str | None], ClipModel] = {}
_models_lock = threading.Lock()


def _model_for(model: str, pretrained: str | None) -> ClipModel:
    """One lazily loading model per (model, pretrained) in this process: chromadb rebuilds the function often."""
    with _models_lock:
        found = _models.get((model, pretrained))
        if found is None:
            found = ClipModel.from_settings(Settings.from_env(model=model, pretrained=pretrained))
            _models[(model, pretrained)] = found
        return found


@register_embedding_function
class MmragEmbeddingFunction(EmbeddingFunction[Any]):
    """CLIP embeddings for chromadb: texts and images in one space (cosine).

    Args:
        model: open_clip name, ``hf-hub:…``, ``local-dir:…`` or ``toy`` (what the knowledge base records).
        pretrained: the pretrained tag or checkpoint file (None: the model's own).
        clip: an existing model to share (``model`` and ``pretrained`` are then taken from it).
    """

    def __init__(self, model: str = "toy", pretrained: str | None = None, *, clip: ClipModel | None = None) -> None:
        self._clip = clip
        self.model = clip.model_name if clip is not None else model
        self.pretrained = clip.pretrained if clip is not None else (pretrained or None)

    @property
    def clip(self) -> ClipModel:
        if self._clip is None:
            self._clip = _model_for(self.model, self.pretrained)
        return self._clip

    @staticmethod
    def name() -> str:
        return NAME

    def __call__(self, input: Any) -> Embeddings:
        return self._embed(input, query=False)

    def embed_query(self, input: Any) -> Embeddings:
        return self._embed(input, query=True)

    def embed_uris(self, uris: Sequence[str]) -> Embeddings:
        """Embed images given by path or ``file://`` URI."""
        return list(self.clip.encode_images([_image_of(u) for u in uris]))

    def _embed(self, items: Any, *, query: bool) -> Embeddings:
        items = list(items)
        vectors: list[np.ndarray[Any, Any] | None] = [None] * len(items)
        texts = [(i, x) for i, x in enumerate(items) if isinstance(x, str) and not _is_image_uri(x)]
        images = [(i, x) for i, x in enumerate(items) if not (isinstance(x, str) and not _is_image_uri(x))]
        if texts:
            strings = [t for _, t in texts]
            encoded = self.clip.encode_query_texts(strings) if query else self.clip.encode_texts(strings)
            for (i, _), v in zip(texts, encoded, strict=True):
                vectors[i] = v
        if images:
            encoded = self.clip.encode_images([_image_of(x) for _, x in images])
            for (i, _), v in zip(images, encoded, strict=True):
                vectors[i] = v
        return [np.asarray(v, dtype=np.float32) for v in vectors if v is not None]

    def get_config(self) -> dict[str, Any]:
        return {"model": self.model, "pretrained": self.pretrained or ""}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MmragEmbeddingFunction:
        MmragEmbeddingFunction.validate_config(config)
        return MmragEmbeddingFunction(str(config["model"]), str(config.get("pretrained") or "") or None)

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        if not isinstance(config.get("model"), str) or not config["model"]:
            msg = f"the mmrag embedding function's config needs a model name, got {config!r}"
            raise ConfigError(msg)

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        if old_config.get("model") != new_config.get("model") or (old_config.get("pretrained") or "") != (
            new_config.get("pretrained") or ""
        ):
            msg = "an mmrag collection's model can't change; rebuild the knowledge base: mmrag index --rebuild"
            raise ConfigError(msg)

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine"]

    def __repr__(self) -> str:
        return f"MmragEmbeddingFunction({self.model!r}, {self.pretrained!r})"


def _is_image_uri(text: str) -> bool:
    return text.startswith(("file://", "data:image/"))


def _image_of(item: Any) -> ImageSource:
    """What :meth:`ClipModel.encode_images` reads: a path, bytes or a PIL image."""
    from PIL import Image

    if isinstance(item, Image.Image | bytes):
        return item
    if isinstance(item, np.ndarray):
        array = item
        if array.dtype != np.uint8:
            array = np.clip(array * (255 if array.max() <= 1.0 else 1), 0, 255).astype(np.uint8)
        return Image.fromarray(array)
    if isinstance(item, str) and item.startswith("data:image/"):
        return base64.b64decode(item.split(",", 1)[1])
    if isinstance(item, str) and item.startswith("file://"):
        return Path(unquote(urlparse(item).path))
    if isinstance(item, str | Path):
        return Path(item)
    msg = f"the mmrag embedding function can't embed a {type(item).__name__}"
    raise ConfigError(msg)
