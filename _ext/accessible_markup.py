"""Accessible markup for the three pieces of third-party HTML that axe-core flags on every page.

A local Sphinx extension (listed in _config.yml under ``sphinx.local_extensions`` and in
``sphinx.config.extensions``). Each fix replaces the one HTML visitor that writes the faulty markup,
so the rest of that package's output is untouched:

- myst-nb 1.4 (``sphinx_.visit_HideCellInput``) labels the ``<summary>`` of a ``hide-input`` cell
  "Toggle hidden content" while it shows "Show code cell source": a screen reader then announces a
  name that a voice-control user cannot say (WCAG 2.5.3, axe ``label-content-name-mismatch``). Here
  the summary has no ``aria-label``, so its name is the text it shows.
- docutils 0.21 (``_html_base.visit_citation``) writes the bibliography as ``<div role="list">`` of
  ``<div role="doc-biblioentry">``; ARIA 1.3 deprecated ``doc-biblioentry``, so the list has no
  ``listitem`` children (axe ``aria-required-children``). Here each entry is a ``listitem``.

The theme's search and colour-mode buttons are fixed by template overrides in ``_templates/``.
"""
from __future__ import annotations

from html import escape

from docutils import nodes
from myst_nb.sphinx_ import HideCodeCellNode


def visit_hide_cell_input(self, node: HideCodeCellNode) -> None:
    """myst-nb's summary of a hidden cell, named by the text it shows (no overriding aria-label)."""
    classes = " ".join(node["classes"])
    self.body.append(f'<details class="admonition hide {classes}">\n<summary>\n')
    self.body.append(f'<p class="collapsed admonition-title">{escape(node["prompt_show"])}</p>\n')
    self.body.append(f'<p class="expanded admonition-title">{escape(node["prompt_hide"])}</p>\n')
    self.body.append("</summary>\n")


def depart_hide_cell_input(self, node: HideCodeCellNode) -> None:
    self.body.append("</details>\n")


def visit_citation(self, node: nodes.citation) -> None:
    """docutils' bibliography entry, as a list item of the ``role="list"`` it opens."""
    if not isinstance(node.previous_sibling(), type(node)):
        self.body.append('<div role="list" class="citation-list">\n')
    self.body.append(self.starttag(node, "div", classes=[node.tagname], role="listitem"))


def depart_citation(self, node: nodes.citation) -> None:
    self.body.append("</div>\n")
    if not isinstance(node.next_node(descend=False, siblings=True), type(node)):
        self.body.append("</div>\n")


def setup(app) -> dict:
    app.setup_extension("myst_nb")  # registers HideCodeCellNode first, so the override below wins
    app.add_node(HideCodeCellNode, override=True, html=(visit_hide_cell_input, depart_hide_cell_input))
    app.add_node(nodes.citation, override=True, html=(visit_citation, depart_citation))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
