"""The analysis package's error tree, chosen by what the reader does next.

``analysis`` stands alone (it never imports ``harness``), so it has its own root. Only input
problems escape as exceptions; a Prometheus that is down, slow or wrong becomes an ``Error``
measurement inside a verdict instead (see ``judge``).
"""

from __future__ import annotations


class AnalysisError(Exception):
    """Root of every error the analysis package raises on purpose."""


class CheckError(AnalysisError):
    """A checks file is unreadable or invalid; fix the file and run again."""


class ArgumentError(AnalysisError):
    """An argument (a version, a hash, a window, a service) is not acceptable; fix the call."""


class QueryError(AnalysisError):
    """Prometheus could not answer a query; the judge turns this into an ``Error`` measurement."""
