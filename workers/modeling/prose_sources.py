"""Real English prose found on this machine, for the style model to learn to restyle any text.

No downloads: the paragraphs come from what every Attune install has, the docstrings of Python's
standard library and of the installed packages, the packages' own descriptions (their README,
in ``*.dist-info/METADATA``), and, where the system has them, licence texts and package READMEs
under ``/usr/share``. A paragraph is a run of two to eight clean prose sentences (no code, no
markup). Each document (one file) lands on one side of a fixed split by the hash of its name, so
the held-out side is prose the model never saw.
"""

from __future__ import annotations

import gzip
import hashlib
import inspect
import re
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

from core.text import split_sentences

HELDOUT_PERCENT = 10
MAX_SENTENCES = 8
MAX_FILE_BYTES = 100_000
_CODE = re.compile(r"[`{}\[\]<>=|\\_#*$@^~/]|\.\w|\w\(|::|--|\s-\w")
_TRIPLE_QUOTED = re.compile(r'("""|\'\'\')(.*?)\1', re.S)
_WORD = re.compile(r"^[A-Za-z][A-Za-z'’-]*[,;:.!]?$|^\d[\d,.%]*[,;:.!]?$|^\(?\w+\)?[,.;]?$")


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of real prose: its sentences, and the file it came from."""

    origin: str
    sentences: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


def is_heldout(origin: str) -> bool:
    """Whether a document is on the held-out side of the split (about one in ten)."""
    digest = hashlib.sha256(origin.encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < HELDOUT_PERCENT


def is_prose(sentence: str) -> bool:
    """A clean English sentence: 5 to 40 plain words, a capital start, a full stop at the end."""
    tokens = sentence.split()
    if not 5 <= len(tokens) <= 40 or not sentence[0].isupper() or sentence[-1] not in ".!":
        return False
    if not sentence.isascii() or _CODE.search(sentence):
        return False
    plain = sum(bool(_WORD.match(token)) for token in tokens)
    return plain >= 0.9 * len(tokens) and sum(t[0].isupper() for t in tokens) <= len(tokens) / 2


def paragraphs_of(text: str, origin: str) -> Iterator[Paragraph]:
    """The prose paragraphs of a text: blank-line-separated blocks, cut into runs of clean
    sentences (two to eight)."""
    for block in re.split(r"\n\s*\n", text):
        run: list[str] = []
        for sentence in [*split_sentences(block), ""]:
            if sentence and is_prose(sentence) and len(run) < MAX_SENTENCES:
                run.append(sentence)
                continue
            if len(run) >= 2:
                yield Paragraph(origin, tuple(run))
            run = [sentence] if sentence and is_prose(sentence) else []


def _docstrings(path: Path) -> Iterator[str]:
    """The triple-quoted strings of a Python file (docstrings, mostly), dedented."""
    try:
        source = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return
    for match in _TRIPLE_QUOTED.finditer(source):
        yield inspect.cleandoc(match.group(2))


def _read(path: Path) -> str:
    """A text file, gzip-compressed or not ("" when it cannot be read as UTF-8)."""
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError, gzip.BadGzipFile, EOFError):
        return ""


def _python_files() -> Iterator[tuple[str, Path]]:
    """The standard library's modules, then the installed packages' (named by their path)."""
    roots = [Path(sysconfig.get_paths()["stdlib"]), Path(sysconfig.get_paths()["purelib"])]
    skip = {"test", "tests", "site-packages", "idlelib", "lib2to3"}
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            parts = set(path.relative_to(root).parts)
            if not parts & skip and path.stat().st_size < MAX_FILE_BYTES:
                yield f"python:{path.relative_to(root)}", path


def _package_descriptions() -> Iterator[tuple[str, str]]:
    """Each installed package's long description (its README)."""
    for metadata in sorted(Path(sysconfig.get_paths()["purelib"]).glob("*.dist-info/METADATA")):
        message = Parser().parsestr(_read(metadata))
        body = message.get_payload()
        if isinstance(body, str):
            yield f"package:{metadata.parent.name.split('-')[0]}", body


def _system_documents() -> Iterator[tuple[str, str]]:
    """Licence texts and package READMEs under /usr/share, where this system has them."""
    share = Path("/usr/share")
    for path in sorted((share / "common-licenses").glob("*")):
        if path.is_file():
            yield f"licence:{path.name}", _read(path)
    for path in sorted((share / "doc").glob("*/README*")):
        if path.is_file() and path.stat().st_size < 200_000:
            yield f"doc:{path.parent.name}/{path.name}", _read(path)


def documents() -> Iterator[tuple[str, str]]:
    """Every (origin, text) this machine offers: package READMEs and system documents first, then
    docstrings (the standard library's, then the installed packages'), in a fixed order."""
    yield from _package_descriptions()
    yield from _system_documents()
    for origin, path in _python_files():
        for index, doc in enumerate(_docstrings(path)):
            yield f"{origin}#{index}", doc


def collect(heldout: bool = False, limit: int | None = None) -> list[Paragraph]:
    """The prose paragraphs on one side of the split, in a fixed order (at most ``limit``)."""
    found: list[Paragraph] = []
    seen: set[str] = set()
    for origin, text in documents():
        if is_heldout(origin.split("#")[0]) != heldout:
            continue
        for paragraph in paragraphs_of(text, origin):
            if paragraph.text not in seen:
                seen.add(paragraph.text)
                found.append(paragraph)
                if limit is not None and len(found) >= limit:
                    return found
    return found


if __name__ == "__main__":
    side = "--heldout" in sys.argv
    paragraphs = collect(heldout=side)
    print(f"{len(paragraphs)} paragraphs, {sum(len(p.sentences) for p in paragraphs)} sentences")
    for paragraph in paragraphs[:: max(1, len(paragraphs) // 8)]:
        print(f"- [{paragraph.origin}] {paragraph.text}")
