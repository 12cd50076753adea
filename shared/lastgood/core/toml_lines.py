"""Where each key of a TOML document is written: `(path) -> line`, for line-precise messages.

`tomllib` reports the line of a syntax error but not where a (valid) key lives, so semantic
errors found later (pydantic locations such as `("sources", 1, "schedule")`) are mapped back
with this scanner: table headers (`[a.b]`, `[[sources]]`, counted per array), keys (bare,
quoted, dotted) and the values they hold are walked; the inside of a value (an inline table, a
multi-line array or string) is skipped and its inner keys map to the key's own line. Run only
on text `tomllib` already accepted.
"""

from __future__ import annotations

Path = tuple[str | int, ...]


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[Path, int] = {}
        self.arrays: dict[Path, int] = {}  # array-of-tables path -> last index
        self.table: Path = ()

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def advance(self, n: int = 1) -> None:
        chunk = self.text[self.pos : self.pos + n]
        self.line += chunk.count("\n")
        self.pos += n

    def skip_space(self, newlines: bool = False) -> None:
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in " \t\r" or (newlines and char == "\n"):
                self.advance()
            elif char == "#":
                while self.pos < len(self.text) and self.text[self.pos] != "\n":
                    self.advance()
            else:
                return

    def string(self) -> str:
        for quote in ('"""', "'''"):
            if self.peek(3) == quote:
                end = self.text.find(quote, self.pos + 3)
                while end != -1 and quote == '"""' and _escaped(self.text, end):
                    end = self.text.find(quote, end + 1)
                end = len(self.text) if end == -1 else end
                while self.text[end + 3 : end + 4] == quote[0]:  # up to two quotes end the content
                    end += 1
                value = self.text[self.pos + 3 : end]
                self.advance(end + 3 - self.pos)
                return value
        quote = self.peek()
        start = self.pos + 1
        self.advance()
        while self.pos < len(self.text) and self.peek() != quote:
            self.advance(2 if quote == '"' and self.peek() == "\\" else 1)
        value = self.text[start : self.pos]
        self.advance()
        return value.encode("utf-8").decode("unicode_escape") if quote == '"' and "\\" in value else value

    def key(self) -> list[str]:
        parts: list[str] = []
        while True:
            self.skip_space()
            if self.peek() in ('"', "'"):
                parts.append(self.string())
            else:
                start = self.pos
                while self.pos < len(self.text) and (
                    self.text[self.pos].isalnum() or self.text[self.pos] in "_-"
                ):
                    self.advance()
                parts.append(self.text[start : self.pos])
            self.skip_space()
            if self.peek() != ".":
                return parts
            self.advance()

    def value(self) -> None:
        """Skip one value (any type), including nested arrays and inline tables."""
        self.skip_space()
        char = self.peek()
        if char in ('"', "'"):
            self.string()
        elif char in "[{":
            closing = "]" if char == "[" else "}"
            self.advance()
            while self.pos < len(self.text):
                self.skip_space(newlines=True)
                if self.peek() == closing:
                    self.advance()
                    return
                if self.peek() == ",":
                    self.advance()
                    continue
                if char == "{":
                    self.key()
                    self.advance()  # "="
                self.value()
        else:
            while self.pos < len(self.text) and self.text[self.pos] not in ",]}\n#":
                self.advance()

    def resolve(self, parts: list[str], base: Path = ()) -> Path:
        """A dotted header/key -> a path with array indices (`sources` -> `sources, N`)."""
        path: Path = base
        for part in parts:
            path = (*path, part)
            if path in self.arrays:
                path = (*path, self.arrays[path])
        return path

    def record(self, path: Path) -> None:
        for end in range(1, len(path) + 1):
            self.lines.setdefault(path[:end], self.line)

    def run(self) -> dict[Path, int]:
        while True:
            self.skip_space(newlines=True)
            if self.pos >= len(self.text):
                return self.lines
            if self.peek(2) == "[[":
                self.advance(2)
                parts = self.key()
                self.advance(2)
                parent = self.resolve(parts[:-1])
                array = (*parent, parts[-1])
                index = self.arrays.get(array, -1) + 1
                self.arrays[array] = index
                self.table = (*array, index)
                self.lines[self.table] = self.line
                self.lines.setdefault(array, self.line)
            elif self.peek() == "[":
                self.advance()
                parts = self.key()
                self.advance()
                self.table = self.resolve(parts)
                self.record(self.table)
            else:
                parts = self.key()
                if not parts or (not parts[0] and self.peek() != "="):
                    self.advance()  # not a key: never in text tomllib accepted
                    continue
                self.record((*self.table, *parts))
                self.advance()  # "="
                self.value()


def _escaped(text: str, index: int) -> bool:
    backslashes = 0
    while index - backslashes - 1 >= 0 and text[index - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


def key_lines(text: str) -> dict[Path, int]:
    """Every table and key path of a TOML document, with the line (1-based) it is written on."""
    return _Scanner(text).run()


def line_of(lines: dict[Path, int], loc: Path) -> int | None:
    """The line of `loc`, else of its nearest written ancestor (a key inside an inline table)."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None
