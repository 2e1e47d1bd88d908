"""ClipEmbeddings: CLIP as a LangChain ``Embeddings``, with ``embed_image`` for image documents."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.embeddings import Embeddings

from mmrag.config import Settings
from mmrag.errors import ConfigError
from mmrag.files.images import ImageSource
from mmrag.model.clip import ClipModel
from mmrag.vectors import Vector


class ClipEmbeddings(Embeddings):
    """CLIP text and image embeddings in one space, for LangChain.

    Texts longer than the model's context (77 tokens for ViT-B-32) are truncated; chunk long documents
    first (``KnowledgeBase`` does). Every vector is L2-normalised, so cosine similarity is a dot product.

    Setup:
        .. code-block:: bash

            pip install mmrag

    Instantiate:
        .. code-block:: python

            from mmrag import ClipEmbeddings

            embeddings = ClipEmbeddings()  # ViT-B-32 / laion2b_s34b_b79k, loaded on first use
            embeddings = ClipEmbeddings(model_name="xlm-roberta-base-ViT-B-32")  # multilingual queries
            embeddings = ClipEmbeddings(model_name="toy")  # offline toy model

    Use:
        .. code-block:: python

            embeddings.embed_query("a red circle")
            embeddings.embed_documents(["a red circle", "一个红色的圆形"])
            embeddings.embed_image(["photos/cat.jpg"])

        With ``langchain_chroma.Chroma``, ``add_images`` calls ``embed_image``:

        .. code-block:: python

            from langchain_chroma import Chroma

            store = Chroma("photos", embedding_function=embeddings)
            store.add_images(["photos/cat.jpg"])

    Args:
        model_name: open_clip name, ``hf-hub:…``, ``local-dir:…`` or ``toy``. Default: ``MMRAG_MODEL``,
            else ViT-B-32.
        pretrained: pretrained tag or checkpoint file. Default: ``MMRAG_PRETRAINED``, else the model's tag.
        checkpoint: the same as ``pretrained``, under the name ``OpenCLIPEmbeddings`` and chromadb's
            ``OpenCLIPEmbeddingFunction`` use (give one or the other).
        device: ``auto`` (cuda > mps > cpu), ``cpu``, ``cuda``… Default: ``MMRAG_DEVICE``, else auto.
        batch_size: items per forward pass. Default: ``MMRAG_BATCH_SIZE``, else 32.
        clip: an existing :class:`~mmrag.model.clip.ClipModel` to share (the other arguments are then ignored).

    Settings: like other LangChain integrations (``OpenAIEmbeddings`` reads ``OPENAI_API_KEY``), arguments left
    out come from the environment: this class reads ``MMRAG_*`` through :meth:`mmrag.config.Settings.from_env`
    when no ``clip`` is given. It is the one place below the composition root that does.
    """

    def __init__(
        self,
        model_name: str | None = None,
        pretrained: str | None = None,
        *,
        checkpoint: str | None = None,
        device: str | None = None,
        batch_size: int | None = None,
        clip: ClipModel | None = None,
    ) -> None:
        if checkpoint is not None:
            if pretrained is not None and pretrained != checkpoint:
                msg = f"give pretrained= or checkpoint= (the same thing), not both: {pretrained!r} and {checkpoint!r}"
                raise ConfigError(msg)
            pretrained = checkpoint
        if clip is None:
            settings = Settings.from_env(model=model_name, pretrained=pretrained, device=device, batch_size=batch_size)
            clip = ClipModel.from_settings(settings)
        self.clip = clip

    @property
    def model_name(self) -> str:
        return self.clip.model_name

    @property
    def pretrained(self) -> str | None:
        return self.clip.pretrained

    @property
    def checkpoint(self) -> str | None:
        """The same as :attr:`pretrained` (``OpenCLIPEmbeddings``' name for it)."""
        return self.clip.pretrained

    def __repr__(self) -> str:
        return f"ClipEmbeddings({self.clip!r})"

    def embed_documents(self, texts: list[str]) -> list[Vector]:
        """Embed texts (truncated to the model's context)."""
        return self.clip.encode_texts(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> Vector:
        """Embed one query text (on ONNX Runtime on a CPU once prepared: see ``ClipModel.encode_query_texts``)."""
        return self.clip.encode_query_texts([text])[0].tolist()  # type: ignore[no-any-return]

    def embed_image(self, uris: list[str]) -> list[Vector]:
        """Embed images given by path, in batches. This is the hook ``Chroma.add_images`` uses.

        Raises:
            ImageError: an input cannot be decoded (the error names it). For skip-and-report batch work
                use :meth:`ClipModel.try_encode_images` on :attr:`clip`.
        """
        return self.embed_images(uris)

    def embed_images(self, images: Sequence[ImageSource]) -> list[Vector]:
        """Embed images given as paths, bytes or PIL images."""
        return self.clip.encode_images(images).tolist()  # type: ignore[no-any-return]
