"""Tables for the terminal, drawn line by line in rich's default look (a heavy header box).

rich's ``Table`` measures, wraps and renders every cell through its generic renderable machinery —
about 0.3 ms a cell, so 300 incidents took longer to draw than to load and query. Cells here are
plain text (or :class:`Styled` text): columns get their widest cell, the widest columns give way
when the console is narrower, and a long cell folds (at a space when there is one, else anywhere —
Chinese text has no spaces). :func:`render` is pure (width and colours passed in).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence, Union

from rich.cells import cell_len

PADDING = 1  # spaces each side of a cell, as rich's Table
MIN_WIDTH = 4  # a column narrower than this folds into unreadable slivers


@dataclass(frozen=True)
class Styled:
    """A cell's text and its rich style (``"bold red"``), shown when the console has colours."""

    text: str
    style: str


Cell = Union[str, Styled]
Paint = Callable[[str, str], str]  # (text, style) -> text with the style's escape codes


def _plain(text: str, _style: str) -> str:
    return text


def render(title: str | None, headers: Sequence[str], rows: Sequence[Sequence[Cell]], width: int,
           paint: Paint = _plain) -> list[str]:
    """The table's lines for a console ``width`` cells wide; ``paint`` colours the header, title and styled cells."""
    texts = [[_text(c) for c in row] for row in rows]
    widths = fit([max([_widest(h)] + [_widest(r[i]) for r in texts]) for i, h in enumerate(headers)],
                 [cell_len(h) for h in headers], width - len(headers) * (2 * PADDING + 1) - 1)
    lines = []
    total = sum(widths) + len(widths) * (2 * PADDING + 1) + 1
    if title:
        left = max(0, (total - cell_len(title)) // 2)
        lines.append(paint(" " * left + title + " " * max(0, total - left - cell_len(title)), "italic"))
    lines.append(_rule("┏", "━", "┳", "┓", widths))
    lines.extend(_row([Styled(h, "bold") for h in headers], widths, "┃", paint))
    lines.append(_rule("┡", "━", "╇", "┩", widths))
    for row in rows:
        lines.extend(_row(row, widths, "│", paint))
    lines.append(_rule("└", "─", "┴", "┘", widths))
    return lines


def fit(natural: Sequence[int], floors: Sequence[int], room: int) -> list[int]:
    """Column widths: each column's ``natural`` width, the widest capped until the sum fits ``room``.

    No column goes below ``min(natural, max(floor, MIN_WIDTH))``; when even that does not fit, the
    table is wider than the console (the terminal wraps it) rather than unreadable.
    """
    lows = [min(n, max(f, MIN_WIDTH)) for n, f in zip(natural, floors)]
    if sum(natural) <= room:
        return list(natural)
    if sum(lows) >= room:
        return lows
    lo, hi = 0, max(natural)  # the largest cap whose widths fit
    while lo < hi:
        cap = (lo + hi + 1) // 2
        if sum(max(low, min(n, cap)) for n, low in zip(natural, lows)) <= room:
            lo = cap
        else:
            hi = cap - 1
    widths = [max(low, min(n, lo)) for n, low in zip(natural, lows)]
    spare = room - sum(widths)
    for i in sorted(range(len(widths)), key=lambda i: -natural[i]):  # the remainder to the widest
        if spare <= 0:
            break
        grow = min(spare, natural[i] - widths[i])
        widths[i] += grow
        spare -= grow
    return widths


def fold(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` cells: broken at its newlines, then at spaces, else anywhere."""
    out: list[str] = []
    for para in text.split("\n"):
        line, used = "", 0
        for word in _words(para):
            size = cell_len(word)
            if used + size <= width:
                line, used = line + word, used + size
                continue
            if line.strip():
                out.append(line.rstrip())
            word = word.lstrip(" ") if line.strip() else word
            line, used = "", 0
            for ch in word:  # a word wider than the column folds anywhere
                size = cell_len(ch)
                if used + size > width and line:
                    out.append(line)
                    line, used = "", 0
                line, used = line + ch, used + size
        out.append(line.rstrip())
    return out


def _words(text: str) -> list[str]:
    """Words with their leading spaces (``"a b"`` → ``["a", " b"]``)."""
    words, start = [], 0
    for i in range(1, len(text) + 1):
        if i == len(text) or (text[i] == " " and text[i - 1] != " "):
            words.append(text[start:i])
            start = i
    return words


def _text(cell: Cell) -> str:
    return cell.text if isinstance(cell, Styled) else cell


def _widest(text: str) -> int:
    return max(cell_len(line) for line in text.split("\n"))


def _rule(left: str, fill: str, cross: str, right: str, widths: Sequence[int]) -> str:
    return left + cross.join(fill * (w + 2 * PADDING) for w in widths) + right


def _row(cells: Sequence[Cell], widths: Sequence[int], bar: str, paint: Paint) -> list[str]:
    columns = [fold(_text(c), w) for c, w in zip(cells, widths)]
    lines = []
    for n in range(max(len(col) for col in columns)):
        parts = []
        for cell, col, w in zip(cells, columns, widths):
            text = col[n] if n < len(col) else ""
            padded = text + " " * (w - cell_len(text))
            if isinstance(cell, Styled) and text:
                padded = paint(text, cell.style) + " " * (w - cell_len(text))
            parts.append(" " * PADDING + padded + " " * PADDING)
        lines.append(bar + bar.join(parts) + bar)
    return lines


def console_paint(console) -> Paint:
    """Colours as ``console`` shows them: none when it has no colour system (a pipe, NO_COLOR, a test)."""
    system = console.color_system
    if system is None:
        return _plain
    from rich.color import ColorSystem
    from rich.style import Style

    colours = {"standard": ColorSystem.STANDARD, "256": ColorSystem.EIGHT_BIT, "truecolor": ColorSystem.TRUECOLOR,
               "windows": ColorSystem.WINDOWS}[system]

    @lru_cache(maxsize=None)
    def codes(style: str) -> tuple[str, str]:
        marked = Style.parse(style).render("\0", color_system=colours)
        head, _, tail = marked.partition("\0")
        return head, tail

    def paint(text: str, style: str) -> str:
        head, tail = codes(style)
        return head + text + tail

    return paint


def print_table(console, title: str | None, headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> None:
    """Write the table to ``console``'s file at its width (a cheaper ``console.print(Table(...))``)."""
    lines = render(title, headers, rows, console.width, console_paint(console))
    console.file.write("\n".join(lines) + "\n")
    console.file.flush()
