"""Serve MathJax from the built site instead of a CDN, so equations render offline.

The MathJax 3 files come from the pinned ``django-static-mathjax`` wheel (MathJax 3.2.2; the
Python package needs no Django to provide its static files). Only the CommonHTML TeX bundle
and the fonts, input extensions and menu components it loads on demand are copied, about 6 MB.
"""

import importlib.util
import shutil
from pathlib import Path

from sphinx.errors import ExtensionError

BUNDLE = "tex-chtml.js"
ON_DEMAND = ("input", "output/chtml", "ui", "a11y", "adaptors")


def _source():
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise ExtensionError(
            "MathJax files not found: install the pinned requirements (django-static-mathjax) "
            "with 'make install'"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax" / "es5"


def _use_local_path(app, config):
    config.mathjax_path = f"mathjax/{BUNDLE}"


def _copy_files(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    source = _source()
    target = Path(app.outdir) / "_static" / "mathjax"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / BUNDLE, target / BUNDLE)
    for part in ON_DEMAND:
        shutil.copytree(source / part, target / part, dirs_exist_ok=True)


def setup(app):
    _source()  # fail early, with the fix in the message, when the files are missing
    app.connect("config-inited", _use_local_path)
    app.connect("build-finished", _copy_files)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
