"""``streamlit run ui/app.py`` from a source checkout: runs the Streamlit page that ships in the package.

The page itself is ``mmrag/ui/page.py`` (``mmrag ui`` starts it in a wheel install too); this launcher only
runs it, afresh on each of Streamlit's reruns.
"""

import runpy
from pathlib import Path

import mmrag.ui

runpy.run_path(str(Path(mmrag.ui.__file__).with_name("page.py")), run_name="__main__")
