"""The isolation invariants watched while a scenario changes the system, and read-only samples.

``Isolation`` runs two background streams through gateway A, users through the active Service and
testers through the preview Service (fresh connections, a few requests a second each), while a
``Recorder`` watches the namespace; ``verdict`` judges every answer so far
(``harness.provenance.judge``). ``sample`` is the read-only variant for long-lived clusters: a
number of answers per side, judged the same way, with no grace for open connections.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, ProbeError
from harness.kube import Kube
from harness.probes import Answer, Gateway, Side, Traffic
from harness.provenance import History, Recorder, Verdict, judge, percentile
from harness.waits import poll

BOTH = (Side.ACTIVE, Side.PREVIEW)


class Isolation:
    """Users through active and testers through preview, in the background, judged on demand."""

    def __init__(
        self,
        kube: Kube,
        gateway: Gateway,
        *,
        rps: float = 5.0,
        tolerance: float = 0.5,
        grace: float = 2.0,
        unjudged: Mapping[int, str] | None = None,
    ) -> None:
        """``unjudged``: invariants this cluster cannot be judged on, with why
        (``Verdict.without``)."""
        self.gateway = gateway
        self.unjudged = dict(unjudged or {})
        self.rps = rps
        self.tolerance = tolerance
        self.grace = grace
        self.recorder = Recorder(kube)
        self.traffic: Traffic | None = None
        self._running = contextlib.ExitStack()

    @property
    def history(self) -> History:
        return self.recorder.history

    def start(self, *, within: float = 15.0, isolated_first: bool = False) -> None:
        """Record the namespace, then start both streams; returns once both sides answered.

        ``isolated_first``: before the streams start, ask until gateway A answers on both sides
        from the ReplicaSets the selectors name now (``wait_until_isolated``), so that routes
        still catching up with a change made before the recording (the restore after the
        previous scenario, say) are not charged to what comes next.
        """
        self.recorder.start()
        self._running.callback(self.recorder.stop)
        try:
            if isolated_first:
                self.wait_until_isolated(within=within)
            self.traffic = self._running.enter_context(
                self.gateway.steady_traffic(rps=self.rps, sides=BOTH)
            )
            self.traffic.wait_until(
                lambda t: all(any(a.side == s for a in t.answers) for s in BOTH),
                what="a first answer on both sides",
                within=within,
            )
        except BaseException:
            self._running.close()
            raise

    def wait_until_isolated(self, *, within: float) -> Verdict:
        """Ask both sides at once until one answer each is judged with no violation.

        Endpoints and proxies follow a Service's selector a moment after the API server has it;
        a system that stays mis-routed fails here, with the chains of its last answers.
        """

        def ask() -> Verdict:
            answers = self.gateway.read_versions(BOTH).values()
            verdict = judge(answers, self.history, tolerance=self.tolerance, grace=self.grace)
            return verdict.without(self.unjudged)

        verdict, met = poll(
            ask,
            lambda v: not v.violations and all(v.checked(side) for side in BOTH),
            within=within,
        )
        if not met:
            raise ProbeError(
                f"gateway A's answers did not come from the ReplicaSets the selectors name "
                f"within {within:g}s, before the scenario changed anything:\n{verdict.report()}"
            )
        return verdict

    def answers(self) -> list[Answer]:
        if self.traffic is None:
            raise ConfigError("the isolation streams were never started")
        return list(self.traffic.answers)

    def verdict(self) -> Verdict:
        """Every answer so far against the invariants."""
        verdict = judge(self.answers(), self.history, tolerance=self.tolerance, grace=self.grace)
        return verdict.without(self.unjudged)

    def stop(self) -> Verdict:
        """Stop both streams and the recorder; the verdict over everything recorded."""
        # The streams' own failure is in the answers they recorded.
        with contextlib.suppress(ProbeError):
            self._running.close()
        return self.verdict()


def sample(kube: Kube, gateway: Gateway, *, count: int = 20, tolerance: float = 0.5) -> Verdict:
    """``count`` answers per side on a system nobody changes, judged without grace."""
    if count < 1:
        raise ConfigError(f"a sample of {count} answers per side; expected at least 1")
    recorder = Recorder(kube)
    history = recorder.start()
    try:
        answers = [a for _ in range(count) for a in gateway.read_versions(BOTH).values()]
    finally:
        recorder.stop()
    return judge(answers, history, tolerance=tolerance, grace=tolerance)


def by_service(verdict: Verdict) -> dict[str, dict[str, dict[str, int]]]:
    """service -> side -> role -> hops: who answered, per service and side."""
    table: dict[str, dict[str, Counter[str]]] = {}
    for provenance in verdict.provenance:
        for hop in provenance.hops:
            role = hop.role.value if hop.role else "unresolved"
            side = table.setdefault(hop.service, {})
            side.setdefault(str(provenance.answer.side), Counter())[role] += 1
    return {s: {side: dict(c) for side, c in sides.items()} for s, sides in table.items()}


def figures(verdict: Verdict) -> dict[str, Any]:
    """The numbers a runbook reports: answers checked per side, violations, switch lags."""
    lags = list(verdict.lags)
    return {
        "checked": {str(c.side): c.checked for c in verdict.counts},
        "unanswered": {str(c.side): c.unanswered for c in verdict.counts},
        "violations": len(verdict.violations),
        "drained": len(verdict.drained),
        "drained_latest_s": round(verdict.drained_late, 3),
        "propagated": len(verdict.propagated),
        "propagated_latest_s": round(verdict.propagated_late, 3),
        "switch_lags_s": [round(lag, 3) for lag in lags],
        "switch_lag_p50_s": round(percentile(lags, 0.5), 3) if lags else None,
        "switch_lag_p95_s": round(percentile(lags, 0.95), 3) if lags else None,
    }


def write_provenance(verdict: Verdict, history: History, path: Path) -> Path:
    """Every answer with its hops, the violations and the moments seen, as one JSON file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "summary": verdict.summary(),
        "figures": figures(verdict),
        "violations": [
            {"invariant": v.invariant, "why": v.why, "chain": v.provenance.as_dict()}
            for v in verdict.violations
        ],
        "moments": [
            {
                "at": m.at,
                "selectors": {
                    name: {
                        "activeSelector": s.active_selector,
                        "previewSelector": s.preview_selector,
                        "activeService": s.active_service,
                        "previewService": s.preview_service,
                    }
                    for name, s in m.selectors.items()
                },
            }
            for m in history.moments
        ],
        "switches": [vars(s) for s in history.switches],
        "answers": [p.as_dict() for p in verdict.provenance],
        "written_at": time.time(),
    }
    path.write_text(json.dumps(document, indent=1) + "\n")
    return path
