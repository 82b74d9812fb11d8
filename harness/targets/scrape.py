"""How often Prometheus scrapes the demo pods: one interval for every target that runs its own
Prometheus (the local target's process, the kind target's Deployment), so a judge window that
fits one fits the other.

5 s keeps analysis/checks.yaml's 20 s rate window at four scrapes and its 1 m windows at twelve.
"""

from __future__ import annotations

SCRAPE_INTERVAL_SECONDS = 5
SCRAPE_TIMEOUT_SECONDS = 4


def global_config() -> dict[str, str]:
    """The ``global`` section of a prometheus.yml with that interval."""
    return {
        "scrape_interval": f"{SCRAPE_INTERVAL_SECONDS}s",
        "scrape_timeout": f"{SCRAPE_TIMEOUT_SECONDS}s",
        "evaluation_interval": "15s",
    }
