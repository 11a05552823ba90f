"""The CLI's tables: ids always whole, so one can be copied from a table into the next command.

rich fits a table to the terminal by shrinking columns, and a shrunk id is cut (`00f0bf9…`)
or wrapped, which no one can paste into `lifecycle subscriptions show`. A `Grid` renders
its `ident` columns on one line at their full width, folds (never cuts) every other value,
and when the width cannot hold every column that way, leaves out its `spare` columns, least
needed first, and says so under the table (`--json` always has everything).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions
from rich.table import Table

READABLE = 8  # a folded column narrower than this reads as a column of letters


@dataclass(frozen=True, slots=True)
class Col:
    """One column: `ident` holds ids (never wrapped, folded or cut); a `spare` one may be left
    out on a narrow terminal: spare=1 first, then 2, and so on."""

    header: str
    ident: bool = False
    spare: int = 0


class Grid:
    """Rows of text under `Col`s, fitted to the width it is printed at (see the module docstring)."""

    def __init__(self, *columns: Col, title: str) -> None:
        self.columns = columns
        self.title = title
        self.rows: list[tuple[str, ...]] = []

    def add_row(self, *cells: str) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(cells)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Table]:
        shown = list(range(len(self.columns)))
        for spare in sorted((i for i in shown if self.columns[i].spare), key=lambda i: self.columns[i].spare):
            if self._width(shown) <= options.max_width:
                break
            shown.remove(spare)
        yield self._table(shown, whole=self._width(shown) <= options.max_width)

    def _width(self, shown: list[int]) -> int:
        """The narrowest this table can be with its ids whole and no other column below READABLE."""
        return 1 + sum(self._narrowest(i) + 3 for i in shown)  # 3: a space either side and a border

    def _narrowest(self, index: int) -> int:
        texts = [self.columns[index].header, *(row[index] for row in self.rows)]
        if self.columns[index].ident:
            return max(cell_len(line) for text in texts for line in text.splitlines() or [""])
        longest_word = max((cell_len(word) for text in texts for word in text.split()), default=1)
        return min(longest_word, READABLE)

    def _table(self, shown: list[int], *, whole: bool) -> Table:
        left_out = [self.columns[i].header for i in range(len(self.columns)) if i not in shown]
        caption = f"not shown at this width: {', '.join(left_out)} (--json has them)" if left_out else None
        table = Table(title=self.title, title_justify="left", caption=caption, caption_justify="left")
        for i in shown:
            # An id too wide even for the table left is folded rather than cut: whole, if on two lines.
            table.add_column(self.columns[i].header, no_wrap=self.columns[i].ident and whole, overflow="fold")
        for row in self.rows:
            table.add_row(*(row[i] for i in shown))
        return table
