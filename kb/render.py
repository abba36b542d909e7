"""Markdown to safe HTML. Everything user-written goes through `to_html`."""

from __future__ import annotations

import threading

import markdown
import nh3
from markupsafe import Markup

_TAGS = {
    "p", "br", "strong", "em", "b", "i", "u", "ul", "ol", "li", "blockquote", "code", "pre",
    "h2", "h3", "h4", "a", "hr", "mark", "span", "table", "thead", "tbody", "tr", "th", "td",
}
_ATTRIBUTES = {"a": {"href", "title"}, "span": {"class"}, "mark": {"class"}}


def sanitise(html: str) -> str:
    return nh3.clean(
        html, tags=_TAGS, attributes=_ATTRIBUTES, url_schemes={"http", "https", "mailto", "tel"},
        link_rel="noopener noreferrer nofollow",
    )


_local = threading.local()


def to_html(text: str) -> Markup:
    """Render Markdown and strip anything that is not plain formatting."""
    # One converter per thread, reset between texts: setting one up cost more than
    # converting a whole answer.
    converter = getattr(_local, "markdown", None)
    if converter is None:
        converter = _local.markdown = markdown.Markdown(extensions=["sane_lists"],
                                                        output_format="html")
    raw = converter.reset().convert(text or "")
    return Markup(sanitise(raw))
