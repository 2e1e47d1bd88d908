"""Train the offline toy CLIP, and the checkpoint format it is saved in.

The toy model is a real :class:`open_clip.CLIP` (a small CLIP-style ModifiedResNet image
tower, like CLIP's RN50 but tiny, and a small text transformer that uses CLIP's own BPE
tokenizer), trained from scratch with a
contrastive loss on the synthetic shapes of :mod:`mmrag.toy.shapes`, captioned in
English and Chinese. It is saved the way open_clip expects a local model directory,
so any user loads it with ``open_clip.create_model_and_transforms("local-dir:<dir>")``.

This module trains and saves; :mod:`mmrag.toy.report` measures a saved checkpoint (the two
share only the format: :data:`CONFIG_NAME`, :data:`WEIGHTS_NAME` and :func:`load_checkpoint`).
Nothing here prints: pass ``log=print`` (or any callable) to follow progress.
``scripts/build_toy.py`` is the command line that regenerates the committed checkpoint and
reports on it.
"""

from __future__ import annotations

import json
import logging
import math
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmrag.toy.shapes import CLASSES, captions_en, captions_zh, draw

if TYPE_CHECKING:
    import torch
    from PIL import Image

Log = Callable[[str], None]

CONFIG_NAME = "open_clip_config.json"
"""The checkpoint's config file: open_clip's ``model_cfg`` and ``preprocess_cfg``, plus ``mmrag_toy``."""
WEIGHTS_NAME = "open_clip_model.safetensors"
"""The checkpoint's weights file (fp16 safetensors)."""
LOCAL_DIR_PREFIX = "local-dir:"

MODEL_CFG: dict[str, Any] = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 16, "head_width": 64},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
"""The open_clip architecture.

A list of ``layers`` makes open_clip build a ModifiedResNet image tower (one bottleneck
per stage, 16 base channels, attention pooling with 8 heads): on a 2-core CPU its
convolutions learn shapes far faster than a ViT of the same cost, which stalled near 55%
shape accuracy in the same training budget. The text tower is a 2-layer transformer; its
context of 32 tokens fits the longest Chinese caption (CLIP's byte-level BPE spends about
three tokens per Chinese character). The BPE vocabulary (49408) fixes the token table,
which holds most of the parameters.
"""

PREPROCESS_CFG: dict[str, Any] = {
    "size": 64,
    "mode": "RGB",
    "mean": [0.5, 0.5, 0.5],
    "std": [0.5, 0.5, 0.5],
    "interpolation": "bicubic",
    "resize_mode": "shortest",
}
"""open_clip's image preprocessing: resize the short side to 64, centre crop, normalise."""

DEFAULT_STEPS = 600
"""About 3.5 minutes on 2 CPU cores; 400 steps already pass the bars (97% zero-shot), 600 reach 99%."""
BATCH_SIZE = 128
POOL_PER_CLASS = 320
TRAIN_DRAW_SIZES = (64, 64, 64, 64, 48, 80, 96, 128, 192)
"""Sizes the training images are drawn at before open_clip's preprocess resizes them to 64."""

LEARNING_RATE = 1e-3
WEIGHT_DECAY = 0.1
WARMUP_STEPS = 100
MAX_LOGIT_SCALE = math.log(100.0)


def toy_config(**training: Any) -> dict[str, Any]:
    """The ``open_clip_config.json`` content; ``training`` is recorded under ``"mmrag_toy"``.

    open_clip reads only ``model_cfg`` and ``preprocess_cfg`` and ignores the rest.
    """
    return {
        "model_cfg": json.loads(json.dumps(MODEL_CFG)),
        "preprocess_cfg": dict(PREPROCESS_CFG),
        "mmrag_toy": {"languages": ["en", "zh"], "classes": [c.label for c in CLASSES], **training},
    }


class _DropNoWeightsWarnings(logging.Filter):
    """Hides open_clip's 'initialised randomly' warnings while we build a model to train."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("no CLIP weights found" in message or "No pretrained weights loaded" in message)


@contextmanager
def _quiet_random_init() -> Iterator[None]:
    root = logging.getLogger()
    quiet = _DropNoWeightsWarnings()
    root.addFilter(quiet)
    try:
        yield
    finally:
        root.removeFilter(quiet)


@contextmanager
def _torch_settings(threads: int | None, deterministic: bool) -> Iterator[None]:
    """Set torch's thread count and determinism for a block, then restore them.

    Deterministic mode would also fill every new tensor with NaN to expose reads of
    uninitialised memory; that costs about a tenth of each step here, so it is turned off.
    """
    import torch
    import torch.utils.deterministic

    old_threads = torch.get_num_threads()
    old_deterministic = torch.are_deterministic_algorithms_enabled()
    flags: Any = torch.utils.deterministic  # a module with a property; untyped in torch
    old_fill = flags.fill_uninitialized_memory
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
        flags.fill_uninitialized_memory = False
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_deterministic)
        flags.fill_uninitialized_memory = old_fill


def load_checkpoint(model_dir: Path) -> tuple[Any, Callable[[Image.Image], torch.Tensor], Any]:
    """Load ``model_dir`` through open_clip's ``local-dir:`` path, as a user would: model, preprocess, tokenizer.

    open_clip builds the model from the directory's :data:`CONFIG_NAME` and loads
    :data:`WEIGHTS_NAME` when it is there (randomly initialised otherwise, with a warning).
    """
    import open_clip

    name = LOCAL_DIR_PREFIX + str(model_dir)
    model, _, preprocess = open_clip.create_model_and_transforms(name)
    tokenizer = open_clip.get_tokenizer(name)
    return model, preprocess, tokenizer


def _lr_factor(step: int, steps: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to zero."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def _param_groups(model: torch.nn.Module) -> list[dict[str, Any]]:
    """Weight decay on matrices only: not on gains, biases, embeddings or the logit scale."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "embedding" in name else decay).append(p)
    return [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}]


def _multi_positive_clip_loss(
    image: torch.Tensor, text: torch.Tensor, labels: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """CLIP's symmetric cross-entropy, where pairs of the same class are all positives.

    With 24 classes a batch holds several images (and captions) of each class, so the
    standard one-hot target would push apart matching pairs. The target of each row
    is instead uniform over the items of the same class; when all labels in a batch are
    distinct this is exactly open_clip's ``ClipLoss``.
    """
    import torch.nn.functional as F

    logits = logit_scale.exp() * image @ text.T
    same = (labels[:, None] == labels[None, :]).float()
    target = same / same.sum(dim=1, keepdim=True)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def _training_pool(
    preprocess: Callable[[Image.Image], torch.Tensor], seed: int, per_class: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pre-draw ``per_class`` images of every class, passed through open_clip's preprocess."""
    import torch

    rng = random.Random(f"mmrag-toy-train:{seed}")  # a str seed never collides with the report's int seeds
    images: list[torch.Tensor] = []
    labels: list[int] = []
    for _ in range(per_class):
        for index, cls in enumerate(CLASSES):
            images.append(preprocess(draw(cls, rng, rng.choice(TRAIN_DRAW_SIZES))))
            labels.append(index)
    return torch.stack(images), torch.tensor(labels)


def _caption_tables(tokenizer: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tokens of every training caption, and per class the caption rows in each language."""
    import torch

    texts: list[str] = []
    en_rows: list[list[int]] = []
    zh_rows: list[list[int]] = []
    for cls in CLASSES:
        en, zh = captions_en(cls), captions_zh(cls)
        en_rows.append(list(range(len(texts), len(texts) + len(en))))
        texts.extend(en)
        zh_rows.append(list(range(len(texts), len(texts) + len(zh))))
        texts.extend(zh)
    tokens: torch.Tensor = tokenizer(texts)
    return tokens, torch.tensor(en_rows), torch.tensor(zh_rows)


def _save(model: torch.nn.Module, out_dir: Path, config: dict[str, Any]) -> None:
    """Write the weights (floats as fp16 safetensors) and the config, each atomically.

    open_clip loads fp16 weights into its fp32 model (strict key matching); halving the
    file costs nothing measurable in accuracy.
    """
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    state = {
        k: (v.half() if v.is_floating_point() else v).detach().to("cpu").contiguous()
        for k, v in model.state_dict().items()
    }
    weights_tmp = out_dir / (WEIGHTS_NAME + ".tmp")
    save_file(state, str(weights_tmp), metadata={"format": "pt"})
    weights_tmp.chmod(0o644)
    weights_tmp.replace(out_dir / WEIGHTS_NAME)
    config_tmp = out_dir / (CONFIG_NAME + ".tmp")
    config_tmp.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    config_tmp.replace(out_dir / CONFIG_NAME)


def train_toy(
    out_dir: Path,
    *,
    seed: int = 0,
    steps: int = DEFAULT_STEPS,
    batch_size: int = BATCH_SIZE,
    pool_per_class: int = POOL_PER_CLASS,
    threads: int | None = 2,
    log: Log | None = None,
) -> float:
    """Train the toy CLIP from scratch and save it to ``out_dir``.

    The model is built by open_clip from :data:`MODEL_CFG` (through a temporary
    ``local-dir:``), trained with AdamW, warm-up plus cosine learning rate and a
    contrastive loss on a pool of drawings, each paired with a caption drawn at random
    from the English or Chinese templates of its class. Everything is seeded, so the same
    ``seed`` and ``steps`` give the same weights on the same machine and torch version.

    Args:
        out_dir: Directory that receives ``open_clip_config.json`` and
            ``open_clip_model.safetensors`` (created if needed; files are replaced).
        seed: Seed of the drawings, the initial weights and the batches.
        steps: Optimisation steps.
        batch_size: Image-caption pairs per step.
        pool_per_class: Training drawings per class.
        threads: torch CPU threads during training (restored afterwards); None leaves it.
        log: Receives progress lines.

    Returns:
        The training wall time in seconds (also recorded in the config). Measure the
        checkpoint with :func:`mmrag.toy.report.evaluate`.
    """
    import torch

    say: Log = log or (lambda _line: None)
    start = time.perf_counter()
    with _torch_settings(threads, deterministic=True):
        torch.manual_seed(seed)
        with tempfile.TemporaryDirectory(prefix="mmrag-toy-") as tmp:
            (Path(tmp) / CONFIG_NAME).write_text(json.dumps(toy_config()), encoding="utf-8")
            with _quiet_random_init():
                model, preprocess, tokenizer = load_checkpoint(Path(tmp))
        model.visual.to(memory_format=torch.channels_last)  # about 20% faster convolutions on CPU
        n_params = sum(p.numel() for p in model.parameters())
        say(f"built open_clip.CLIP with {n_params:,} parameters")

        images, labels = _training_pool(preprocess, seed, pool_per_class)
        tokens, en_rows, zh_rows = _caption_tables(tokenizer)
        say(f"drew {len(images)} training images in {time.perf_counter() - start:.0f} s")

        optimizer = torch.optim.AdamW(_param_groups(model), lr=LEARNING_RATE, betas=(0.9, 0.98), eps=1e-6)
        warmup = min(WARMUP_STEPS, max(1, steps // 10))
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, steps, warmup))
        generator = torch.Generator().manual_seed(seed)
        model.train()
        every = max(1, steps // 20)
        running = 0.0
        for step in range(steps):
            pick = torch.randint(len(images), (batch_size,), generator=generator)
            y = labels[pick]
            en = en_rows[y, torch.randint(en_rows.shape[1], (batch_size,), generator=generator)]
            zh = zh_rows[y, torch.randint(zh_rows.shape[1], (batch_size,), generator=generator)]
            english = torch.rand(batch_size, generator=generator) < 0.5
            text = tokens[torch.where(english, en, zh)]

            batch = images[pick].contiguous(memory_format=torch.channels_last)
            image_features = model.encode_image(batch, normalize=True)
            text_features = model.encode_text(text, normalize=True)
            loss = _multi_positive_clip_loss(image_features, text_features, y, model.logit_scale)
            optimizer.zero_grad(set_to_none=True)
            torch.autograd.backward(loss)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
            running += float(loss.detach())
            if (step + 1) % every == 0 or step + 1 == steps:
                say(
                    f"step {step + 1}/{steps}  loss {running / every:.3f}  "
                    f"scale {float(model.logit_scale.detach().exp()):.1f}  "
                    f"{time.perf_counter() - start:.0f} s"
                )
                running = 0.0
        train_seconds = time.perf_counter() - start
        model.eval()
        config = toy_config(seed=seed, steps=steps, batch_size=batch_size, train_seconds=round(train_seconds, 1))
        _save(model, out_dir, config)
    say(f"saved {out_dir / WEIGHTS_NAME}")
    return train_seconds
