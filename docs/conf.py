"""Sphinx configuration for fxplain's documentation.

Build (what tests/test_docs.py runs, warnings are errors)::

    .venv/bin/python -m sphinx -W --keep-going -b html docs docs/_build/html

Choices:

* The API reference is built from the docstrings by ``sphinx.ext.autodoc``.
  The docstrings are numpydoc-style ("Parameters", "Returns", "Raises" ...
  sections); they are parsed by ``sphinx.ext.napoleon`` (numpy style only),
  not by the ``numpydoc`` extension: napoleon ships with Sphinx (no extra
  dependency), and it renders sections it does not know as plain text instead
  of failing, so a docstring that is not strict numpydoc still builds under
  ``-W``. numpydoc would add a dependency and its own validation warnings.
* The user-guide pages in docs/*.md stay Markdown (readable on GitHub as they
  are) and are parsed by ``myst_parser``; the API pages in docs/api/*.md are
  MyST too, with autodoc directives.
* No ``sphinx.ext.intersphinx``: CI has no network.
* ``autodoc_typehints = "description"`` (target "documented"): annotations
  are shown in the parameter list, not in the (often long) signature, and
  only for parameters and return values the docstring documents; this gives
  no warnings ("none" would too, but drops the types of parameters whose
  docstring gives no type).
* ``nitpicky`` is off: type names in annotations and docstrings (numpy's
  ``ndarray``, ``os.PathLike`` ...) have no target without intersphinx.
* No warning class is suppressed (no ``suppress_warnings``).
"""

from __future__ import annotations

import importlib.metadata
import os
import sys

# The package is installed editable in .venv; the source tree on the path
# makes a build from a plain checkout (with the C core built in place) work too.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

project = "fxplain"
author = "the fxplain authors"
copyright = "the fxplain authors"  # noqa: A001 (Sphinx's name)
try:
    release = importlib.metadata.version("fxplain")
except importlib.metadata.PackageNotFoundError:  # a checkout that is not installed
    import fxplain

    release = fxplain.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "myst_parser",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# -- autodoc / napoleon ------------------------------------------------------
autodoc_typehints = "description"
# Types only for parameters and return values the docstring documents; a
# numpydoc type ("model : str or path") wins over the annotation.
autodoc_typehints_description_target = "documented"
autodoc_member_order = "bysource"

napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_include_init_with_doc = False
# "Returns" types become :rtype:, so autodoc does not add the annotation again.
napoleon_use_rtype = True

# -- MyST --------------------------------------------------------------------
# "#section" links to headings within and across the Markdown pages.
myst_heading_anchors = 3

# -- HTML --------------------------------------------------------------------
html_theme = "alabaster"
html_title = f"fxplain {release}"
html_static_path: list[str] = []
