"""Text summaries to safe HTML: markdown rendered, then sanitised with TensorBoard's allowlist.

Markdown is rendered by markdown-it-py (CommonMark and tables), whose time grows linearly with
the text: Python-Markdown, which TensorBoard uses, takes quadratic time on some inputs (16,000
unmatched ``[`` take half a minute), which would let one text summary hang the server.
"""

from __future__ import annotations

import functools
from typing import Any

import nh3
import numpy as np

# TensorBoard's allowlist (tensorboard/plugin_util.py).
ALLOWED_TAGS = {
    "ul", "ol", "li", "p", "pre", "code", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "br", "strong", "em", "a", "img", "table", "thead", "tbody", "td", "tr", "th",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "title", "alt"}}
# No javascript:, data: or other schemes: links go to the web or nowhere.
URL_SCHEMES = {"http", "https", "mailto"}
DEFAULT_MAX_CHARS = 100_000


@functools.cache
def _markdown() -> Any:
    """The markdown parser, built on first use (serving need not import it at start)."""
    from markdown_it import MarkdownIt

    # Raw HTML passes the parser and is then sanitised, as TensorBoard does.
    return MarkdownIt("commonmark", {"html": True}).enable("table")


def sanitize(html: str) -> str:
    """Keep only allowlisted tags, attributes and URL schemes; escape the rest."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )


def markdown_to_safe_html(text: str) -> str:
    """Render markdown (tables, fenced code) and sanitise the result."""
    return sanitize(_markdown().render(text.replace("\0", "")))


def text_to_html(value: np.ndarray, max_chars: int = DEFAULT_MAX_CHARS) -> tuple[str, bool]:
    """Render a text tensor: a scalar as markdown, 1-D and 2-D arrays as tables.

    Returns the HTML and whether the text was cut at ``max_chars`` characters.
    """
    arr = np.asarray(value, dtype=object)
    truncated = False
    if arr.ndim == 0:
        text = str(arr.item())
        if len(text) > max_chars:
            text, truncated = text[:max_chars], True
        return markdown_to_safe_html(text), truncated
    if arr.ndim > 2:  # TensorBoard shows the first 2-D slice too
        arr = arr.reshape(arr.shape[0], -1)
    rows = arr.reshape(-1, 1) if arr.ndim == 1 else arr
    budget = max_chars
    cells_html: list[str] = []
    for row in rows:
        cells = []
        for cell in row:
            text = str(cell)
            if len(text) > budget:
                text, truncated = text[: max(budget, 0)], True
            budget -= len(text)
            cells.append(f"<td>{markdown_to_safe_html(text)}</td>")
        cells_html.append("<tr>" + "".join(cells) + "</tr>")
        if truncated:
            break
    return "<table><tbody>" + "".join(cells_html) + "</tbody></table>", truncated
