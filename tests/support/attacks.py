"""Hostile image arguments: a jail of files and links, and arguments that each name a readable image outside the
allowed folders (shared by the LangChain tool tests and the MCP server tests)."""

from __future__ import annotations

import random
from pathlib import Path

from mmrag.toy.shapes import CLASSES, draw


def make_jail(tmp_path: Path) -> dict[str, Path]:
    """An extra root ``uploads`` with a good image and links out, and a real image outside every root."""
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.png"
    draw(CLASSES[0], random.Random(1), size=64).save(secret)
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    draw(CLASSES[0], random.Random(2), size=64).save(uploads / "ok.png")
    (uploads / "link.png").symlink_to(secret)
    (uploads / "linked-dir").symlink_to(outside, target_is_directory=True)
    (uploads / "inside-link.png").symlink_to(uploads / "ok.png")
    return {"outside": outside, "secret": secret, "uploads": uploads}


def hostile_arguments(jail: dict[str, Path]) -> list[tuple[str, str]]:
    """(argument, what the refusal says): every argument names a readable image outside the roots."""
    secret = str(jail["secret"])
    return [
        ("../outside/secret.png", "contains '..'"),
        (str(jail["uploads"] / ".." / "outside" / "secret.png"), "contains '..'"),
        (secret, "outside the allowed folders"),
        ("/etc/passwd", "outside the allowed folders"),
        ("/etc/shadow", "outside the allowed folders"),
        ("link.png", "symbolic link"),
        (str(jail["uploads"] / "link.png"), "symbolic link"),
        ("linked-dir/secret.png", "symbolic link"),
        ("ok.png\x00/../../outside/secret.png", "NUL byte"),
        (secret + "\x00", "NUL byte"),
        ("file://" + secret, "URL"),
        ("http://example.com/secret.png", "URL"),
        ("data:image/png;base64,iVBORw0KGgo=", "URL"),
        ("~/secret.png", "starts with '~'"),
        (".hidden/secret.png", "hidden"),
    ]


def outside_reads(opened: list[str]) -> list[str]:
    """The opened paths that a hostile argument named."""
    return [p for p in opened if "outside" in p or "secret" in p or p.startswith("/etc")]
