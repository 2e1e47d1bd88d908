"""Resolve a model choice to something open_clip can load, without hanging when offline.

A model is chosen the open_clip way:

* an open_clip name plus a pretrained tag: ``ViT-B-32`` / ``laion2b_s34b_b79k``;
* an open_clip name alone, which takes its default tag (ViT-B-32 and the multilingual model have one);
* an open_clip name plus ``random``: randomly initialised weights, for plumbing and speed tests;
* an open_clip name plus a local checkpoint file: ``ViT-B-32`` / ``/models/clip.safetensors``;
* ``hf-hub:org/repo`` (config and weights from the Hugging Face Hub);
* ``local-dir:/path`` (a folder holding ``open_clip_config.json`` and the weights);
* ``toy``: mmrag's own offline model, shipped as a ``local-dir:`` folder.

open_clip on its own retries a blocked network for most of a minute before it fails. mmrag first looks
in the local caches; when the weights are not there it checks in a couple of seconds whether the hub
answers at all, and raises :class:`~mmrag.errors.ModelUnavailableError` with instructions if not.
"""

from __future__ import annotations

import difflib
import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mmrag.config import DEFAULT_TAGS
from mmrag.errors import ModelUnavailableError, UnknownModelError
from mmrag.toy import TOY_MODEL_NAME, checkpoint_dir, toy_model_id

HF_PREFIX = "hf-hub:"
LOCAL_DIR_PREFIX = "local-dir:"
RANDOM = "random"
"""The pretrained value that asks for randomly initialised weights (for plumbing and speed tests)."""
PROBE_TIMEOUT_S = 3.0
WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
_PREPROCESS_KEYS = ("mean", "std", "interpolation", "resize_mode", "fill_color")


@dataclass(frozen=True)
class ModelSource:
    """Arguments for ``open_clip.create_model_and_transforms`` and ``get_tokenizer``.

    Attributes:
        model_name: what open_clip gets as ``model_name`` (a built-in name or a schema'd id).
        pretrained: a tag, a local file path, or None.
        label: how mmrag names this model in messages and in a knowledge base's records.
        force_preprocess_cfg: preprocessing that belongs to a tag whose file we pass directly.
        force_quick_gelu: the tag was trained with QuickGELU.
    """

    model_name: str
    pretrained: str | None
    label: str
    force_preprocess_cfg: dict[str, Any] = field(default_factory=dict)
    force_quick_gelu: bool = False


def label_for(model: str, pretrained: str | None) -> str:
    """How mmrag names a model choice (in messages and knowledge-base records), without loading or resolving it."""
    if model == TOY_MODEL_NAME or model.startswith((LOCAL_DIR_PREFIX, HF_PREFIX)):
        return model
    name = model.replace("/", "-")
    tag = pretrained or DEFAULT_TAGS.get(name, "")
    if tag and tag != RANDOM and Path(tag).expanduser().is_file():
        tag = str(Path(tag).expanduser().resolve())
    return f"{name}/{tag}" if tag else name


def resolve(model: str, pretrained: str | None, *, cache_dir: str | None = None) -> ModelSource:
    """Turn a user's model choice into a :class:`ModelSource` whose weights are on disk or reachable.

    Raises:
        UnknownModelError: the name or tag is not known to open_clip.
        ModelUnavailableError: the weights are not cached and cannot be downloaded now.
    """
    if model == TOY_MODEL_NAME:
        if not (checkpoint_dir() / "open_clip_config.json").is_file():
            msg = (
                f"the toy model's checkpoint is missing from {checkpoint_dir()}; reinstall mmrag, or rebuild it "
                "with: python scripts/build_toy.py"
            )
            raise ModelUnavailableError(msg)
        return ModelSource(toy_model_id(), None, label=TOY_MODEL_NAME)
    if model.startswith(LOCAL_DIR_PREFIX):
        return _local_dir(model)
    if model.startswith(HF_PREFIX):
        return _hf_hub(model, cache_dir)
    if Path(model).suffix in {".safetensors", ".pt", ".pth", ".bin"}:
        msg = (
            f"{model!r} looks like a checkpoint file, but a file alone does not say which architecture it "
            f"holds: pass the open_clip name as the model and the file as the pretrained value, e.g. "
            f"--model ViT-B-32 --pretrained {model}"
        )
        raise UnknownModelError(msg)
    return _builtin(model, pretrained, cache_dir)


def _local_dir(model: str) -> ModelSource:
    folder = Path(model[len(LOCAL_DIR_PREFIX) :]).expanduser()
    if not (folder / "open_clip_config.json").is_file():
        msg = (
            f"model {model!r}: {folder} has no open_clip_config.json; a local-dir: model is a folder "
            "with open_clip_config.json and open_clip_model.safetensors"
        )
        raise ModelUnavailableError(msg)
    return ModelSource(f"{LOCAL_DIR_PREFIX}{folder.resolve()}", None, label=label_for(model, None))


def _hf_hub(model: str, cache_dir: str | None) -> ModelSource:
    repo = model[len(HF_PREFIX) :]
    config = _cached_hf_file(repo, "open_clip_config.json", cache_dir)
    weights = next((w for f in WEIGHT_FILES if (w := _cached_hf_file(repo, f, cache_dir))), None)
    if config and weights and Path(config).parent == Path(weights).parent:
        # Everything is cached: load it as a local folder so that nothing touches the network.
        return ModelSource(f"{LOCAL_DIR_PREFIX}{Path(config).parent}", None, label=model)
    _require_hub(model, None)
    return ModelSource(model, None, label=model)


def _builtin(model: str, pretrained: str | None, cache_dir: str | None) -> ModelSource:
    import open_clip

    name = model.replace("/", "-")
    if name not in open_clip.list_models():
        close = difflib.get_close_matches(name, open_clip.list_models(), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        msg = f"unknown model {model!r}: not an open_clip architecture, hf-hub:, local-dir: or 'toy'.{hint}"
        raise UnknownModelError(msg)
    pretrained = pretrained or DEFAULT_TAGS.get(name)
    if not pretrained:
        msg = (
            f"model {name!r} needs a pretrained tag or checkpoint file (flag --pretrained, env "
            f"MMRAG_PRETRAINED). {_known_tags(name)} '{RANDOM}' gives random weights."
        )
        raise UnknownModelError(msg)
    if pretrained == RANDOM:
        return ModelSource(name, None, label=label_for(name, RANDOM))
    if Path(pretrained).expanduser().is_file():
        path = str(Path(pretrained).expanduser().resolve())
        return ModelSource(name, path, label=label_for(name, path))
    cfg: dict[str, Any] = open_clip.get_pretrained_cfg(name, pretrained)
    if not cfg:
        msg = f"model {name!r} has no pretrained tag {pretrained!r} and no such file exists. {_known_tags(name)}"
        raise UnknownModelError(msg)
    label = label_for(name, pretrained)
    cached = _cached_tag_file(cfg, cache_dir)
    if cached:
        return ModelSource(
            name,
            cached,
            label=label,
            force_preprocess_cfg={k: cfg[k] for k in _PREPROCESS_KEYS if k in cfg},
            force_quick_gelu=bool(cfg.get("quick_gelu", False)),
        )
    _require_hub(name, pretrained, url=cfg.get("url") if not cfg.get("hf_hub") else None)
    return ModelSource(name, pretrained, label=label)


def _known_tags(name: str) -> str:
    import open_clip

    tags = open_clip.list_pretrained_tags_by_model(name)
    return f"Known tags: {', '.join(tags) or 'none'}."


def _cached_tag_file(cfg: dict[str, Any], cache_dir: str | None) -> str | None:
    if cfg.get("file"):
        return str(cfg["file"])
    hub = str(cfg.get("hf_hub", ""))
    if hub:
        repo, filename = os.path.split(hub)
        names = [filename, filename.rsplit(".", 1)[0] + ".safetensors"] if filename else list(WEIGHT_FILES)
        return next((p for n in names if (p := _cached_hf_file(repo, n, cache_dir))), None)
    url = str(cfg.get("url", ""))
    if url:
        target = Path(cache_dir or Path.home() / ".cache" / "clip") / Path(urlparse(url).path).name
        return str(target) if target.is_file() else None
    return None


def _cached_hf_file(repo: str, filename: str, cache_dir: str | None) -> str | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, filename, cache_dir=cache_dir)
    return found if isinstance(found, str) else None


def _require_hub(model: str, pretrained: str | None, *, url: str | None = None) -> None:
    """Raise quickly unless the download host answers."""
    if url:
        host = urlparse(url).hostname or ""
    else:
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
        host = urlparse(endpoint).hostname or "huggingface.co"
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
    if not offline and host_reachable(host):
        return
    reason = "HF_HUB_OFFLINE is set" if offline else f"{host} cannot be reached"
    raise ModelUnavailableError(unavailable_message(model, pretrained, reason))


def unavailable_message(model: str, pretrained: str | None, reason: str) -> str:
    """The message for weights that are neither cached nor downloadable: what to do instead."""
    what = f"{model} (pretrained {pretrained!r})" if pretrained else model
    fetch = f"open_clip.create_model_and_transforms({model!r}" + (
        f", pretrained={pretrained!r})" if pretrained else ")"
    )
    return (
        f"weights for model {what} are not in the local cache and {reason}. Either:\n"
        f'  1. on a connected machine run: python -c "import open_clip; {fetch}" and copy the Hugging Face '
        "cache (~/.cache/huggingface, or $HF_HOME) to this machine;\n"
        "  2. point to weights on disk: --pretrained /path/to/open_clip_model.safetensors "
        "or --model local-dir:/path/to/folder;\n"
        "  3. or use mmrag's offline toy model: --model toy (MMRAG_MODEL=toy)."
    )


def host_reachable(host: str, port: int = 443, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds (DNS included)."""
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(result and result[0])
