"""Pool starts at the same moment under cgroup v2: how many fail because of each other.

On the lent GPU machine (root, cgroup v2 alone, 16 cores) one Sandbox(workers=2)
failed to start while three other processes were starting theirs in the same
parent cgroup (docs/sandbox.md). This reproduces that machine's shape here: the
script runs itself under `tests/confine.py cgroup2` (/sys/fs/cgroup a cgroup2 mount
alone), moves itself into a fresh child of the root cgroup (the GPU machine's
caller sat in /process_api/<id>), so every worker's tree goes in the root side by
side; then, round after round, PROCESSES forked processes wait at a barrier and
start Sandbox(workers=WORKERS) at the same moment, run one stdin/stdout test and
close it. It counts pool starts that raised, and runs that did not come back AC.

    sudo .venv/bin/python bench/sandbox_starts.py                          # 8 x 8 workers, 125 rounds: 1,000 pool starts
    sudo .venv/bin/python bench/sandbox_starts.py --processes 4 --workers 4 --rounds 3

Needs root. tests/test_sandbox.py runs a few-second version of it.
"""
import argparse
import collections
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sandbox  # noqa: E402
from sandbox import Sandbox, Test  # noqa: E402

CGROUP = "/sys/fs/cgroup"


def start_one(workers: int, go: int, report: int) -> None:
    """In a forked process: wait at the barrier, start a pool, run a test, report one line."""
    os.read(go, 1)
    started = time.monotonic()
    try:
        with Sandbox(workers=workers) as sb:
            seconds = time.monotonic() - started
            r = sb.run_tests("print(input())", [Test("x\n", "x\n")], time_limit=5)[0]
            line = {"started": True, "seconds": seconds, "verdict": r.verdict, "message": r.message[-300:]}
    except Exception as e:
        line = {"started": False, "error": f"{type(e).__name__}: {e}"[-1500:]}
    os.write(report, (json.dumps(line) + "\n").encode())  # < PIPE_BUF: one atomic write


def round_of(processes: int, workers: int) -> list[dict]:
    go_r, go_w = os.pipe()
    report_r, report_w = os.pipe()
    pids = []
    for _ in range(processes):
        pid = os.fork()
        if pid == 0:
            try:
                os.close(go_w), os.close(report_r)
                start_one(workers, go_r, report_w)
            finally:
                os._exit(0)
        pids.append(pid)
    os.close(go_r), os.close(report_w)
    os.write(go_w, b"g" * processes)  # the barrier opens for all at once
    os.close(go_w)
    with open(report_r) as f:
        lines = [json.loads(line) for line in f]  # until every process has closed its end
    for pid in pids:
        os.waitpid(pid, 0)
    lost = processes - len(lines)
    return lines + [{"started": False, "error": "the process died without a report"}] * lost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=125)
    parser.add_argument("--json", help="write the counts here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("error: bench/sandbox_starts.py needs root (it mounts a cgroup2 hierarchy alone)")
    if os.environ.get("RLEF_SANDBOX_CONDITION") != "cgroup2":
        os.execv(sys.executable, [sys.executable, str(ROOT / "tests/confine.py"), "cgroup2", "--",
                                  sys.executable, __file__, *sys.argv[1:]])
    caller = f"{CGROUP}/rlef-starts-{os.getpid()}"
    os.mkdir(caller)
    Path(caller, "cgroup.procs").write_text("0")
    sandbox._worker_code()  # compiled once here, not in every forked process
    lines, began = [], time.monotonic()
    try:
        for _ in range(args.rounds):
            lines += round_of(args.processes, args.workers)
    finally:
        Path(CGROUP, "cgroup.procs").write_text(str(os.getpid()))
        os.rmdir(caller)
    failed = [line["error"] for line in lines if not line["started"]]
    not_ac = [f"{line['verdict']}: {line['message']}" for line in lines if line["started"] and line["verdict"] != "AC"]
    seconds = [line["seconds"] for line in lines if line["started"]]
    out = {"processes": args.processes, "workers": args.workers, "rounds": args.rounds,
           "pool_starts": len(lines), "failed_starts": len(failed), "runs_not_ac": len(not_ac),
           "median_start_s": statistics.median(seconds) if seconds else None,
           "wall_s": time.monotonic() - began,
           "errors": collections.Counter(e.strip().splitlines()[-1][:300] for e in failed + not_ac).most_common()}
    print(f"{out['pool_starts']} pool starts of Sandbox(workers={args.workers}), {args.processes} at once, "
          f"{args.rounds} rounds, in {out['wall_s']:.0f} s; machine: {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.1f}")
    print(f"  failed starts: {len(failed)}   runs not AC: {len(not_ac)}   median start: "
          f"{out['median_start_s'] or 0:.2f} s")
    for error, count in out["errors"]:
        print(f"  {count:5d} x {error}")
    if failed:
        print("first failure in full:\n" + failed[0])
    if args.json:
        Path(args.json).write_text(json.dumps(out))


if __name__ == "__main__":
    main()
