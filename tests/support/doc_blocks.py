"""The fenced code blocks of the project's Markdown, so that tests run the examples exactly as
a reader copies them."""

import re
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class CodeBlock:
    path: Path
    line: int  # the line of the opening fence, 1-based
    language: str
    text: str

    def where(self) -> str:
        return f"{self.path.name}:{self.line}"


def code_blocks(path: Path, *languages: str) -> list[CodeBlock]:
    """The file's fenced blocks in order; only those in `languages` when given."""
    text = path.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        if languages and match[1] not in languages:
            continue
        line = text.count("\n", 0, match.start()) + 1
        blocks.append(CodeBlock(path, line, match[1], match[2]))
    return blocks


def block_after(path: Path, marker: str, language: str) -> CodeBlock:
    """The first `language` block after the text `marker`."""
    offset = path.read_text().index(marker)
    line = path.read_text().count("\n", 0, offset) + 1
    return next(block for block in code_blocks(path, language) if block.line > line)
