"""``bgh``: one command line for the harness (up, down, status; more verbs as they land).

Settings come from ``BGH_*`` variables; options given here win over them.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from analysis.cli import gate as gate_command
from harness.errors import ConfigError, HarnessError
from harness.settings import ENV_PREFIX, Settings, load_settings
from harness.targets.kind import KindTarget
from harness.targets.local import LocalTarget

app = typer.Typer(
    help="Verify and analyse blue-green releases made with Argo Rollouts.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True, highlight=False)

TargetOption = Annotated[
    str | None, typer.Option("--target", help="local (default), kind or existing.")
]
StateOption = Annotated[
    Path | None, typer.Option("--state-dir", help="Where the target keeps its files (.bgh).")
]


def _settings(target: str | None, state_dir: Path | None) -> Settings:
    return load_settings(target=target, state_dir=state_dir)


def _report(started: float) -> Callable[[str], None]:
    def report(line: str) -> None:
        console.print(f"[dim]{time.monotonic() - started:6.1f}s[/dim] {line}")

    return report


def _target(settings: Settings) -> LocalTarget | KindTarget:
    report = _report(time.monotonic())
    if settings.target == "local":
        return LocalTarget(settings, report=report)
    if settings.target == "kind":
        return KindTarget(settings, report=report)
    raise ConfigError(
        "the existing target is a cluster someone else runs: there is nothing to bring up or "
        "down; point BGH_KUBECONFIG at it and run the suite"
    )


@app.command()
def up(
    target: TargetOption = None,
    state_dir: StateOption = None,
    with_argocd: Annotated[
        bool,
        typer.Option(
            "--with-argocd",
            help="Local target: also run Argo CD and sync the root app from a local Git "
            "repository seeded from gitops/ (BGH_LOCAL__ARGOCD=true).",
        ),
    ] = False,
) -> None:
    """Bring the target up: build what is missing, start the control plane and Argo Rollouts."""

    def act() -> None:
        settings = _settings(target, state_dir)
        if with_argocd:
            if settings.target != "local":
                raise ConfigError(
                    f"--with-argocd is for the local target; the {settings.target} target "
                    + ("installs Argo CD itself" if settings.target == "kind" else "has its own")
                )
            settings.local.argocd = True
        _target(settings).up()

    _run(act)


@app.command()
def down(target: TargetOption = None, state_dir: StateOption = None) -> None:
    """Stop every process the target started and remove its files."""
    _run(lambda: _target(_settings(target, state_dir)).down())


@app.command()
def status(target: TargetOption = None, state_dir: StateOption = None) -> None:
    """Show each component of the target and whether it is running."""

    def show() -> None:
        lines = _target(_settings(target, state_dir)).status()
        table = Table("component", "state", "detail")
        for line in lines:
            state = "[green]running[/green]" if line.running else "[red]stopped[/red]"
            table.add_row(line.name, state, line.detail)
        Console().print(table)
        if not all(line.running for line in lines):
            raise typer.Exit(1)

    _run(show)


def _run(action: Callable[[], object]) -> None:
    try:
        action()
    except HarnessError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc


# The analysis gate lives in the standalone analysis package; bgh only mounts it.
app.command("gate")(gate_command)


@app.callback()
def _main(context: typer.Context) -> None:
    """Before `bgh gate`: with no BGH_PROMETHEUS_URL given, judge with the running local
    target's Prometheus. The analysis package reads that variable itself; bgh only fills it in."""
    if context.invoked_subcommand != "gate" or os.environ.get(ENV_PREFIX + "PROMETHEUS_URL"):
        return
    settings = load_settings()
    if settings.target == "local":
        with contextlib.suppress(HarnessError):
            url = LocalTarget(settings).prometheus_url
            os.environ[ENV_PREFIX + "PROMETHEUS_URL"] = url


@app.command("settings")
def settings_command() -> None:
    """Print the settings table (the README's copy is checked against it)."""
    from harness.settings import settings_table

    typer.echo(settings_table())


EnvOption = Annotated[
    str, typer.Option("--env", help="Environment: gitops/envs/<env>_version.yaml (qa, prod).")
]


@app.command()
def bump(
    env: EnvOption,
    service: Annotated[
        str | None, typer.Option("--service", help="gateway-a, service-b or service-c.")
    ] = None,
    version: Annotated[
        str | None, typer.Option("--version", help="The new image tag, e.g. 1.1.0.")
    ] = None,
    root_version: Annotated[
        str | None, typer.Option("--root-version", help="Also set rootVersion, e.g. v2.2.0.")
    ] = None,
    greeting: Annotated[
        str | None,
        typer.Option(
            "--greeting",
            help="Override the text of gateway A's greeting (UTF-8), on builds that have one.",
        ),
    ] = None,
    commit: Annotated[bool, typer.Option("--commit", help="git commit the file alone.")] = False,
    push: Annotated[
        bool, typer.Option("--push", help="Then git push the commit (implies --commit).")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the diff only.")] = False,
) -> None:
    """Set a service's version, the root version or the greeting in a version file, keeping
    comments and order."""
    from harness import argocd, gitops

    commit = commit or push

    def act() -> None:
        if commit and dry_run:
            raise ConfigError(
                f"--{'push' if push else 'commit'} and --dry-run exclude each other; give one"
            )
        tree = gitops.GitOps(load_settings().gitops_dir)
        change = tree.bump(
            env, service, version, root_version=root_version, greeting=greeting, write=not dry_run
        )
        if not change.changed:
            console.print(f"{change.file}: already says so; nothing to change")
            return
        typer.echo(change.diff, nl=False)
        if dry_run:
            console.print("dry run: nothing written")
        elif commit:
            console.print(f"committed {change.file} as {gitops.commit(change)}: {change.message}")
            if push:
                pushed = argocd.push(change.file.parent)
                console.print(f"pushed {pushed[:7]}; {_refresh_local_argocd()}")
        else:
            console.print(f"wrote {change.file}; `bgh deploy --env {env}` applies it")

    _run(act)


def _refresh_local_argocd() -> str:
    """After a push: the local target's Argo CD, when it runs, compares at once."""
    settings = load_settings()
    if settings.target == "local":
        refreshed = LocalTarget(settings).refresh_argocd()
        if refreshed:
            return f"asked the local target's Argo CD to refresh {len(refreshed)} Applications"
    return "Argo CD syncs it at its next refresh (or poll, every three minutes)"


@app.command()
def deploy(
    env: EnvOption,
    target: TargetOption = None,
    state_dir: StateOption = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", help="Namespace to deploy into (demo).")
    ] = None,
) -> None:
    """Render an environment, server-side apply it to the target, wait for every Rollout."""
    from harness import gitops

    def act() -> None:
        settings = load_settings(target=target, state_dir=state_dir, namespace=namespace)
        gitops.deploy(settings, env, report=_report(time.monotonic()))

    _run(act)


@app.command()
def demo(state_dir: StateOption = None) -> None:
    """The main job on the local target: up, deploy the demo system, probe it, run the runbooks."""
    from harness import demo as demo_module

    settings = _settings("local", state_dir)
    code = 0

    def act() -> None:
        nonlocal code
        code = demo_module.run(settings, _report(time.monotonic()))

    _run(act)
    raise typer.Exit(code)


@app.command("run")
def run_command(
    target: TargetOption = None,
    state_dir: StateOption = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", help="The namespace on the existing target.")
    ] = None,
    select: Annotated[
        str | None,
        typer.Option("-k", help='Only scenarios matching this pytest expression (e.g. "undo").'),
    ] = None,
    reports: Annotated[
        Path,
        typer.Option(
            "--reports", help="Where runbooks.html, runbooks.xml and runbooks.cucumber.json go."
        ),
    ] = Path("reports"),
) -> None:
    """Run the runbooks in features/ against the target; JUnit XML and HTML reports."""
    from harness.runner import run_runbooks

    code = 0

    def act() -> None:
        nonlocal code
        settings = load_settings(target=target, state_dir=state_dir, namespace=namespace)
        summary = run_runbooks(settings, reports=reports, select=select)
        for line in summary.lines():
            console.print(line)
        code = summary.exit_code

    _run(act)
    raise typer.Exit(code)
