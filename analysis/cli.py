"""``bgh gate``: judge a preview against active before promotion, for CI.

Exit codes: 0 Successful, 1 Failed, 2 a usage error (bad argument or checks file),
3 Inconclusive, 4 Error (could not be measured). Only 0 lets a pipeline promote.
Prometheus is read from ``$BGH_PROMETHEUS_URL`` (default http://127.0.0.1:9090).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from analysis.checks import Side, load_checks, parse_duration
from analysis.errors import AnalysisError, ArgumentError

DEFAULT_PROMETHEUS_URL = "http://127.0.0.1:9090"

# By the judge's phases as Argo spells them (``analysis.judge.Phase`` is a StrEnum of these): the
# judge, Prometheus's client and numpy are imported when the gate runs, not by every `bgh`
# command (`bgh up` pays each import at start).
EXIT_CODES = {
    "Successful": 0,
    "Failed": 1,
    "Inconclusive": 3,
    "Error": 4,
}
EXIT_USAGE = 2

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Judge a preview against active from Prometheus metrics.")


@app.callback()
def _main() -> None:
    """Analysis commands (the gate before promotion)."""


@dataclass(frozen=True)
class RolloutSides:
    """What ``--rollout`` reads from a Rollout: its preview and active pod-template hashes."""

    preview: str  # status.blueGreen.previewSelector
    active: str  # status.blueGreen.activeSelector
    namespace: str | None = None  # where its pods run (label namespace), if known


RolloutReader = Callable[[str], RolloutSides]


def gate_command(read_rollout: RolloutReader | None = None) -> Callable[..., None]:
    """The ``gate`` command; ``read_rollout`` turns ``--rollout NAME`` into its sides.

    Reading a Rollout needs Kubernetes, which this package does not talk to: ``bgh`` passes a
    reader, and without one ``--rollout`` is a usage error.
    """

    def gate(
        preview: Annotated[
            str | None, typer.Option(help="Preview version (1.1.0) or pod-template hash.")
        ] = None,
        active: Annotated[
            str | None, typer.Option(help="Active version (1.0.0) or pod-template hash.")
        ] = None,
        rollout: Annotated[
            str | None,
            typer.Option(help="Judge this Rollout's preview against its active, by pod-template "
                         "hash and for its own service (bgh only)."),
        ] = None,
        checks: Annotated[
            Path | None, typer.Option(help="Checks file (default: analysis/checks.yaml).")
        ] = None,
        window: Annotated[str, typer.Option(help="How far back to judge, e.g. 5m.")] = "5m",
        service: Annotated[
            str | None, typer.Option(help="Judge one service's series (label service).")
        ] = None,
        namespace: Annotated[
            str | None, typer.Option(help="Only pods of this namespace (label namespace).")
        ] = None,
        json_: Annotated[
            bool, typer.Option("--json", help="Print the verdict as JSON instead of text.")
        ] = False,
        html: Annotated[Path | None, typer.Option(help="Also write an HTML report here.")] = None,
        junit_xml: Annotated[
            Path | None, typer.Option("--junit", help="Also write a JUnit XML report here.")
        ] = None,
        # Hidden: users set BGH_PROMETHEUS_URL; `bgh gate` fills in its target's Prometheus here.
        prometheus_url: Annotated[
            str, typer.Option(envvar="BGH_PROMETHEUS_URL", hidden=True)
        ] = DEFAULT_PROMETHEUS_URL,
    ) -> None:
        """Exit 0 only if the preview is Successful: 1 Failed, 2 usage, 3 Inconclusive, 4 Error."""
        from analysis.judge import judge
        from analysis.prometheus import Prometheus
        from analysis.report import as_dict, html_report, junit, text, to_json

        url = prometheus_url
        try:
            check_set = load_checks(checks)
            if rollout is not None:
                if preview is not None or active is not None:
                    raise ArgumentError("--rollout reads preview and active from the Rollout; "
                                        "give either --rollout or --preview and --active")
                if read_rollout is None:
                    raise ArgumentError("--rollout needs `bgh gate`, which reads the Rollout "
                                        "from Kubernetes; here give --preview and --active")
                read = read_rollout(rollout)
                preview, active = f"hash:{read.preview}", f"hash:{read.active}"
                service = service or rollout
                namespace = namespace or read.namespace
            if preview is None or active is None:
                raise ArgumentError("give --preview and --active (versions or pod-template "
                                    "hashes), or --rollout NAME")
            sides = Side.parse("preview", preview), Side.parse("active", active)
            seconds = parse_duration(window, what="--window")
            with Prometheus(url, timeout=check_set.query_timeout) as prometheus:
                verdict = judge(prometheus, check_set, preview=sides[0], active=sides[1],
                                window=seconds, service=service, namespace=namespace)
        except AnalysisError as exc:
            print(f"bgh gate: {exc}", file=sys.stderr)
            raise typer.Exit(EXIT_USAGE) from exc
        for path, content in ((html, html_report), (junit_xml, junit)):
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content(verdict), encoding="utf-8")
        sys.stdout.write(to_json(as_dict(verdict)) if json_ else text(verdict))
        raise typer.Exit(EXIT_CODES[verdict.phase])

    return gate


gate = app.command("gate")(gate_command())


if __name__ == "__main__":
    app()
