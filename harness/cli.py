"""``bgh``: one command line for the harness: up, down, status, deploy, bump, demo, run, gate,
upgrade-report.

Settings come from ``BGH_*`` variables; options given here win over them. Which target a command
works on is ``target_for(settings)``'s answer; this module never asks ``settings.target`` itself.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from analysis.cli import RolloutSides, gate_command
from analysis.errors import ArgumentError
from harness import demo as demo_module
from harness.delivery import DirectApply
from harness.errors import ConfigError, HarnessError
from harness.git import commit as git_commit
from harness.git import push as git_push
from harness.gitops import GitOps
from harness.runner import run_runbooks
from harness.settings import load_settings, settings_table
from harness.target import Target
from harness.targets import target_for
from harness.targets.kind import docker_host, egress_guard
from harness.upgrade import run_upgrade_report

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

RolloutsVersionOption = Annotated[
    str | None,
    typer.Option(
        "--rollouts-version",
        help="Local target: run this Argo Rollouts release instead of the pinned one, "
        "built once into the cache (BGH_ROLLOUTS_VERSION; e.g. v1.9.3).",
    ),
]


def _only_local_runs_another_controller(chosen: Target, rollouts_version: str | None) -> None:
    """Only the local target builds the controller it runs; elsewhere the option would be a lie."""
    if rollouts_version and chosen.name != "local":
        raise ConfigError(
            f"--rollouts-version is for the local target; the {chosen.name} target runs "
            + (
                "the Argo Rollouts release pinned in harness/versions.py"
                if chosen.name == "kind"
                else "whatever Argo Rollouts its cluster has"
            )
        )


def _report(started: float) -> Callable[[str], None]:
    def report(line: str) -> None:
        # soft_wrap: a long line (a table row, a path) stays one line, whatever the width.
        console.print(f"[dim]{time.monotonic() - started:6.1f}s[/dim] {line}", soft_wrap=True)

    return report


def _target(target: str | None, state_dir: Path | None, **overrides: object) -> Target:
    settings = load_settings(target=target, state_dir=state_dir, **overrides)
    return target_for(settings, report=_report(time.monotonic()))


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
    rollouts_version: RolloutsVersionOption = None,
) -> None:
    """Bring the target up: build what is missing, start the control plane and Argo Rollouts."""

    def act() -> None:
        chosen = _target(
            target,
            state_dir,
            local={"argocd": True} if with_argocd else None,
            rollouts_version=rollouts_version,
        )
        _only_local_runs_another_controller(chosen, rollouts_version)
        if with_argocd and chosen.name != "local":
            raise ConfigError(
                f"--with-argocd is for the local target; the {chosen.name} target "
                + ("installs Argo CD itself" if chosen.name == "kind" else "has its own")
            )
        chosen.up()

    _run(act)


@app.command("docker-setup")
def docker_setup() -> None:
    """For the kind target on a machine without a running Docker: install Debian's docker.io
    when missing and start dockerd behind the egress guard (root). A running Docker is left as
    it is; the guard is checked where bgh set Docker up."""

    def act() -> None:
        settings = load_settings()
        report = _report(time.monotonic())
        if docker_host.set_up_here():
            # Repair the guard before anything checks it: this is the command that fixes it.
            for change in egress_guard.install():
                report(f"egress guard: {change}")
        host = docker_host.ensure(cache_dir=settings.cache_dir, report=report)
        if docker_host.set_up_here():
            for state in egress_guard.require():
                report(f"egress guard ({state.family}): in place, "
                       f"{state.rejected_packets} packets rejected so far")  # fmt: skip
        if not host.actions:
            report(f"Docker {host.server_version} answers ({host.client}); nothing to set up")

    _run(act)


@app.command()
def down(target: TargetOption = None, state_dir: StateOption = None) -> None:
    """Stop every process the target started and remove its files."""
    _run(lambda: _target(target, state_dir).down())


@app.command()
def status(target: TargetOption = None, state_dir: StateOption = None) -> None:
    """Show each component of the target and whether it is running."""

    def show() -> None:
        lines = _target(target, state_dir).status()
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


def _rollout_sides(name: str) -> RolloutSides:
    """`bgh gate --rollout`: the Rollout's preview and active hashes, from its status."""
    from harness.rollouts import Rollouts

    settings = load_settings()
    try:
        kube = target_for(settings).kube()
        rollout = Rollouts(kube, timeout=settings.deadlines.rollout).read(name)
    except HarnessError as exc:
        raise ArgumentError(f"--rollout {name}: {exc}") from exc
    if not rollout.preview_selector or rollout.preview_selector == rollout.active_selector:
        raise ArgumentError(
            f'Rollout "{name}" in namespace "{settings.namespace}" has nothing on preview '
            f"(previewSelector {rollout.preview_selector or '-'}, activeSelector "
            f"{rollout.active_selector or '-'}); release a version first"
        )
    return RolloutSides(rollout.preview_selector, rollout.active_selector, settings.namespace)


# The analysis gate lives in the standalone analysis package; bgh mounts it with a Rollout reader.
app.command("gate")(gate_command(read_rollout=_rollout_sides))


@app.callback()
def _main(context: typer.Context) -> None:
    """Before `bgh gate`: with no --prometheus-url or BGH_PROMETHEUS_URL given, judge with the
    target's Prometheus (the running local target's). It becomes the option's default."""
    if context.invoked_subcommand != "gate":
        return
    with contextlib.suppress(HarnessError):
        url = target_for(load_settings()).prometheus_url
        if url:
            context.default_map = {"gate": {"prometheus_url": url}}


@app.command("settings")
def settings_command() -> None:
    """Print the settings table (the README's copy is checked against it)."""
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
    commit = commit or push

    def act() -> None:
        if commit and dry_run:
            raise ConfigError(
                f"--{'push' if push else 'commit'} and --dry-run exclude each other; give one"
            )
        tree = GitOps(load_settings().gitops_dir)
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
            console.print(f"committed {change.file} as {git_commit(change)[:7]}: {change.message}")
            if push:
                pushed = git_push(change.file.parent)
                console.print(f"pushed {pushed[:7]}; {_refresh_local_argocd()}")
        else:
            console.print(f"wrote {change.file}; `bgh deploy --env {env}` applies it")

    _run(act)


def _refresh_local_argocd() -> str:
    """After a push: the local target's Argo CD, when it runs, compares at once."""
    refreshed = target_for(load_settings()).refresh_argocd()
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

    def act() -> None:
        chosen = _target(target, state_dir, namespace=namespace)
        DirectApply(chosen, report=_report(time.monotonic())).deploy(env)

    _run(act)


@app.command()
def demo(state_dir: StateOption = None) -> None:
    """The main job on the local target: up, deploy the demo system, probe it, run the runbooks."""
    code = 0

    def act() -> None:
        nonlocal code
        code = demo_module.run(_target("local", state_dir), _report(time.monotonic()))

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
    rollouts_version: RolloutsVersionOption = None,
) -> None:
    """Run the runbooks in features/ against the target; JUnit XML and HTML reports."""
    code = 0

    def act() -> None:
        nonlocal code
        chosen = _target(target, state_dir, namespace=namespace, rollouts_version=rollouts_version)
        _only_local_runs_another_controller(chosen, rollouts_version)
        summary = run_runbooks(chosen, reports=reports, select=select)
        for line in summary.lines():
            console.print(line)
        code = summary.exit_code

    _run(act)
    raise typer.Exit(code)


@app.command("upgrade-report")
def upgrade_report_command(
    before: Annotated[
        str,
        typer.Option("--from", help="The Argo Rollouts release upgraded from, e.g. v1.9.3."),
    ],
    after: Annotated[
        str,
        typer.Option("--to", help="The Argo Rollouts release upgraded to, e.g. v1.10.2."),
    ],
    state_dir: StateOption = None,
    select: Annotated[
        str | None,
        typer.Option(
            "-k", help='Only scenarios matching this pytest expression (e.g. "upstream").'
        ),
    ] = None,
    reports: Annotated[
        Path,
        typer.Option(
            "--reports",
            help="Where upgrade-report.{txt,xml,html} go, and each release's runbook reports "
            "under <reports>/<release>/.",
        ),
    ] = Path("reports/upgrade"),
) -> None:
    """Run the runbooks on two Argo Rollouts releases on the local target, one after the other,
    and write what changed: scenario x release, with durations (text, JUnit XML, HTML). Exits 0
    when the --to release's run is green."""
    code = 0

    def act() -> None:
        nonlocal code
        report = _report(time.monotonic())
        result = run_upgrade_report(
            lambda version: _target("local", state_dir, rollouts_version=version),
            before,
            after,
            reports=reports.resolve(),
            select=select,
            report=report,
        )
        for line in result.lines():
            console.print(line, soft_wrap=True, markup=False)
        for kind, path in result.write(reports.resolve()).items():
            console.print(f"  {kind}: {path}")
        code = result.exit_code

    _run(act)
    raise typer.Exit(code)
