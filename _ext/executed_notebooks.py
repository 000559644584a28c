"""Offer each chapter's executed notebook for download from its page.

MyST-NB executes the MyST markdown chapters into ``_build/jupyter_execute`` but does not link the
resulting ``.ipynb`` files. This extension copies each one next to the page sources in the HTML
output and sets the ``ipynb_source`` context value, which sphinx-book-theme turns into a
".ipynb" entry of the page's download menu.
"""

import shutil
from pathlib import Path


def _offer_notebook(app, pagename, templatename, context, doctree):
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if not executed.is_file():
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(executed, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def setup(app):
    # sphinx-book-theme builds its header buttons at priority 501, so this handler runs first.
    app.connect("html-page-context", _offer_notebook, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
