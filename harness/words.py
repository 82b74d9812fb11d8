"""Upstream words parsed into enums: one parser, and an error that names the words it knows.

Phase words of ``kubectl argo rollouts status``, Argo's analysis phases, Argo CD's sync and
health words and gateway A's sides all come in as text (a feature file, a flag, an API object).
A ``ValueError`` would be wrong here: pytest-bdd reads one from a step parameter converter as "no
match", which ends in a misleading "step definition not found".
"""

from __future__ import annotations

import enum
from typing import TypeVar

from harness.errors import ConfigError

E = TypeVar("E", bound=enum.StrEnum)


def parse_word(enumeration: type[E], word: str, what: str) -> E:
    """The member of ``enumeration`` spelled ``word``; a ConfigError naming the valid words."""
    for member in enumeration:
        if member.value == word:
            return member
    expected = ", ".join(m.value for m in enumeration)
    raise ConfigError(f'unknown {what} "{word}"; expected one of {expected}.')


def read_word(enumeration: type[E], value: object, default: E) -> E:
    """The member spelled ``value`` in an API object, or ``default`` for a word not (yet) known:
    a status written by a newer release must not stop a wait that reads it."""
    try:
        return enumeration(str(value))
    except ValueError:
        return default
