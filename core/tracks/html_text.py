"""HTML read as people see it: the text, and how prominent (size, weight) each run of it is.

The lint compares a stated rate with its APR by this prominence (COMPLIANCE.md §5): from the
tags (headings, bold, small) and inline styles (font-size, font-weight), not from a browser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass(frozen=True, order=True)
class Prominence:
    """How a piece of HTML text looks: font size in px and weight (400 normal, 700 bold)."""

    size: float = 16.0
    weight: int = 400

    def at_least(self, other: Prominence) -> bool:
        """No smaller and no lighter than the other."""
        return self.size >= other.size - 0.01 and self.weight >= other.weight


@dataclass
class _Styled:
    """Text with the prominence of each run of characters."""

    text: str
    runs: list[tuple[int, int, Prominence]] = field(default_factory=list)

    def at(self, index: int) -> Prominence:
        """How the character at this index looks."""
        for start, end, prominence in self.runs:
            if start <= index < end:
                return prominence
        return Prominence()


_HEADING_SIZE = {"h1": 32.0, "h2": 24.0, "h3": 18.72, "h4": 16.0, "h5": 13.28, "h6": 10.72}
_SCALE = {"small": 0.833, "sub": 0.83, "sup": 0.83, "big": 1.2}
_BOLD_TAGS = {"b", "strong", "th", *_HEADING_SIZE}
_BLOCK_TAGS = {"p", "div", "br", "tr", "li", "ul", "ol", "table", "hr", "section", "blockquote"}
_BLOCK_TAGS |= set(_HEADING_SIZE)
_VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "wbr"}
_HIDDEN_TAGS = {"head", "style", "script", "title"}
_NAMED_SIZES = {
    "xx-small": 9.0,
    "x-small": 10.0,
    "small": 13.0,
    "medium": 16.0,
    "large": 18.0,
    "x-large": 24.0,
    "xx-large": 32.0,
}
_FONT_SIZE = re.compile(r"font-size\s*:\s*([\d.]+)(px|pt|em|rem|%)|font-size\s*:\s*([a-z-]+)")
_FONT_WEIGHT = re.compile(r"font-weight\s*:\s*(\w+)")


def _styled_by(tag: str, style: str, parent: Prominence) -> Prominence:
    """The prominence inside a tag, from its kind and inline style."""
    size = _HEADING_SIZE.get(tag, parent.size * _SCALE.get(tag, 1.0))
    weight = 700 if tag in _BOLD_TAGS else parent.weight
    style = style.lower()
    if match := _FONT_SIZE.search(style):
        number, unit, named = match.groups()
        if named:
            relative = {"smaller": parent.size * 0.833, "larger": parent.size * 1.2}
            size = relative.get(named, _NAMED_SIZES.get(named, size))
        else:
            factor = {"px": 1.0, "pt": 4 / 3, "rem": 16.0}.get(unit)
            value = float(number)
            size = (
                value * factor if factor else parent.size * (value / 100 if unit == "%" else value)
            )
    if match := _FONT_WEIGHT.search(style):
        word = match.group(1)
        named_weights = {"normal": 400, "bold": 700, "bolder": 700, "lighter": 300}
        weight = int(word) if word.isdigit() else named_weights.get(word, weight)
    return Prominence(size, weight)


class _HtmlReader(HTMLParser):
    """Collects the visible text of an email, its link targets and how prominent each run is."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.styled = _Styled("")
        self.links: list[str] = []
        self._stack: list[tuple[str, Prominence]] = []
        self._hidden = 0

    def _current(self) -> Prominence:
        return self._stack[-1][1] if self._stack else Prominence()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "a" and values.get("href"):
            self.links.append(values["href"])
        if tag in _BLOCK_TAGS:
            self.styled.text += "\n"
        elif tag in ("td", "th"):
            self.styled.text += " "
        if tag in _VOID_TAGS:
            return
        self._hidden += tag in _HIDDEN_TAGS
        self._stack.append((tag, _styled_by(tag, values.get("style", ""), self._current())))

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCK_TAGS:
            self.styled.text += "\n"
        if any(open_tag == tag for open_tag, _ in self._stack):
            while self._stack:
                open_tag, _ = self._stack.pop()
                self._hidden -= open_tag in _HIDDEN_TAGS
                if open_tag == tag:
                    break

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        data = re.sub(r"\s+", " ", data)
        start = len(self.styled.text)
        self.styled.text += data
        self.styled.runs.append((start, start + len(data), self._current()))


def read_html(html: str) -> tuple[_Styled, list[str]]:
    """The visible text of an HTML email with its prominence, and its link targets."""
    reader = _HtmlReader()
    reader.feed(html)
    reader.close()
    return reader.styled, reader.links
