"""Coverage-guided fuzzing of mmrag's decoders with atheris (run by test_fuzz.py when atheris is installed).

    python tests/reliability/atheris_fuzz.py SEEDS_DIR -max_total_time=10 -artifact_prefix=DIR/

The first byte of an input picks the decoder (0: ``load_image`` on the bytes and ``image_format`` on them as a
file; 1: ``read_text`` of a ``.md`` file; 2: ``read_text`` of a ``.pdf`` file); the rest is its content. One
process fuzzes all three, so the instrumentation (seconds, mostly pypdf's) is paid once.

Only :class:`mmrag.errors.MmragError` may escape a decoder; anything else is a crash (libFuzzer writes the input
to ``DIR/crash-…`` and the process exits non-zero).
"""

from __future__ import annotations

import logging
import sys
import tempfile
import warnings
from pathlib import Path

import atheris

with atheris.instrument_imports():  # the decoders and the Pillow plugins mmrag allows (they load lazily otherwise)
    import PIL.BmpImagePlugin
    import PIL.GifImagePlugin
    import PIL.Image
    import PIL.ImageFile
    import PIL.JpegImagePlugin
    import PIL.PngImagePlugin
    import PIL.TiffImagePlugin
    import PIL.WebPImagePlugin  # noqa: F401
    import pypdf  # noqa: F401

    from mmrag.errors import MmragError
    from mmrag.files.documents import read_text
    from mmrag.files.images import image_format, load_image

logging.disable(logging.CRITICAL)
warnings.simplefilter("ignore")
SCRATCH = Path(tempfile.mkdtemp(prefix="mmrag-atheris-"))


def one_input(raw: bytes) -> None:
    if not raw:
        return
    target, data = raw[0] % 3, raw[1:]
    try:
        if target == 0:
            load_image(data, max_megapixels=1)
            path = SCRATCH / "input.img"
            path.write_bytes(data)
            image_format(path)
        else:
            path = SCRATCH / ("input.md" if target == 1 else "input.pdf")
            path.write_bytes(data)
            read_text(path)
    except MmragError:
        pass


atheris.Setup(sys.argv, one_input)
atheris.Fuzz()
