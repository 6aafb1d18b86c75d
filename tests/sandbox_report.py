"""What the sandbox holds on this machine, as one JSON line: its mode, what it
claims, what it loses, and, where each execution gets a cgroup v2 of its own,
evidence from that cgroup's files that its limits act:

  memory.max       six processes of 150 MiB each, each within its 256 MiB address
                   space, together over memory.max (256 + 256 MiB): an OOM kill that
                   memory.events counts, and the verdict MLE
  pids.max         a fork bomb: pids.events counts the forks refused at pids.max (none
                   where RLIMIT_NPROC, also 64, binds first: a uid per worker; under
                   confine.py root-one-uid, root's programs, pids.max alone binds)
  cgroup.kill      a daemon that outlives its program: the cgroup is empty after

    python tests/sandbox_report.py [LABEL]      (also under tests/confine.py CONDITION --)
"""
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox import Sandbox, Test  # noqa: E402

MEMORY_BOMB = """
import os, time
kids = []
for _ in range(6):
    pid = os.fork()
    if pid == 0:
        block = b"x" * (150 << 20)
        time.sleep(1)
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.waitpid(pid, 0)
"""
FORK_BOMB = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
DAEMON = "import os, time\nif os.fork() == 0:\n    time.sleep(60)\nprint(1)\n"


def counter(path: Path, name: str) -> int:
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        if key == name:
            return int(value)
    return 0


def run_cgroup(sb) -> Path | None:
    """The cgroup of the executions: beside the worker's own, from /proc."""
    supervisor = sb._workers[0].proc.pid
    worker = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()[0]
    path = Path(f"/proc/{worker}/cgroup").read_text().splitlines()[-1].split(":", 2)[2]
    mount = next(line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
                 if line.split(" - ")[1].startswith("cgroup2 "))
    run = Path(mount + path).parent / "run"
    return run if run.is_dir() else None


def main() -> None:
    out = {"label": sys.argv[1] if len(sys.argv) > 1 else "here", "uid": os.geteuid()}
    try:
        sb = Sandbox(workers=1)
    except Exception as e:  # IsolationError among others: the report says so
        out["error"] = f"{type(e).__name__}: {str(e)[:400]}"
        print(json.dumps(out))
        return
    with sb:
        iso = sb.isolation
        out["describe"] = sb.describe()
        out["claims"] = {k: v for k, v in iso.items() if k not in ("lost", "reason", "describe")}
        run = run_cgroup(sb) if iso["cgroup"] == "v2" and iso["cgroup_kill"] else None
        if run is not None:
            out["run cgroup"] = str(run)
            if iso["memory_cgroup"]:
                before = counter(run / "memory.events", "oom_kill")
                r = sb.run_tests(MEMORY_BOMB, [Test("", "")], time_limit=5, memory_limit_mb=256)[0]
                out["memory.max"] = {"value": (run / "memory.max").read_text().strip(), "verdict": r.verdict,
                                     "oom_kill": counter(run / "memory.events", "oom_kill") - before,
                                     "memory.swap.max": (run / "memory.swap.max").read_text().strip()
                                     if (run / "memory.swap.max").exists() else "absent"}
            if iso["pids_cgroup"]:
                before = counter(run / "pids.events", "max")
                r = sb.run_tests(FORK_BOMB, [Test("", "")], time_limit=0.5)[0]
                out["pids.max"] = {"value": (run / "pids.max").read_text().strip(), "verdict": r.verdict,
                                   "forks refused": counter(run / "pids.events", "max") - before}
            r = sb.run_tests(DAEMON, [Test("", "1")], time_limit=2)[0]
            out["cgroup.kill"] = {"verdict": r.verdict, "left in run": (run / "cgroup.procs").read_text().split()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
