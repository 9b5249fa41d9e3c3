"""Markdown to safe HTML: markdown-it-py renders, Pygments highlights code
blocks, nh3 removes anything a lesson author should not be able to inject."""

from functools import lru_cache
from html.parser import HTMLParser

import nh3
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

ALLOWED_TAGS = {
    "a", "abbr", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4",
    "h5", "h6", "hr", "img", "li", "ol", "p", "pre", "s", "span", "strong",
    "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip

ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "code": {"class"},
    "pre": {"class"},
    "span": {"class"},
    "td": {"style"},
    "th": {"style"},
}


def _highlight_code(code: str, language: str, attributes: str) -> str:
    try:
        lexer = get_lexer_by_name(language) if language else None
    except ClassNotFound:
        lexer = None
    if lexer is None:
        return ""  # markdown-it escapes and wraps the block itself
    formatter = HtmlFormatter(nowrap=True)
    highlighted = highlight(code, lexer, formatter)
    return (
        f'<pre class="highlight"><code class="language-{language}">'
        f"{highlighted}</code></pre>\n"
    )


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    return (
        MarkdownIt("commonmark", {"highlight": _highlight_code})
        .enable("table")
        .enable("strikethrough")
    )


# Deeper than any lesson needs; Markdown's own nesting stops at 20. The
# sanitiser's work grows with the square of the nesting of block elements, so
# a body of a few hundred kilobytes of unclosed <div> would hold the request
# that saves it for minutes.
MAX_HTML_NESTING = 100

# Elements that close themselves: an unclosed one nests nothing.
VOID_OR_SELF_CLOSING = {
    "area", "base", "br", "col", "dd", "dt", "embed", "hr", "img", "input", "li",
    "link", "meta", "option", "p", "param", "source", "td", "th", "tr", "track",
    "wbr",
}  # fmt: skip


class BodyTooDeep(ValueError):
    """A body whose HTML nests deeper than ``MAX_HTML_NESTING``."""


class _NestingCheck(HTMLParser):
    """Refuses HTML nesting deeper than ``MAX_HTML_NESTING`` elements, in
    one pass that stops there: the stack of open elements never holds more,
    so each closing tag costs little however deep the text tries to go."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in VOID_OR_SELF_CLOSING:
            return
        self.open.append(tag)
        if len(self.open) > MAX_HTML_NESTING:
            raise BodyTooDeep(
                f"The body's HTML nests more than {MAX_HTML_NESTING} elements "
                "deep; close the elements it opens."
            )

    def handle_startendtag(self, tag: str, attrs: object) -> None:
        return

    def handle_endtag(self, tag: str) -> None:
        # Closes the innermost open element of that name, and any left open
        # inside it, as browsers do.
        for position in range(len(self.open) - 1, -1, -1):
            if self.open[position] == tag:
                del self.open[position:]
                return


def html_nesting_check(html: str) -> None:
    parser = _NestingCheck()
    parser.feed(html)
    parser.close()


def render_markdown(source: str) -> str:
    """Safe HTML for ``source``; ``BodyTooDeep`` when its HTML nests deeper
    than ``MAX_HTML_NESTING`` elements."""
    html = _parser().render(source)
    html_nesting_check(html)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        filter_style_properties={"text-align"},
        link_rel="noopener noreferrer",
    )
