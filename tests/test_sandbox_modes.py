"""The sandbox on the machines users have: each condition of tests/confine.py
(unprivileged with submounts, user namespaces refused, Docker's defaults, ...),
reproduced here with no lasting change to the host. Under each, the sandbox must
pick the mode it should, say so in Sandbox.isolation, and pass the hostile suite
(tests/test_sandbox_hostile.py) in that mode, skipping only what that mode does not
claim; where nothing isolates, Sandbox() must refuse to start. All of it twice: with
the project's own interpreter as users run it (.venv/bin/python, where the README's
set-up puts it; its base Python may sit in a home of mode 700, as pyenv's and conda's
do) and with the system's python3. Needs root to set the conditions up (confine.py
does it with ctypes: no setpriv or unshare binaries). Marked slow: about two minutes
on 2 cores."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = ["sandbox.py", "pytest.ini", "tests/conftest.py", "tests/confine.py", "tests/test_sandbox.py",
         "tests/test_sandbox_hostile.py"]
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"  # the README's set-up (make install) puts it there
AS_NOBODY = ("submounts", "old-kernel", "userns-refused", "apparmor", "no-landlock", "delegated")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="setting the conditions up needs root")


@pytest.fixture(scope="module", params=["venv", "system"])
def python(request) -> tuple[str, dict, str | None]:
    """An interpreter, the environment to run it in, and the folder that keeps the user
    nobody out of its installation, if one does (pyenv or conda in /root): the
    conditions that run as nobody show that folder as nobody's own home (--home).
    The venv's Python finds pytest itself; the system's gets ours on its path."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONDONTWRITEBYTECODE": "1",
           "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    if request.param == "venv":
        assert VENV_PYTHON.exists(), "no .venv: run `make install` first"
        python = str(VENV_PYTHON)
    else:
        python = "/usr/bin/python3"
        if not os.path.exists(python):
            pytest.skip("this machine has no /usr/bin/python3")
        env["PYTHONPATH"] = str(Path(pytest.__file__).resolve().parents[1])
    real = Path(os.path.realpath(python))
    home = next((str(f) for f in reversed(real.parents) if not os.stat(f).st_mode & 0o001), None)
    return python, env, home


@pytest.fixture(scope="module")
def checkout():
    """The files the runs need, in a folder everyone may read (the repository may sit
    in a home folder that nobody cannot enter), and one they may write reports to."""
    folder = Path(tempfile.mkdtemp(prefix="rlef-modes-"))
    for name in FILES:
        (folder / name).parent.mkdir(exist_ok=True)
        shutil.copy(ROOT / name, folder / name)
    for path in [folder, *folder.rglob("*")]:
        os.chmod(path, 0o777 if path.is_dir() else 0o644)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def confined(checkout, python, condition: str, *args: str, timeout: int = 300):
    """Run `python args...` under `condition`, in the checkout; the hostile suite
    writes its Sandbox's isolation to the report."""
    python, env, home = python
    report = checkout / f"report-{condition}.json"
    report.unlink(missing_ok=True)
    where = ["--home", home] if home and condition in AS_NOBODY else []
    p = subprocess.run([python, "tests/confine.py", condition, *where, "--", python, *args], cwd=checkout,
                       env=env | {"RLEF_SANDBOX_REPORT": str(report)}, capture_output=True, text=True, timeout=timeout)
    isolation = json.loads(report.read_text()) if report.exists() else None
    return p, isolation


def may_skip(isolation: dict) -> set[str]:
    """The tests that may skip under this isolation: each tests what the mode does
    not claim (each condition's test asserts the mode and these fields)."""
    root_v1_memory = isolation["unprivileged_uid"] and isolation["cgroup"] in ("v1", "hybrid") \
        and isolation["memory_cgroup"]
    allowed = {"test_programs_run_unprivileged": not isolation["unprivileged_uid"],
               "test_proc_shows_only_the_sandbox": not isolation["pid_namespace"],
               "test_memory_of_all_processes_together": not isolation["memory_cgroup"],
               "test_stale_worker_cgroups_are_removed": not root_v1_memory}
    return {name for name, may in allowed.items() if may}


def run_suites(checkout, python, condition: str, *files: str):
    junit = checkout / f"junit-{condition}.xml"
    junit.unlink(missing_ok=True)
    p, report = confined(checkout, python, condition, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                         "-o", "addopts=", f"--junitxml={junit}", *files)
    summary = p.stdout.strip().splitlines()[-1:] if p.stdout.strip() else []
    print(f"{python[0]} {condition}: {summary} {report and report['describe']}")
    assert p.returncode == 0, p.stdout[-6000:] + p.stderr[-3000:]
    assert report is not None, p.stdout[-3000:]
    cases = list(ElementTree.parse(junit).getroot().iter("testcase"))
    names = {case.get("name").partition("[")[0] for case in cases}
    skipped = {case.get("name") for case in cases if case.find("skipped") is not None}
    print(f"  skipped: {sorted(skipped)}")
    assert len(cases) >= 40 and skipped == may_skip(report["isolation"]) & names, (skipped, report["isolation"])
    return report["isolation"]


HOSTILE = "tests/test_sandbox_hostile.py"


def test_unprivileged_with_submounts_under_usr(checkout, python):
    """GPU nodes mount driver files under /usr; in a user namespace those submounts
    are locked, and the bind of /usr failed with EINVAL. Now: namespace mode."""
    iso = run_suites(checkout, python, "submounts", HOSTILE)
    assert iso["mode"] == "namespaces" and iso["user_namespace"] and iso["private_root"]
    assert not iso["unprivileged_uid"] and iso["reason"] == ""


def test_unprivileged_kernel_without_mount_setattr(checkout, python):
    """Before Linux 5.12: each submount remounted read-only on its own, keeping its locked flags."""
    iso = run_suites(checkout, python, "old-kernel", HOSTILE)
    assert iso["mode"] == "namespaces" and iso["user_namespace"] and iso["private_root"]
    assert not iso["unprivileged_uid"] and iso["reason"] == ""


def test_user_namespaces_refused(checkout, python):
    """max_user_namespaces is 0: Landlock and seccomp instead, and the program keeps
    the caller's uid. The functional tests run there too: the seccomp filter must
    not break what programs do (threads, signals to themselves, limits...)."""
    iso = run_suites(checkout, python, "userns-refused", HOSTILE, "tests/test_sandbox.py")
    assert iso["mode"] == "landlock" and iso["landlock"] >= 1 and iso["seccomp"]
    assert not any(iso[k] for k in ("user_namespace", "mount_namespace", "pid_namespace", "unprivileged_uid"))
    assert "unshare(CLONE_NEWUSER): ENOSPC" in iso["reason"]


def test_apparmor_refuses_mounts_in_user_namespaces(checkout, python):
    """Ubuntu 23.10 and later: unshare(CLONE_NEWUSER) succeeds, what follows fails.
    The worker probes in a child, so it is not left in a useless user namespace."""
    iso = run_suites(checkout, python, "apparmor", HOSTILE)
    assert iso["mode"] == "landlock" and iso["landlock"] >= 1 and iso["seccomp"]
    assert not any(iso[k] for k in ("user_namespace", "mount_namespace", "pid_namespace", "unprivileged_uid"))
    assert "EPERM" in iso["reason"]


def test_docker_defaults(checkout, python):
    """Root without CAP_SYS_ADMIN, namespaces and mounts refused by seccomp: Landlock
    and seccomp, and a uid of its own per worker. Where that uid cannot read the
    Python installation (pyenv or conda in /root, mode 700: the venv's Python here),
    this mode was refused; its programs now keep CAP_DAC_OVERRIDE alone (the hostile
    suite checks their capabilities), and the report says what that loses."""
    iso = run_suites(checkout, python, "docker", HOSTILE, "tests/test_sandbox.py")
    assert iso["mode"] == "landlock" and iso["landlock"] >= 1 and iso["seccomp"] and iso["unprivileged_uid"]
    assert not any(iso[k] for k in ("user_namespace", "mount_namespace", "pid_namespace"))
    assert "unshare(CLONE_NEWNS): EPERM" in iso["reason"]
    home = python[2]  # the folder that keeps other users out of the installation
    assert any("CAP_DAC_OVERRIDE" in line for line in iso["lost"]) == (home is not None)


WITHOUT_DAC_OVERRIDE = """
import ctypes, json
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(24, 1, 0, 0, 0) == 0  # CAP_DAC_OVERRIDE out of the bounding set,
header, data = (ctypes.c_uint32 * 2)(0x20080522, 0), (ctypes.c_uint32 * 6)()
libc.capget(header, data)
for i in range(3):  # and out of the effective, permitted and inheritable sets
    data[i] &= ~2
assert libc.capset(header, data) == 0
from sandbox import IsolationError, Sandbox
try:
    with Sandbox(workers=1) as sb:
        print(json.dumps(sb.isolation["mode"]))
except IsolationError as e:
    print(json.dumps(str(e)))
"""


def test_docker_defaults_without_dac_override(checkout, python):
    """Root under Docker's defaults that lacks CAP_DAC_OVERRIDE as well: where Python
    is installed where only root may read, refused, naming that cause and its fix;
    elsewhere the landlock mode as above."""
    p, _ = confined(checkout, python, "docker", "-c", WITHOUT_DAC_OVERRIDE)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    if python[2] is None:
        assert out == "landlock"
    else:
        assert "cannot read the standard library" in out and "lacks CAP_DAC_OVERRIDE" in out
        assert "where every user may read it (e.g. /usr/local or /opt)" in out


def test_cgroup_v2_as_root(checkout, python):
    """/sys/fs/cgroup a cgroup2 mount alone. Each execution in a cgroup of its own,
    emptied by cgroup.kill; memory.max and pids.max where the hierarchy has those
    controllers (not on a machine whose memory and pids are bound to v1)."""
    iso = run_suites(checkout, python, "cgroup2", HOSTILE)
    assert iso["mode"] == "namespaces" and not iso["user_namespace"] and iso["unprivileged_uid"]
    assert iso["cgroup"] == "v2" and iso["cgroup_kill"]
    p, _ = confined(checkout, python, "cgroup2", "-c", CGROUP_V2_CHECK)
    assert p.returncode == 0, p.stderr
    found = json.loads(p.stdout)
    assert found["isolation"]["memory_cgroup"] == ("memory" in found["controllers"])
    assert found["isolation"]["pids_cgroup"] == ("pids" in found["controllers"])
    assert found["daemon"] == "killed" and found["left"] == []


def test_cgroup_v2_delegated_to_an_unprivileged_user(checkout, python):
    """A user's cgroup delegated as systemd's Delegate=yes does, the caller in a leaf
    of it: the workers' cgroups go beside that leaf, and leave nothing behind."""
    iso = run_suites(checkout, python, "delegated", HOSTILE)
    assert iso["mode"] == "namespaces" and iso["user_namespace"] and not iso["unprivileged_uid"]
    assert iso["cgroup"] == "v2" and iso["cgroup_kill"]
    controllers = Path("/sys/fs/cgroup/unified/cgroup.controllers")
    if controllers.exists():  # here (hybrid): no memory or pids in the v2 hierarchy
        assert not iso["memory_cgroup"] and not iso["pids_cgroup"]
    remains = subprocess.run([sys.executable, str(checkout / "tests/confine.py"), "cgroup2", "--", "ls",
                              "/sys/fs/cgroup"], capture_output=True, text=True).stdout.split()
    assert [d for d in remains if d.startswith("rlef-")] == []


CGROUP_V2_CHECK = """
import json, os, time
from sandbox import Sandbox, Test
# the trees go beside the caller's cgroup, in the root only where the caller is there
# (on the lent GPU machine the caller was in /process_api/<id>, not in /)
own = open("/proc/self/cgroup").read().partition("0::")[2].strip()
base = "/sys/fs/cgroup" + (os.path.dirname(own) if own != "/" else "")
controllers = open(base + "/cgroup.controllers").read().split()
with Sandbox(workers=1) as sb:
    tree = [d for d in os.listdir(base) if d.startswith("rlef-sandbox-")]
    # a daemon that outlives the program; cgroup.kill must end it
    daemon = "import os, time\\nif os.fork() == 0:\\n    os.setsid()\\n    time.sleep(30)\\nprint(1)"
    r = sb.run_tests(daemon, [Test("", "1")], time_limit=2)[0]
    run = f"{base}/{tree[0]}/run"
    alive = open(run + "/cgroup.procs").read().split()
    out = {"isolation": sb.isolation, "controllers": controllers, "tree": tree,
           "daemon": "killed" if r.verdict == "AC" and not alive else f"{r.verdict} {alive}"}
for _ in range(100):  # the supervisor removes the tree once the worker is gone
    out["left"] = [d for d in os.listdir(base) if d.startswith("rlef-sandbox-")]
    if not out["left"]:
        break
    time.sleep(0.05)
print(json.dumps(out))
"""


NOTHING_ISOLATES = """
import json, warnings
import sandbox
from sandbox import IsolationError, Sandbox, Test
out = {}
try:
    Sandbox(workers=1)
except IsolationError as e:
    out["error"] = str(e)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for _ in range(2):  # warned once per process
        with Sandbox(workers=1, allow_unisolated=True) as sb:
            out["verdict"] = sb.run_tests("print(1)", [Test("", "1")])[0].verdict
            out["isolation"], out["describe"] = sb.isolation, sb.describe()
out["warnings"] = [str(w.message) for w in caught]
print(json.dumps(out))
"""


def test_nothing_isolates(checkout, python):
    """No user namespaces and no Landlock: Sandbox() refuses, naming what failed and
    the remedies; allow_unisolated=True runs anyway, warns once, and says what is lost."""
    p, _ = confined(checkout, python, "no-landlock", "-c", NOTHING_ISOLATES)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    error = out["error"]
    assert "unshare(CLONE_NEWUSER): ENOSPC" in error and "landlock_create_ruleset: ENOSYS" in error
    for remedy in ("max_user_namespaces", "apparmor_restrict_unprivileged_userns", "--cap-add SYS_ADMIN",
                   "as root", "allow_unisolated=True"):
        assert remedy in error
    assert out["verdict"] == "AC" and out["isolation"]["mode"] == "unisolated"
    assert len(out["warnings"]) == 1 and "UNISOLATED" in out["warnings"][0]
    assert "UNISOLATED" in out["describe"] and "the caller's memory" in out["describe"]
