"""The deployment files agree with the code: the image holds every installed package, each command they
run exists, and every variable they pass is one something reads."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib

import yaml

from config.settings import Settings
from tests.support.processes import ROOT

THIRD_PARTY_VARIABLES = {
    "FLOWER_BASIC_AUTH": "Flower reads each of its options from FLOWER_<OPTION>",
    "POSTGRES_DB": "the postgres image creates this database at its first start",
    "POSTGRES_USER": "the postgres image creates this user at its first start",
    "POSTGRES_PASSWORD": "the postgres image sets this user's password at its first start",
}
"""Variables the deployment files pass to a program that is not ours, and who reads them."""


def installed_packages() -> set[str]:
    """Top-level packages `pip install .` installs (pyproject's find.include, patterns stripped)."""
    found = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    return {pattern.rstrip("*").rstrip(".") for pattern in found["include"]}


def dockerfile_lines() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined."""
    return (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def procfile_commands() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))


def our_commands() -> list[str]:
    """Every command of the app image in docker-compose.yml, and every command of the Procfile but Redis's."""
    services = compose()["services"]
    commands = [s["command"] for s in services.values() if s.get("image") == "cosmos-sms:latest"]
    commands += [c for name, c in procfile_commands().items() if name != "redis"]
    return commands


def help_argv(command: str) -> list[str]:
    """The command's program and subcommands (up to the first `--option`; leading VAR=value dropped), then --help."""
    words = [w for w in shlex.split(command) if not re.fullmatch(r"[A-Z_]+=.*", w)]
    head = [w for w in words[: next((i for i, w in enumerate(words) if w.startswith("--")), len(words))]]
    program = {"cosmos-sms": [sys.executable, "-m", "cli.main"], "celery": [sys.executable, "-m", "celery"]}
    return [*program[head[0]], *head[1:], "--help"]


def variables_the_code_reads() -> set[str]:
    names = {field.alias for field in Settings.model_fields.values() if field.alias}
    for package in installed_packages():
        for path in (ROOT / package).rglob("*.py"):
            names |= set(re.findall(r"""environ(?:\.get)?\(?\[?\s*["']([A-Z_][A-Z0-9_]*)["']""", path.read_text()))
    return names


def test_the_image_copies_every_installed_package_and_installs_the_tested_versions():
    copied = {line.split()[1] for line in dockerfile_lines() if line.startswith("COPY ")}
    missing = installed_packages() - copied
    assert not missing, f"the Dockerfile does not copy {sorted(missing)}"
    assert "constraints.txt" in " ".join(line for line in dockerfile_lines() if line.startswith("COPY "))
    [install] = [line for line in dockerfile_lines() if "pip install" in line]
    assert "-c constraints.txt" in install, install


def test_every_command_of_compose_and_the_procfile_answers_help():
    commands = our_commands()
    assert len(commands) >= 8, commands  # compose: worker, webhook, flower, console, sandbox; Procfile likewise
    argvs = sorted({tuple(help_argv(c)) for c in commands})  # compose and the Procfile share most of them
    procs = [subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for argv in argvs]
    for argv, proc in zip(argvs, procs):
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0 and b"Usage" in out, (argv, out.decode(errors="replace")[-2000:])


def test_every_variable_the_deployment_files_pass_is_read_by_someone():
    passed: set[str] = set()
    for service in compose()["services"].values():
        passed |= set(service.get("environment") or {})
    for line in (ROOT / ".env.example").read_text().splitlines():
        if re.match(r"^#?\s*[A-Z_][A-Z0-9_]*=", line):
            passed.add(line.lstrip("# ").split("=", 1)[0])
    passed -= {"COSMOS_STACK_REDIS_URL"}  # read by docker compose itself (the stack's REDIS_URL)
    unread = passed - variables_the_code_reads() - set(THIRD_PARTY_VARIABLES)
    assert not unread, f"passed but read by nothing: {sorted(unread)}"
