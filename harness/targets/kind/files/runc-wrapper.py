"""runc without CAP_SYS_RESOURCE, for machines whose capability bounding set lacks it.

Docker's --privileged (kind's nodes) asks for every capability; where the kernel's bounding set
has no CAP_SYS_RESOURCE, runc fails with "unable to apply caps: operation not permitted". This
wrapper removes that one capability from the OCI spec runc is about to read, then execs runc:
the bundle's config.json for `create` and `run`, the process file for `exec --process FILE`
(`docker exec` into a privileged container). Every other call passes through untouched.
dockerd runs it as its default runtime (`--add-runtime NAME=PATH --default-runtime NAME`).
"""

import json
import os
import sys

RUNC = "@RUNC@"
DROPPED = "CAP_SYS_RESOURCE"
# runc's global options that take a value (`runc --help`); every other global option is a flag.
GLOBAL_WITH_VALUE = {"--root", "--log", "--log-format", "--criu", "--rootless"}


def option(args: list[str], *names: str) -> str | None:
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def command(args: list[str]) -> tuple[str | None, list[str]]:
    skip = False
    for i, arg in enumerate(args):
        if skip:
            skip = False
        elif arg in GLOBAL_WITH_VALUE:
            skip = True
        elif not arg.startswith("-"):
            return arg, args[i + 1 :]
    return None, []


def drop_capability(path: str, *, nested: bool) -> None:
    try:
        with open(path) as f:
            spec = json.load(f)
    except FileNotFoundError:
        return
    process = spec.get("process", {}) if nested else spec
    capabilities = process.get("capabilities") or {}
    changed = False
    for kind, names in capabilities.items():
        if isinstance(names, list) and DROPPED in names:
            capabilities[kind] = [name for name in names if name != DROPPED]
            changed = True
    if changed:
        tmp = path + ".bgh-tmp"
        with open(tmp, "w") as f:
            json.dump(spec, f)
        os.replace(tmp, path)


def main() -> None:
    args = sys.argv[1:]
    name, rest = command(args)
    if name in ("create", "run"):
        bundle = option(rest, "--bundle", "-b") or os.getcwd()
        drop_capability(os.path.join(bundle, "config.json"), nested=True)
    elif name == "exec":
        process = option(rest, "--process", "-p")
        if process:
            drop_capability(process, nested=False)
    os.execv(RUNC, [RUNC, *args])


main()
