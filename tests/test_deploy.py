"""The deployment kit: compose.yaml, the systemd units, constraints.txt and the Dockerfile. Docker
and systemd do not run here: the files are parsed, and each command they run is parsed by the real
CLI (the same options and arguments `govqa` would take)."""

import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from bot.cli import main

from .conftest import REPO

UNITS = REPO / "deploy" / "systemd"
ROLES = {"api": ["serve"], "telegram": ["telegram"], "watch": ["ingest", "--watch"]}


def _parses(argv: list[str]) -> None:
    """`govqa ARGV` is a command the CLI accepts (parsed, not run)."""
    assert argv[0] == "govqa", argv
    name, *rest = argv[1:]
    command = main.commands[name]
    command.make_context(name, list(rest), parent=main.make_context("govqa", [name]))


def test_compose_roles_share_one_volume_with_fitting_health_checks():
    compose = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) == set(ROLES)
    for role, words in ROLES.items():
        s = services[role]
        command = s["command"]
        assert command[1:1 + len(words)] == words, role
        _parses(command)
        assert "${GOVQA_DATA:-./data}:/data" in s["volumes"], role
        assert s["environment"]["GOVQA_INDEX__DIR"] == "/data/index", role
        assert s["build"] == "." and s["restart"] == "unless-stopped"
        test = s["healthcheck"]["test"]
        assert test[0] == "CMD" and test[1] == "python"
    assert "/readyz" in services["api"]["healthcheck"]["test"][-1]
    assert "${GOVQA_REPORTS:-./reports}:/reports:ro" in services["watch"]["volumes"]
    assert services["watch"]["command"][-1] == "/reports"
    for role in ("telegram", "watch"):  # no HTTP port: the process is checked
        code = services[role]["healthcheck"]["test"][-1]
        assert "/proc/1/" in code
        compile(code, role, "exec")  # the check is valid Python
    assert services["telegram"]["profiles"] == ["telegram"]


@pytest.mark.parametrize("role", sorted(ROLES))
def test_systemd_unit(role):
    path = UNITS / f"govqa-{role}.service"
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str
    unit.read_string(path.read_text(encoding="utf-8"))
    assert unit.sections() == ["Unit", "Service", "Install"]
    service = unit["Service"]
    argv = shlex.split(service["ExecStart"])
    assert argv[0] == "/opt/govqa/venv/bin/govqa"
    _parses(["govqa", *argv[1:]])
    assert argv[1:1 + len(ROLES[role])] == ROLES[role] and "--config" in argv
    assert service["User"] == "govqa" and service["Restart"] == "on-failure"
    assert "GOVQA_INDEX__DIR=/var/lib/govqa/index" in service["Environment"]  # all three: one index
    assert service["EnvironmentFile"] == "-/etc/govqa/govqa.env"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verifies_the_units(tmp_path):
    """systemd's own check, with ExecStart pointed at this environment's govqa (it must exist)."""
    govqa = shutil.which("govqa", path=str(Path(sys.executable).parent)) or shutil.which("govqa")
    if govqa is None:
        pytest.skip("no govqa executable to point the units at")
    for path in UNITS.glob("*.service"):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8").replace("/opt/govqa/venv/bin/govqa", govqa))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", *sorted(str(p) for p in tmp_path.iterdir())],
                       capture_output=True, text=True, timeout=120)
    problems = [line for line in (r.stdout + r.stderr).splitlines() if str(tmp_path) in line]
    assert r.returncode == 0 and not problems, r.stdout + r.stderr


def test_constraints_pin_every_base_dependency():
    """constraints.txt pins exactly what the base package installs (a new dependency in
    pyproject.toml needs `python deploy/make_constraints.py > constraints.txt`). In an environment
    installed with other versions (without -c constraints.txt) only the direct dependencies are
    checked: other versions may pull in other packages."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    sys.path.insert(0, str(REPO / "deploy"))
    try:
        from make_constraints import closure
    finally:
        sys.path.remove(str(REPO / "deploy"))
    lines = [line for line in (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines()
             if line and not line.startswith("#")]
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9._-]*==[^\s=]+", line) for line in lines), lines
    pins = dict(line.split("==") for line in lines)
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    direct = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]
              if Requirement(r).marker is None or Requirement(r).marker.evaluate()}
    assert direct <= set(pins), f"not pinned: {sorted(direct - set(pins))}"
    installed = closure()
    if all(installed.get(name) == version for name, version in pins.items()):
        assert set(pins) == set(installed), "constraints.txt is out of date: run deploy/make_constraints.py"


def test_dockerfile_installs_from_the_constraints_and_drops_root():
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^COPY .*constraints\.txt", text, re.M)
    assert "pip install -c constraints.txt ." in text
    assert 'ENTRYPOINT ["govqa-entrypoint"]' in text
    entry = (REPO / "deploy" / "docker-entrypoint.sh").read_text(encoding="utf-8")
    assert "setpriv --reuid=10001" in entry and "chown -h 10001:10001" in entry
    assert subprocess.run(["sh", "-n", str(REPO / "deploy" / "docker-entrypoint.sh")]).returncode == 0


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv, as in the image")
def test_entrypoint_hands_a_root_owned_folder_to_govqa_and_drops_root():
    data = Path(tempfile.mkdtemp(prefix="govqa-entrypoint-", dir="/tmp"))  # /tmp: uid 10001 can reach it
    outside = data.parent / (data.name + "-outside")
    try:
        (data / "index").mkdir()
        (data / "index" / "CURRENT").write_text("g000001")
        outside.write_text("root's")
        (data / "link").symlink_to(outside)
        r = subprocess.run(["sh", str(REPO / "deploy" / "docker-entrypoint.sh"), "sh", "-c",
                            'id -u; id -g; touch "$GOVQA_DATA/index/new"'],
                           env={"PATH": os.environ["PATH"], "GOVQA_DATA": str(data)}, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["10001", "10001"]
        for path in (data, data / "index", data / "index" / "CURRENT", data / "index" / "new"):
            assert (path.stat().st_uid, path.stat().st_gid) == (10001, 10001), path
        assert (data / "link").lstat().st_uid == 10001 and outside.stat().st_uid == 0  # the link, not its target
    finally:
        shutil.rmtree(data, ignore_errors=True)
        outside.unlink(missing_ok=True)
