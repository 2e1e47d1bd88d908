"""Benchmark: one-shot ``mmrag search "a red circle"`` wall time and peak memory, as a user runs it.

Each run is a fresh ``python -m mmrag`` process under ``/usr/bin/time -v`` (wall clock and maximum resident
set size); the figures are medians of ``--runs`` runs (default 5), printed beside the issue's baseline
(4.0 s, 977 MB: torch, open_clip and torchvision imported and the model loaded for one query text).

Two models, each with its ONNX text tower already exported (the cached export and its query card; see
mmrag/model/query_card.py), so the query text runs without torch:

- ``toy``: the demo knowledge base (``mmrag demo``, which also exports the toy's text tower);
- ``vit-b-32``: ViT-B-32 with seeded *random* weights saved as a ``local-dir:`` folder (real weights can't
  be downloaded here; the text tower's size and cost are the same), a knowledge base of 8 demo images, and
  ``mmrag info --prepare`` to export its text tower.

Also timed: ``mmrag search --image missing.png`` (an argument error, reported before anything loads).
``--compare DIR`` runs the same commands with another checkout first on ``PYTHONPATH`` (e.g. the commit
before this change), the two taking turns run by run, for a ratio measured under the same load.

    python bench/cli_speed.py                         # toy and ViT-B-32, 5 runs each
    python bench/cli_speed.py --models toy --runs 9
    python bench/cli_speed.py --compare /path/to/old/checkout

Everything is written under bench/out/cli_speed/ (ignored by git); the ViT-B-32 folder (600 MB) is made once.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out" / "cli_speed"
BASELINE_S = 4.0
BASELINE_MB = 977.0
TARGETS = {"toy": (1.0, 400.0), "vit-b-32": (1.5, 600.0)}
REPO = Path(__file__).resolve().parent.parent


def environ(home: Path, pythonpath: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMRAG_")}
    env["PYTHONPATH"] = str(pythonpath)
    env["MMRAG_HOME"] = str(home)
    env["MMRAG_DEVICE"] = "cpu"  # what a CPU-only machine does; on a GPU box auto would pick CUDA
    return env


def mmrag(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mmrag", *args], env=env, capture_output=True, text=True, cwd=env["PYTHONPATH"]
    )
    if done.returncode != 0:
        msg = f"mmrag {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        raise RuntimeError(msg)


def timed(args: list[str], env: dict[str, str], *, expect: int = 0) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one ``python -m mmrag ARGS`` under /usr/bin/time -v."""
    done = subprocess.run(  # in the checkout's folder: `python -m` puts the current folder first on sys.path
        ["/usr/bin/time", "-v", sys.executable, "-m", "mmrag", *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=env["PYTHONPATH"],
    )
    if done.returncode != expect:
        msg = f"mmrag {' '.join(args)}: exit {done.returncode}, expected {expect}:\n{done.stderr[-2000:]}"
        raise RuntimeError(msg)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    if wall is None or rss is None:
        msg = f"could not read /usr/bin/time's report:\n{done.stderr[-2000:]}"
        raise RuntimeError(msg)
    seconds = int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))
    return seconds, int(rss.group(1)) / 1024


def write_vit_b_32(folder: Path) -> Path:
    """ViT-B-32's architecture with seeded random weights, as a local-dir: model (made once)."""
    if (folder / "open_clip_model.safetensors").is_file():
        return folder
    import open_clip
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config = {"model_cfg": open_clip.get_model_config("ViT-B-32"), "preprocess_cfg": {}}
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    torch.manual_seed(0)
    model = open_clip.create_model(f"local-dir:{folder}", load_weights=False)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "open_clip_model.safetensors")
    return folder


def prepare(models: list[str]) -> dict[str, tuple[Path, list[str]]]:
    """Per model: its MMRAG_HOME and the search arguments, with knowledge base and export ready."""
    home = OUT / "home"
    env = environ(home, REPO)
    ready: dict[str, tuple[Path, list[str]]] = {}
    if not (home / "demo" / "kb").is_dir():
        mmrag(["demo"], env)  # also exports the toy's text tower
    mmrag(["--model", "toy", "info", "--prepare"], env)  # a no-op when the export is cached
    ready["toy"] = (home, ["search", "a red circle", "--db", str(home / "demo" / "kb")])
    if "vit-b-32" in models:
        folder = write_vit_b_32(OUT / "vit-b-32-random")
        model = f"local-dir:{folder}"
        kb = home / "vit-kb"
        if not kb.is_dir():
            images = OUT / "vit-images"
            images.mkdir(parents=True, exist_ok=True)
            for path in sorted((home / "demo" / "files" / "images").glob("*.png"))[:8]:
                shutil.copy(path, images / path.name)
            mmrag(["index", str(images), "--db", str(kb), "--model", model], env)
        mmrag(["info", "--prepare", "--model", model], env)
        ready["vit-b-32"] = (home, ["search", "a red circle", "--db", str(kb)])
    return ready


def medians(
    args: list[str], envs: dict[str, dict[str, str]], runs: int, *, expect: int = 0
) -> dict[str, tuple[float, float]]:
    """Per checkout: median (wall, RSS) of ``runs`` runs, the checkouts taking turns (so a load spike on the
    shared machine hits both alike), after one warm-up run each (the page cache, as for a user's second search)."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in envs}
    for env in envs.values():
        timed(args, env, expect=expect)
    for _ in range(runs):
        for name, env in envs.items():
            samples[name].append(timed(args, env, expect=expect))
    return {
        name: (statistics.median(s[0] for s in got), statistics.median(s[1] for s in got))
        for name, got in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["toy", "vit-b-32"], choices=sorted(TARGETS))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--compare", type=Path, help="another checkout to time the same commands with")
    args = parser.parse_args()
    ready = prepare(args.models)
    checkouts = [("this checkout", REPO)] + ([("compared", args.compare.resolve())] if args.compare else [])
    print(f"medians of {args.runs} runs; baseline (the issue): {BASELINE_S:.1f} s, {BASELINE_MB:.0f} MB")
    results: dict[tuple[str, str], tuple[float, float]] = {}
    for model in args.models:
        home, search = ready[model]
        got = medians(search, {name: environ(home, path) for name, path in checkouts}, args.runs)
        results.update({(model, name): figures for name, figures in got.items()})
    with tempfile.TemporaryDirectory() as tmp:
        missing = ["search", "--image", str(Path(tmp) / "missing.png"), "--db", str(ready["toy"][1][-1])]
        envs = {name: environ(ready["toy"][0], path) for name, path in checkouts}
        got = medians(missing, envs, args.runs, expect=1)
        results.update({("missing image", name): figures for name, figures in got.items()})
    for (what, name), (wall, rss) in results.items():
        target = TARGETS.get(what)
        goal = f"  (target ≤ {target[0]:.1f} s, ≤ {target[1]:.0f} MB)" if target else ""
        ratio = f"{wall / BASELINE_S:.2f}× the baseline's time, {rss / BASELINE_MB:.2f}× its memory"
        print(f"{what:13} {name:13} {wall:6.2f} s {rss:7.0f} MB   {ratio}{goal}")
    if args.compare:
        for model in [*args.models, "missing image"]:
            new, old = results[(model, "this checkout")], results[(model, "compared")]
            print(f"{model:13} this / compared: {new[0] / old[0]:.2f}× time, {new[1] / old[1]:.2f}× memory")


if __name__ == "__main__":
    main()
