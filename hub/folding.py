"""Text folded for a case-blind search, the same in Python on both sides of a match.

SQLite's lower() folds ASCII alone and PostgreSQL's follows its collation (a Greek final
sigma stays apart), so neither can fold what a member types the way the stored text was
folded. The hub folds both in Python instead: NFKC (a decomposed é is é, the ligature ﬁ
is fi), then casefold (ß is ss, every sigma is σ)."""

from __future__ import annotations

import unicodedata

# Between the texts of one searchable value: a control character, which no search term
# holds (validate.text refuses them), so a term never runs from one text into the next.
SEPARATOR = "\x1f"


def fold(text: str) -> str:
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def searchable(*texts: str | None) -> str:
    """The folded texts, each apart: what a search term is looked for in."""
    return SEPARATOR.join(fold(text) for text in texts if text)
