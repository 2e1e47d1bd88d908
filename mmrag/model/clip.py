"""The CLIP model: one object owns an open_clip model, its preprocess and its tokenizer.

Construction is cheap and loads nothing; the weights load on first use, once, under a lock. torch and
open_clip are imported inside the methods that need them, so ``import mmrag`` stays fast.

Encoding is batched under ``torch.inference_mode``. Images are decoded and preprocessed on a small
thread pool while the model runs, JPEGs at reduced size (see :mod:`mmrag.files.images`). Every vector that
comes out is float32 and L2-normalised, and encoding items one by one or in a batch gives the same
vectors (to 1e-5).

Text longer than the model's context (77 tokens for ViT-B-32) is truncated to it, keeping the start;
the end-of-text token is always kept. :meth:`ClipModel.token_count` says how long a text is, so
callers that must not lose text chunk it first (the knowledge base does). Texts run only the token
positions they need (:mod:`mmrag.model.text_tower`); query texts run on ONNX Runtime on CPUs once it is
prepared (:mod:`mmrag.model.onnx_text`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from mmrag.config import DEFAULT_BATCH_SIZE, DEFAULT_MAX_MEGAPIXELS, DEFAULT_MODEL, Settings, default_home
from mmrag.errors import ConfigError, ImageError, ModelError, ModelUnavailableError, UnsafeCheckpointError
from mmrag.files.images import ImageSource, PixelBudget, describe, load_image
from mmrag.model.onnx_text import QueryTextRuntime, TextModel
from mmrag.model.query_card import card_key, weight_files
from mmrag.model.tokens import fast_token_counter
from mmrag.model.weights import ModelSource, label_for, resolve, unavailable_message
from mmrag.vectors import Matrix, empty

if TYPE_CHECKING:
    import torch
    from PIL import Image

PRECISIONS = ("auto", "fp32", "bf16")
QUERY_THREADS = 1
"""CPU threads for a query's texts on torch: its OpenMP threads keep spinning after each product, fighting
Chroma and numpy for the cores (one thread measured 2.4× faster end to end on 2 cores; docs/benchmarks.md)."""


@dataclass(frozen=True)
class ImageFailure:
    """An input that could not be encoded: its position in the input, what it was, and why."""

    index: int
    source: str
    error: ImageError


class EncodedImages(NamedTuple):
    """The result of a tolerant batch encode.

    ``vectors[i]`` belongs to input ``indices[i]``; every other input is in ``failures``.
    """

    vectors: Matrix
    indices: list[int]
    failures: list[ImageFailure]


@dataclass(frozen=True)
class _Loaded:
    model: Any
    preprocess: Callable[[Image.Image], torch.Tensor]
    tokenizer: Any
    device: torch.device
    image_size: int
    context_length: int
    dim: int
    text_tower: Any  # mmrag.model.text_tower.TextTower, or None for towers it can't run (e.g. Hugging Face ones)
    logit_scale: float
    files: tuple[Path, ...]  # the weight files (for the query card)


_threads_lock = threading.Lock()
_threads_users = 0
_threads_saved = 0


@contextlib.contextmanager
def cpu_threads(n: int) -> Iterator[None]:
    """Run torch's CPU ops on ``n`` threads inside the block (process-wide; overlapping users share it).

    The first user to enter sets the count and the last to leave restores it, so overlapping callers never
    leave torch stuck at the wrong value.
    """
    import torch

    global _threads_users, _threads_saved
    with _threads_lock:
        if _threads_users == 0:
            _threads_saved = torch.get_num_threads()
            torch.set_num_threads(max(1, n))
        _threads_users += 1
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0:
                torch.set_num_threads(_threads_saved)


def resolve_device(device: str = "auto") -> str:
    """``auto`` picks cuda, then mps, then cpu; anything else is passed to torch as is."""
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


class ClipModel:
    """An open_clip CLIP model with batched, normalised encoders.

    Setup:
        ``pip install mmrag``. Real weights download on first use (or come from the local cache);
        ``model="toy"`` works offline.

    Instantiate:
        .. code-block:: python

            from mmrag.model.clip import ClipModel

            clip = ClipModel("ViT-B-32", "laion2b_s34b_b79k")  # loads nothing yet
            toy = ClipModel("toy")

    Use:
        .. code-block:: python

            texts = toy.encode_texts(["a red circle", "一个红色的圆形"])  # (2, dim) float32
            images = toy.encode_images(["photo.jpg"])
            scores = images @ texts.T

    Args:
        model: open_clip name, ``hf-hub:org/repo``, ``local-dir:/path``, or ``toy``.
        pretrained: open_clip pretrained tag, a local checkpoint file, ``random``, or None for the
            model's default tag (ignored for hub, dir and toy).
        device: ``auto`` (cuda > mps > cpu) or a torch device string.
        batch_size: images or texts per forward pass.
        max_megapixels: decompression-bomb limit for images.
        cache_dir: where downloaded weights are cached (default: the Hugging Face cache).
        decode_workers: threads that decode and preprocess images ahead of the model.
        precision: ``auto`` (bf16 autocast on CUDA, fp32 elsewhere: bf16 is several times slower on
            CPUs without bf16 units), ``fp32``, or ``bf16`` (autocast on any device).
        text_runtime: what encodes query texts on a CPU (:meth:`encode_query_texts`): ``auto`` (torch
            until ONNX Runtime is prepared in the background, then ONNX Runtime), ``onnx`` (prepare it on
            first use and wait; raise if it can't be), or ``torch``.
        runtime_dir: where exported ONNX text towers are cached (default: ``onnx`` in the per-user data
            directory; :func:`mmrag.open_knowledge_base` passes ``MMRAG_HOME/onnx``).
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        pretrained: str | None = None,
        *,
        device: str = "auto",
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
        cache_dir: str | None = None,
        decode_workers: int = 2,
        precision: str = "auto",
        text_runtime: str = "auto",
        runtime_dir: Path | None = None,
    ) -> None:
        if precision not in PRECISIONS:
            msg = f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}"
            raise ConfigError(msg)
        self.precision = precision
        self.text_runtime = text_runtime
        self.runtime_dir = runtime_dir
        self.model_name = model
        self.pretrained = pretrained
        self.requested_device = device
        self.batch_size = batch_size
        self.max_megapixels = max_megapixels
        self.cache_dir = cache_dir
        self.decode_workers = max(1, decode_workers)
        self._loaded: _Loaded | None = None
        self._source: ModelSource | None = None
        self._lock = threading.Lock()
        self._decode_budget = PixelBudget()  # decoding threads share it: memory stays bounded by pixels in flight
        # A cached export's query card serves query texts without torch, where the model would run them on
        # the CPU anyway: never for an explicit GPU device or bf16.
        cards = device in ("auto", "cpu") and precision != "bf16"
        self._query_texts = QueryTextRuntime(
            text_runtime,
            runtime_dir or default_home() / "onnx",
            label=self.label,
            card_key=card_key(model, pretrained, cache_dir) if cards else None,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> ClipModel:
        """The model that ``settings`` name, with its device, precision, batch size and image limit."""
        return cls(
            settings.model_name,
            settings.pretrained,
            device=settings.device,
            precision=settings.precision,
            batch_size=settings.batch_size,
            max_megapixels=settings.max_megapixels,
            text_runtime=settings.text_runtime,
            runtime_dir=settings.home / "onnx",
        )

    def __repr__(self) -> str:
        state = "loaded" if self._loaded else "not loaded"
        return f"ClipModel({self.model_name!r}, {self.pretrained!r}, device={self.requested_device!r}, {state})"

    # --- loading -----------------------------------------------------------------------------

    @property
    def source(self) -> ModelSource:
        """Where the weights come from; resolving it may check the cache and the network."""
        if self._source is None:
            self._source = resolve(self.model_name, self.pretrained, cache_dir=self.cache_dir)
        return self._source

    @property
    def label(self) -> str:
        """A stable name for this model, e.g. ``ViT-B-32/laion2b_s34b_b79k`` or ``toy`` (resolves nothing)."""
        return label_for(self.model_name, self.pretrained)

    @property
    def is_loaded(self) -> bool:
        return self._loaded is not None

    def load(self) -> None:
        """Load the weights now instead of on first use."""
        self._ensure()

    def _ensure(self) -> _Loaded:
        loaded = self._loaded
        if loaded is not None:
            return loaded
        with self._lock:
            if self._loaded is None:
                self._loaded = self._load()
            return self._loaded

    def _load(self) -> _Loaded:
        import open_clip
        import torch

        src = self.source
        device = torch.device(resolve_device(self.requested_device))
        kwargs: dict[str, Any] = {"device": device, "precision": "fp32", "weights_only": True}
        if src.force_preprocess_cfg:
            kwargs["force_preprocess_cfg"] = src.force_preprocess_cfg
        if src.force_quick_gelu:
            kwargs["force_quick_gelu"] = True
        if self.cache_dir:
            kwargs["cache_dir"] = self.cache_dir
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                src.model_name, pretrained=src.pretrained, **kwargs
            )
            tokenizer = open_clip.get_tokenizer(src.model_name, cache_dir=self.cache_dir)
        except Exception as e:
            raise _load_error(src, e) from e
        model.eval()
        image_size = model.visual.image_size
        size = int(image_size[0] if isinstance(image_size, tuple | list) else image_size)
        context = int(getattr(tokenizer, "context_length", None) or model.context_length)
        with torch.inference_mode():
            dim = int(model.encode_text(tokenizer([""]).to(device)).shape[-1])
        from mmrag.model.text_tower import TextTower, supports

        tower = TextTower(model) if supports(model) else None
        scale = float(model.logit_scale.exp().item())
        return _Loaded(model, preprocess, tokenizer, device, size, context, dim, tower, scale, weight_files(src))

    @property
    def dim(self) -> int:
        """Embedding dimension (loads the model, unless a cached export's query card says it)."""
        if self._loaded is None and (card := self._query_texts.card) is not None:
            return card.dim
        return self._ensure().dim

    @property
    def context_length(self) -> int:
        """How many tokens the text tower reads, start and end tokens included (loads the model)."""
        return self._ensure().context_length

    @property
    def image_size(self) -> int:
        """The side of the square the image tower sees (loads the model)."""
        return self._ensure().image_size

    @property
    def device(self) -> str:
        """The torch device the model runs on (loads the model)."""
        return str(self._ensure().device)

    @property
    def logit_scale(self) -> float:
        """The learned temperature: softmax(logit_scale * cosine) gives zero-shot probabilities (loads the
        model, unless a cached export's query card says it)."""
        if self._loaded is None and (card := self._query_texts.card) is not None:
            return card.logit_scale
        return self._ensure().logit_scale

    # --- text ----------------------------------------------------------------------------------

    @property
    def token_counter(self) -> Callable[[str], int]:
        """:meth:`token_count` as a plain function for many calls (the chunker's): the fast exact counter itself
        where the tokenizer has one, which is also a :class:`~mmrag.files.chunking.WordCounter` (it splits text
        into words with running counts, so chunking text with few spaces needs no probe) (loads the model)."""
        fast = fast_token_counter(self._ensure().tokenizer)
        return fast if fast is not None else self.token_count

    def token_count(self, text: str) -> int:
        """Tokens in ``text`` including start and end tokens, before any truncation."""
        tok = self._ensure().tokenizer
        fast = fast_token_counter(tok)  # CLIP's BPE tokenizer, exactly, at MB/s (mmrag.model.tokens)
        if fast is not None:
            return fast(text)
        encode = getattr(tok, "encode", None)
        if callable(encode):
            return len(encode(text)) + 2
        ids = tok.tokenizer(text)["input_ids"]  # an HFTokenizer wraps a transformers tokenizer
        return len(ids)

    def encode_texts(self, texts: Sequence[str], *, threads: int | None = None) -> Matrix:
        """Encode texts to an (n, dim) float32 matrix of unit rows, on torch. Long texts are truncated.

        Args:
            texts: the texts.
            threads: run on this many CPU threads (None: torch's setting).
        """
        if threads is not None and self._ensure().device.type == "cpu":
            with cpu_threads(threads):
                return self.encode_texts(texts)
        loaded = self._ensure()
        _check_texts(texts)
        out = []
        for start in range(0, len(texts), self.batch_size):
            chunk = [str(t) for t in texts[start : start + self.batch_size]]
            tokens = loaded.tokenizer(chunk)
            out.append(self._forward(loaded, "encode_text", tokens))
        return _stack(out, loaded.dim)

    def encode_query_texts(self, texts: Sequence[str]) -> Matrix:
        """Encode a query's few short texts as fast as this machine allows: the same vectors as encode_texts.

        On a CPU they run on ONNX Runtime once it is prepared (see ``text_runtime`` and
        :class:`~mmrag.model.onnx_text.QueryTextRuntime`), and on torch on one thread until then. On a GPU
        this is :meth:`encode_texts`. When the export is cached with its query card
        (:mod:`mmrag.model.query_card`), they run on it without loading the model, or importing torch.

        Raises:
            TextRuntimeError: ``text_runtime="onnx"`` and ONNX Runtime can't be prepared.
        """
        if self._loaded is None:
            _check_texts(texts)
            cached = self._query_texts.encode_cached(texts, self.batch_size)
            if cached is not None:
                return cached
        loaded = self._ensure()
        if loaded.device.type != "cpu":
            return self.encode_texts(texts)
        _check_texts(texts)
        vectors = self._query_texts.encode(self._text_model(loaded), texts, self.batch_size)
        if vectors is None:
            return self.encode_texts(texts, threads=QUERY_THREADS)
        return vectors if len(vectors) else empty(loaded.dim)

    def prepare_text_runtime(self) -> str:
        """Move query texts to ONNX Runtime now: export the text tower (or load its cached export) and wait.

        Call it at a server's start-up, so that no query runs on torch or competes with the export. Returns
        :attr:`text_runtime_status`.

        Raises:
            TextRuntimeError: it can't be prepared: a package is missing, the export fails or disagrees
                with torch, or the model runs on a GPU, in bf16, or has a text tower it can't run.
        """
        self._query_texts.prepare(self._text_model(self._ensure()))
        return self.text_runtime_status

    @property
    def text_runtime_status(self) -> str:
        """What encodes query texts now, e.g. ``onnxruntime (text-….onnx)`` or ``torch (why)``."""
        loaded = self._loaded
        return self._query_texts.status(self._text_model(loaded) if loaded is not None else None)

    def _text_model(self, loaded: _Loaded) -> TextModel:
        return TextModel(
            loaded.device.type,
            self.precision,
            loaded.text_tower,
            loaded.tokenizer,
            loaded.context_length,
            dim=loaded.dim,
            logit_scale=loaded.logit_scale,
            files=loaded.files,
        )

    # --- images --------------------------------------------------------------------------------

    def encode_images(self, images: Sequence[ImageSource]) -> Matrix:
        """Encode images to an (n, dim) float32 matrix of unit rows.

        Raises:
            ImageError: the first input that cannot be decoded, naming it.
        """
        result = self._encode_images(images, tolerant=False)
        return result.vectors

    def try_encode_images(
        self,
        images: Sequence[ImageSource],
        on_progress: Callable[[int], None] | None = None,
        on_image: Callable[[int, Image.Image], None] | None = None,
    ) -> EncodedImages:
        """Encode what can be encoded; bad inputs are skipped and reported, never dropping neighbours.

        Args:
            images: paths, bytes or PIL images.
            on_progress: called with the number of inputs finished after each batch.
            on_image: called (on a decoding thread) with each input's index and decoded RGB image, e.g.
                to make a thumbnail without decoding the file twice.
        """
        return self._encode_images(images, tolerant=True, on_progress=on_progress, on_image=on_image)

    def _encode_images(
        self,
        images: Sequence[ImageSource],
        *,
        tolerant: bool,
        on_progress: Callable[[int], None] | None = None,
        on_image: Callable[[int, Image.Image], None] | None = None,
    ) -> EncodedImages:
        loaded = self._ensure()
        vectors: list[Matrix] = []
        indices: list[int] = []
        failures: list[ImageFailure] = []
        done = 0
        for batch in self._decoded_batches(loaded, images, on_image):
            ready: list[torch.Tensor] = []
            for index, item in batch:
                if isinstance(item, ImageError):
                    if not tolerant:
                        raise item
                    failures.append(ImageFailure(index, describe(images[index]), item))
                else:
                    ready.append(item)
                    indices.append(index)
            if ready:
                import torch

                pixels = torch.stack(ready)
                vectors.append(self._forward(loaded, "encode_image", pixels))
            done += len(batch)
            if on_progress is not None:
                on_progress(done)
        return EncodedImages(_stack(vectors, loaded.dim), indices, failures)

    def _decoded_batches(
        self,
        loaded: _Loaded,
        images: Sequence[ImageSource],
        on_image: Callable[[int, Image.Image], None] | None = None,
    ) -> Iterator[list[tuple[int, torch.Tensor | ImageError]]]:
        """Decode and preprocess on a thread pool, one batch ahead of the model, in input order."""

        def prepare(index: int) -> torch.Tensor | ImageError:
            try:
                image = load_image(
                    images[index],
                    max_megapixels=self.max_megapixels,
                    min_side=loaded.image_size,
                    budget=self._decode_budget,
                )
            except ImageError as e:
                return e
            if on_image is not None:
                on_image(index, image)
            return loaded.preprocess(image)

        size = self.batch_size
        with ThreadPoolExecutor(self.decode_workers, thread_name_prefix="mmrag-decode") as pool:

            def submit(start: int) -> list[Future[torch.Tensor | ImageError]]:
                return [pool.submit(prepare, i) for i in range(start, min(start + size, len(images)))]

            pending = submit(0)
            for start in range(0, len(images), size):
                following = submit(start + size) if start + size < len(images) else []
                yield [(start + i, f.result()) for i, f in enumerate(pending)]
                pending = following

    # --- shared --------------------------------------------------------------------------------

    def _forward(self, loaded: _Loaded, encoder: str, inputs: torch.Tensor) -> Matrix:
        """Run the text or image encoder on ``inputs`` under the chosen precision; unit float32 rows out."""
        import torch

        encode = loaded.model.encode_image
        if encoder == "encode_text":
            encode = loaded.model.encode_text if loaded.text_tower is None else _trimmed(loaded.text_tower)
        bf16 = self.precision == "bf16" or (self.precision == "auto" and loaded.device.type == "cuda")
        with torch.inference_mode():
            inputs = inputs.to(loaded.device)
            with torch.autocast(loaded.device.type, dtype=torch.bfloat16, enabled=bf16):
                features = encode(inputs)
            features = torch.nn.functional.normalize(features.float(), dim=-1)
        return np.ascontiguousarray(features.cpu().numpy(), dtype=np.float32)


def _trimmed(tower: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    from mmrag.model.text_tower import trim

    return lambda tokens: tower(trim(tokens))


def _check_texts(texts: Sequence[str]) -> None:
    if isinstance(texts, str):
        msg = "encode_texts takes a list of strings, not one string"
        raise TypeError(msg)


def _stack(parts: list[Matrix], dim: int) -> Matrix:
    return np.concatenate(parts, axis=0) if parts else empty(dim)


def _load_error(src: ModelSource, e: Exception) -> ModelError:
    text = str(e)
    if "weights_only" in text or "Unsupported global" in text or "WeightsUnpickler" in text:
        msg = (
            f"refusing to load checkpoint for model {src.label}: it is a pickle that needs code execution. "
            "mmrag loads only safetensors or torch.load(weights_only=True) files; convert it to "
            "safetensors on a trusted machine."
        )
        return UnsafeCheckpointError(msg)
    if isinstance(e, FileNotFoundError) or "download" in text.lower() or "connection" in text.lower():
        return ModelUnavailableError(unavailable_message(src.model_name, src.pretrained, f"loading failed ({e})"))
    msg = f"could not load model {src.label}: {e}"
    return ModelError(msg)
