"""Suggestions for a mistyped name: the "Did you mean ...?" of error messages."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(
    word: str, candidates: Iterable[str], cutoff: float = 0.6, ignore_case: bool = False
) -> str | None:
    """The candidate ``word`` most likely mistypes: one that differs in case only, or a single
    typo away (a letter dropped, added or changed, two neighbours swapped: what a similarity
    ratio misses in short names; not for names of one or two letters, where any other is one
    typo away), else the closest by difflib's ratio above ``cutoff``; None when nothing is close."""
    choices = list(candidates)
    by_key = {(c.lower() if ignore_case else c): c for c in choices}
    key = word.lower() if ignore_case else word
    for candidate in by_key:
        if candidate.lower() == key.lower() or (
            min(len(key), len(candidate)) > 2 and one_typo_apart(key, candidate)  # 'l' is no typo of 'z'
        ):
            return by_key[candidate]
    close = difflib.get_close_matches(key, list(by_key), n=1, cutoff=cutoff)
    return by_key[close[0]] if close else None


def did_you_mean(word: str, candidates: Iterable[str], cutoff: float = 0.6) -> str:
    """``" Did you mean 'x'?"`` for the candidate closest to ``word`` (see :func:`closest`),
    or ``""`` when none is close: ready to append to a message."""
    match = closest(word, candidates, cutoff)
    return f" Did you mean {match!r}?" if match is not None else ""


def one_typo_apart(a: str, b: str) -> bool:
    """Whether ``b`` is ``a`` with one letter dropped, added or changed, or two neighbours swapped."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return False
    if len(a) == len(b):
        diffs = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        if len(diffs) == 2:
            i, j = diffs
            return j == i + 1 and a[i] == b[j] and a[j] == b[i]
        return len(diffs) == 1
    short, long = sorted((a, b), key=len)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))
