"""Help text of the command line: field docstrings wrapped as the paragraphs they are.

tyro reads a dataclass field's docstring through docstring_parser, which keeps the source
indentation of its continuation lines, and tyro starts a new line of help at every line that does
not begin with a letter, so a docstring wrapped in the source came out broken at each of its
lines. Cleaning the indentation first (`inspect.cleandoc`, as Python does for `__doc__`) lets
the help flow as one paragraph.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from tyro import _docstrings


def _cleaned(parse: Callable[[object], dict[str, str]]) -> Callable[[object], dict[str, str]]:
    def parse_cleaned(obj: object) -> dict[str, str]:
        return {name: inspect.cleandoc(text) for name, text in parse(obj).items()}

    parse_cleaned.cleaned = True  # type: ignore[attr-defined]
    return parse_cleaned


def clean_field_docstrings() -> None:
    """Install the cleaning once; a tyro without this internal keeps its own behaviour."""
    parse = getattr(_docstrings, "parse_docstring_from_object", None)
    if parse is not None and not getattr(parse, "cleaned", False):
        _docstrings.parse_docstring_from_object = _cleaned(parse)
