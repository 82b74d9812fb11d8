"""Benchmark of the demo services; run on demand, never by the test suite.

    python benchmarks/bench_services.py            # about 3.5 minutes
    python benchmarks/bench_services.py --quick    # a smoke run of about 30 s

It builds the three services, starts them on loopback (logging every request to files, as in
production), and measures from separate processes:

- throughput through gateway A (`GET /versions`) and of service B alone (`GET /version`), with
  `wrk` and `wrk_report.lua` for p50/p99;
- latency at a fixed 1,000 rps with `loadgen/` (open-loop, no coordinated omission): A, and
  B and C asked at once directly, which is A's work without A; the two take turns request by
  request, so noise from other processes falls on both alike; the difference is A's overhead,
  and the round with the median difference of three is reported, so one burst of other work on
  the machine does not decide the verdict;
- a 60 s soak through A at 200 connections: errors, and A's resident memory before, after 10 s
  and at the end;
- a fuzz run of C's line parser (`FuzzParseLine`).

The figures replace the section "## Demo services (issue: Demo system)" of
benchmarks/RESULTS.md; other sections are kept. Needs Go and wrk (`apt-get install wrk`). Exits 1
when a target is missed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # so a plain checkout runs it, without installing the harness

from benchmarks.results import RESULTS, write_section  # noqa: E402
from harness.targets.processes import Process, free_port, wait_http_ok  # noqa: E402

SERVICES_DIR = ROOT / "services"
LOADGEN_DIR = ROOT / "benchmarks" / "loadgen"
WRK_SCRIPT = ROOT / "benchmarks" / "wrk_report.lua"
HEADING = "Demo services (issue: Demo system)"

TARGET_RPS = 5000
TARGET_OVERHEAD_MS = 1.0
TARGET_FUZZ_EXECS = 10_000
RSS_GROWTH_LIMIT = 0.10  # share of the RSS after 10 s of soak that the last 50 s may add


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Wrk:
    """One wrk run: its summary as printed by wrk_report.lua."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int  # connect, read, write, timeout, and answers other than 2xx/3xx

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def summary(self) -> str:
        return (
            f"{self.rps:,.0f} rps; p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms; "
            f"{self.errors} errors"
        )


@dataclass(frozen=True)
class Fixed:
    """One fixed-rate loadgen run."""

    sent: int
    errors: int
    p50_ms: float
    p99_ms: float
    p999_ms: float

    def summary(self) -> str:
        return (
            f"p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms, p99.9 {self.p999_ms:.2f} ms; "
            f"{self.errors} errors of {self.sent:,}"
        )


@dataclass(frozen=True)
class Soak:
    wrk: Wrk
    connections: int
    rss_before_mib: float
    rss_at_10s_mib: float
    rss_after_mib: float

    @property
    def growth(self) -> float:
        return self.rss_after_mib / self.rss_at_10s_mib - 1


@dataclass(frozen=True)
class Fuzz:
    execs: int
    crashes: int
    seconds: float


def run(argv: list[str], *, cwd: Path = ROOT, timeout: float = 600) -> str:
    result = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"failed (exit {result.returncode}): {' '.join(argv)}\n{result.stderr}")
    return result.stdout


def build(bin_dir: Path) -> None:
    log("building the services and loadgen")
    run(
        ["go", "build", "-o", f"{bin_dir}/", "./gateway-a", "./service-b", "./service-c"],
        cwd=SERVICES_DIR,
    )
    run(["go", "build", "-o", str(bin_dir / "loadgen"), "."], cwd=LOADGEN_DIR)


@dataclass(frozen=True)
class Stack:
    """A, B and C running on loopback."""

    a: Process
    a_pid: int
    a_port: int
    b: Process
    b_port: int
    c: Process
    c_port: int

    @classmethod
    def start(cls, bin_dir: Path, run_dir: Path) -> Stack:
        ports = {name: free_port() for name in ("a", "b", "c", "a-ops", "b-ops", "c-ops")}
        base = {"HOST": "127.0.0.1", "FAULT_ERROR_RATE": "", "FAULT_LATENCY_MS": ""}
        b = Process("service-b", run_dir)
        b.start(
            [str(bin_dir / "service-b")],
            env={
                **base,
                "PORT": str(ports["b"]),
                "METRICS_PORT": str(ports["b-ops"]),
                "VERSION": "1.1.0",
            },
        )
        c = Process("service-c", run_dir)
        c.start(
            [str(bin_dir / "service-c")],
            env={
                **base,
                "PORT": str(ports["c"]),
                "METRICS_PORT": str(ports["c-ops"]),
                "VERSION": "1.2.0",
            },
        )
        a = Process("gateway-a", run_dir)
        a_pid = a.start(
            [str(bin_dir / "gateway-a")],
            env={
                **base,
                "PORT": str(ports["a"]),
                "METRICS_PORT": str(ports["a-ops"]),
                "VERSION": "1.0.0",
                "SERVICE_B_URL": f"http://127.0.0.1:{ports['b']}",
                "SERVICE_C_ADDR": f"127.0.0.1:{ports['c']}",
            },
        )
        for process, port in ((b, ports["b-ops"]), (c, ports["c-ops"]), (a, ports["a-ops"])):
            wait_http_ok(
                process, f"http://127.0.0.1:{port}/readyz", within=15, command=process.name
            )
        return cls(a, a_pid, ports["a"], b, ports["b"], c, ports["c"])

    @property
    def a_url(self) -> str:
        return f"http://127.0.0.1:{self.a_port}/versions"

    @property
    def b_url(self) -> str:
        return f"http://127.0.0.1:{self.b_port}/version"

    def stop(self) -> None:
        for process in (self.a, self.b, self.c):
            process.stop()


def wrk_command(url: str, *, connections: int, seconds: int) -> list[str]:
    threads = min(2, connections)
    return [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(WRK_SCRIPT),
        url,
    ]


def parse_wrk(output: str) -> Wrk:
    line = next((ln for ln in output.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no WRK_JSON line; is {WRK_SCRIPT} loaded?\n{output}")
    s = json.loads(line.removeprefix("WRK_JSON "))
    errors = s["connect"] + s["read"] + s["write"] + s["status"] + s["timeout"]
    return Wrk(s["requests"], s["duration_us"] / 1e6, s["p50_us"] / 1e3, s["p99_us"] / 1e3, errors)


def wrk(url: str, *, connections: int, seconds: int) -> Wrk:
    log(f"wrk {connections} connections for {seconds}s: {url}")
    return parse_wrk(run(wrk_command(url, connections=connections, seconds=seconds)))


def loadgen(bin_dir: Path, stack: Stack, *, rate: int, seconds: int) -> dict[str, Fixed]:
    """A and direct B+C at ``rate`` each for ``seconds``, taking turns request by request."""
    c_addr = f"127.0.0.1:{stack.c_port}"
    args = ["-a", stack.a_url, "-b", stack.b_url, "-c", c_addr]
    args += ["-rate", str(rate), "-duration", f"{seconds}s"]
    log(f"loadgen {' '.join(args)}")
    fixed = {}
    for name, r in json.loads(run([str(bin_dir / "loadgen"), *args])).items():
        if r["errors"]:
            log(f"  {name}: {r['errors']} errors, first: {r['first_error']}")
        fixed[name] = Fixed(r["sent"], r["errors"], r["p50_ms"], r["p99_ms"], r["p999_ms"])
    return fixed


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no VmRSS for pid {pid}")


def soak(stack: Stack, *, connections: int, seconds: int) -> Soak:
    log(f"soak: wrk {connections} connections for {seconds}s through A")
    before = rss_mib(stack.a_pid)
    started = time.monotonic()
    with subprocess.Popen(
        wrk_command(stack.a_url, connections=connections, seconds=seconds),
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        # A timed sample, not a wait for an event: the figure is "RSS once the load is on".
        time.sleep(max(0.0, 10 - (time.monotonic() - started)))
        at_10s = rss_mib(stack.a_pid)
        output, _ = proc.communicate(timeout=seconds + 60)
    after = rss_mib(stack.a_pid)
    return Soak(parse_wrk(output), connections, before, at_10s, after)


def fuzz(execs: int) -> Fuzz:
    log(f"fuzz FuzzParseLine for {execs} execs")
    started = time.monotonic()
    result = subprocess.run(
        [
            "go",
            "test",
            "-run=^$",
            "-fuzz=^FuzzParseLine$",
            f"-fuzztime={execs}x",
            "./service-c/servicec",
        ],
        cwd=SERVICES_DIR,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    counts = [int(n) for n in re.findall(r"execs: (\d+)", result.stdout)]
    crashes = 0 if result.returncode == 0 else max(1, result.stdout.count("Failing input"))
    if crashes:
        log(f"fuzzing found a failure:\n{result.stdout[-3000:]}")
    return Fuzz(max(counts, default=0), crashes, time.monotonic() - started)


def cpu_busy(seconds: float = 2.0) -> float:
    """Share of CPU time not idle over ``seconds``: other work that would skew the figures."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle and iowait
        return sum(fields) - idle, sum(fields)

    busy0, total0 = sample()
    time.sleep(seconds)
    busy1, total1 = sample()
    return (busy1 - busy0) / max(1, total1 - total0)


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    go = run(["go", "env", "GOVERSION"]).strip()
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    wrk_name = (wrk_version.stdout or wrk_version.stderr).split(" [", 1)[0].strip()
    return f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}, {go}, {wrk_name}"


def section(
    *,
    when: str,
    where: str,
    busy: float,
    args: argparse.Namespace,
    a: Wrk,
    b: Wrk,
    direct: Fixed,
    gateway: Fixed,
    overheads: list[float],
    soaked: Soak,
    fuzzed: Fuzz,
    verdicts: dict[str, bool],
) -> str:
    overhead = gateway.p99_ms - direct.p99_ms
    ok = (
        "all targets met"
        if all(verdicts.values())
        else "MISSED: " + ", ".join(name for name, passed in verdicts.items() if not passed)
    )
    mark = {True: "met", False: "**missed**"}
    rows = [
        (
            "throughput through A: `GET /versions`, wrk, "
            f"{args.connections} connections, {args.throughput_seconds} s",
            a.summary(),
            f"≥ {TARGET_RPS:,} rps: {mark[verdicts['throughput']]}",
        ),
        (
            "service B alone: `GET /version`, same wrk settings",
            b.summary(),
            "for comparison",
        ),
        (
            f"direct: B and C asked at once, {args.rate:,} rps for {args.fixed_seconds} s "
            "(median round)",
            direct.summary(),
            "",
        ),
        (
            f"through A: `GET /versions`, {args.rate:,} rps for {args.fixed_seconds} s "
            "(median round)",
            gateway.summary(),
            "",
        ),
        (
            f"A's p99 overhead over direct B+C at {args.rate:,} rps",
            f"{overhead:.2f} ms, the median of {len(overheads)} rounds "
            f"({', '.join(f'{o:.2f}' for o in overheads)} ms); "
            f"p50 {gateway.p50_ms - direct.p50_ms:.2f} ms",
            f"≤ {TARGET_OVERHEAD_MS:g} ms: {mark[verdicts['overhead']]}",
        ),
        (
            f"soak through A: {soaked.connections} connections for {args.soak_seconds} s",
            f"{soaked.wrk.requests:,} requests ({soaked.wrk.rps:,.0f} rps), "
            f"{soaked.wrk.errors} errors",
            f"0 errors: {mark[verdicts['soak errors']]}",
        ),
        (
            "A's resident memory: idle before / after 10 s of soak / at the end",
            f"{soaked.rss_before_mib:.1f} / {soaked.rss_at_10s_mib:.1f} / "
            f"{soaked.rss_after_mib:.1f} MiB ({soaked.growth:+.1%} over the last "
            f"{args.soak_seconds - 10} s)",
            f"< {RSS_GROWTH_LIMIT:.0%} growth: {mark[verdicts['memory']]}",
        ),
        (
            "fuzzing C's line parser, `FuzzParseLine`",
            f"{fuzzed.execs:,} execs in {fuzzed.seconds:.0f} s, {fuzzed.crashes} crashes",
            f"≥ {TARGET_FUZZ_EXECS:,} execs, 0 crashes: {mark[verdicts['fuzz']]}",
        ),
    ]
    table = "\n".join(f"| {m} | {r} | {t} |" for m, r, t in rows)
    return f"""Measured {when} by `python benchmarks/bench_services.py`
on {where}. Load generators (wrk, loadgen) and the three services share those CPUs and talk over
loopback; every service logs each request as a JSON line to a file, as in production. Before the
run, other processes kept {busy:.0%} of the CPUs busy. Verdict: **{ok}**.

| measurement | result | target |
|---|---|---|
{table}

The fixed-rate figures come from `benchmarks/loadgen`, which sends on a schedule and counts each
latency from the request's due time, so a stall is not hidden (Debian's wrk has no constant-rate
mode). "Direct" asks B over HTTP and C over TCP at the same time, as A does, so the difference is
what A itself adds. The two run at the same time, each at the stated rate, taking turns request
by request, so noise from other processes on the machine falls on both alike; B and C therefore
serve twice that rate.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs, to check the script")
    parser.add_argument("--connections", type=int, default=64, help="wrk throughput connections")
    parser.add_argument("--throughput-seconds", type=int, default=15)
    parser.add_argument("--rate", type=int, default=1000, help="fixed rate, requests/s")
    parser.add_argument("--fixed-seconds", type=int, default=20, help="per round")
    parser.add_argument("--rounds", type=int, default=3, help="fixed-rate rounds; median reported")
    parser.add_argument("--soak-connections", type=int, default=200)
    parser.add_argument("--soak-seconds", type=int, default=60)
    parser.add_argument("--fuzz-execs", type=int, default=100_000)
    args = parser.parse_args()
    if args.quick:
        args.throughput_seconds, args.fixed_seconds, args.soak_seconds = 3, 3, 12
        args.rounds = 1
        args.fuzz_execs = TARGET_FUZZ_EXECS
    for tool in ("go", "wrk"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not on PATH (wrk: apt-get install wrk)")

    busy = cpu_busy()
    if busy > 0.2:
        log(f"warning: the machine is {busy:.0%} busy before the run; the figures will suffer")
    with tempfile.TemporaryDirectory(prefix="bgh-bench-") as tmp:
        bin_dir, run_dir = Path(tmp) / "bin", Path(tmp) / "run"
        build(bin_dir)
        stack = Stack.start(bin_dir, run_dir)
        try:
            wrk(stack.a_url, connections=args.connections, seconds=3)  # warm-up, not reported
            a = wrk(stack.a_url, connections=args.connections, seconds=args.throughput_seconds)
            b = wrk(stack.b_url, connections=args.connections, seconds=args.throughput_seconds)
            rounds = [
                loadgen(bin_dir, stack, rate=args.rate, seconds=args.fixed_seconds)
                for _ in range(args.rounds)
            ]
            rounds.sort(key=lambda r: r["gateway"].p99_ms - r["direct"].p99_ms)
            median = rounds[len(rounds) // 2]
            direct, gateway = median["direct"], median["gateway"]
            overheads = [r["gateway"].p99_ms - r["direct"].p99_ms for r in rounds]
            soaked = soak(stack, connections=args.soak_connections, seconds=args.soak_seconds)
        finally:
            stack.stop()
    fuzzed = fuzz(args.fuzz_execs)

    verdicts = {
        "throughput": a.rps >= TARGET_RPS and a.errors == 0,
        "overhead": gateway.p99_ms - direct.p99_ms <= TARGET_OVERHEAD_MS
        and all(r[t].errors == 0 for r in rounds for t in ("direct", "gateway")),
        "soak errors": soaked.wrk.errors == 0,
        "memory": soaked.growth < RSS_GROWTH_LIMIT,
        "fuzz": fuzzed.execs >= TARGET_FUZZ_EXECS and fuzzed.crashes == 0,
    }
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = section(
        when=when,
        where=machine(),
        busy=busy,
        args=args,
        a=a,
        b=b,
        direct=direct,
        gateway=gateway,
        overheads=overheads,
        soaked=soaked,
        fuzzed=fuzzed,
        verdicts=verdicts,
    )
    if args.quick:
        print(text)
        log("quick run: RESULTS.md left as it was")
    else:
        write_section(HEADING, text)
        print(text)
        log(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
