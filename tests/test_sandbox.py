"""sandbox.py: the API, the verdicts, the output checker and the CLI (its speed: bench/sandbox.py).
Hostile programs (isolation) are in test_sandbox_hostile.py."""
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import sandbox
from sandbox import OUTPUT_LIMIT, SKIP, STDERR_KEEP, Sandbox, Test, TestResult, outputs_match, run_tests

ROOT = Path(__file__).resolve().parents[1]
ADD = "a, b = map(int, input().split())\nprint(a + b)\n"


@pytest.fixture(scope="module")
def sb():
    with Sandbox(workers=2) as pool:
        yield pool


def one(sb, code, test, **kw) -> TestResult:
    return sb.run_tests(code, [test], **{"time_limit": 2.0, **kw})[0]


# ---------------------------------------------------------------- the checker

@pytest.mark.parametrize("expected, actual", [
    ("3\n", "3"),                       # trailing newline
    ("1 2\n3\n", "\n\n1   2\n\n3\n\n"),  # extra blank lines and spaces
    ("", ""), ("", "\n \n"),            # empty output
    ("YES", "yes"), ("Impossible", "IMPOSSIBLE"),  # case-insensitive words
    ("1e5", "100000.0"), ("100000", "1e5"), ("0.5", ".5"), ("5", "5."),
    ("-0", "0"), ("+7", "7"), ("007", "7"), ("-0.0", "0"),
    ("1.0", "1.000009"), ("1000000", "1000009.0"),  # 1e-5 absolute / relative
    ("123456789012345678901234567890", "123456789012345678901234567890"),
    ("9" * 5000, "9" * 5000),           # beyond int()'s 4300-digit limit
    ("nan", "NaN"), ("inf", "INF"),     # words, compared as words
])
def test_outputs_match(expected, actual):
    assert outputs_match(expected, actual)
    assert outputs_match(actual, expected)


@pytest.mark.parametrize("expected, actual", [
    ("3", ""), ("", "3"), ("1 2", "1 2 3"), ("1 2", "12"),
    ("3", "4"), ("YES", "NO"), ("1.0", "1.0001"), ("1000000", "1000100.0"),
    ("123456789012345678901234567890", "123456789012345678901234567891"),  # ints: exact
    ("9" * 5000, "9" * 4999 + "8"), ("1", "-1"), ("0", "1e-3"),
    ("nan", "1"), ("nan", "0"), ("inf", "1e400"), ("1_000", "1000"), ("0x10", "16"),
])
def test_outputs_differ(expected, actual):
    assert not outputs_match(expected, actual)
    assert not outputs_match(actual, expected)


def test_test_needs_exactly_one_expectation():
    with pytest.raises(ValueError):
        Test(input="1")
    with pytest.raises(ValueError):
        Test(output="1", check="assert True")


# ------------------------------------------------------------------ verdicts

def test_stdin_stdout_verdicts(sb):
    results = sb.run_tests(ADD, [Test("1 2\n", "3\n"), Test("2 2\n", "5\n"), Test("x\n", "1\n")], time_limit=2)
    assert [r.verdict for r in results] == ["AC", "WA", "RE"]
    assert results[0].stdout == "3\n" and results[0].exit_code == 0 and 0 < results[0].time < 1
    assert results[1].stdout == "4\n" and results[1].passed is False
    re_ = results[2]
    assert re_.exit_code == 1 and "ValueError" in re_.message
    assert 'File "solution.py", line 1' in re_.stderr and "a, b = map(int" in re_.stderr  # source lines shown
    assert "sandbox.py" not in re_.stderr  # no harness frames in the traceback


def test_compile_error_is_reported_before_anything_runs(sb):
    code = "print('side effect')\ndef f(:\n    pass\n"
    results = sb.run_tests(code, [Test("", "x"), Test(check="assert True")], time_limit=2)
    assert [r.verdict for r in results] == ["CE", "CE"]
    assert "SyntaxError" in results[0].message and "line 2" in results[0].message
    assert results[0].stdout == "" and results[0].exit_code is None
    assert results[0].stderr == results[0].message  # as python would print it: feedback reads stderr
    assert one(sb, "x = '\0'", Test("", "")).verdict == "CE"  # null byte


def test_time_limit_is_cpu_time(sb):
    """Bounds on CPU time, which load does not stretch; wall time only from below."""
    r = one(sb, "while True: pass", Test("", ""), time_limit=0.5)
    assert r.verdict == "TLE" and r.message == "Execution took too long."
    assert 0.5 <= r.time < 1.5
    # sleeping costs no CPU: not TLE, wall above CPU
    r = one(sb, "import time; time.sleep(0.3); print(1)", Test("", "1"), time_limit=0.5)
    assert r.verdict == "AC" and r.time < 0.2 and r.wall >= 0.3
    # the wall-clock backstop (3 * limit + 1 s) ends a program that only sleeps, long before its 60 s
    r = one(sb, "import time; time.sleep(60)", Test("", ""), time_limit=0.2)
    assert r.verdict == "TLE" and r.time < 0.2 and 1.6 <= r.wall < 30


def test_finishing_over_the_limit_is_tle(sb):
    code = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass\nprint(1)"
    assert one(sb, code, Test("", "1"), time_limit=0.5).verdict == "TLE"


def test_memory_limit(sb):
    r = one(sb, "x = [0] * (400 << 20)", Test("", ""), memory_limit_mb=256)
    assert r.verdict == "MLE" and r.message == "Out of memory."
    r = one(sb, "x = []\nwhile True: x.append(' ' * 10**6)", Test("", ""), memory_limit_mb=256)
    assert r.verdict == "MLE"
    assert one(sb, "x = bytearray(100 << 20); print(len(x))", Test("", str(100 << 20)),
               memory_limit_mb=256).verdict == "AC"


def test_output_limit(sb):
    r = one(sb, "while True: print('x' * 1000)", Test("", ""))
    assert r.verdict == "OLE" and r.time < 1  # killed at the limit, not run on to its 2 s of CPU
    assert len(r.stdout) <= OUTPUT_LIMIT
    r = one(sb, "import sys\nwhile True: sys.stderr.write('y' * 1000)", Test("", ""))
    assert r.verdict == "OLE" and len(r.stderr) <= STDERR_KEEP


def test_exit_status_semantics(sb):
    assert one(sb, "print(3); exit()", Test("", "3")).verdict == "AC"  # site's exit() exists
    assert one(sb, "import sys; print(3); sys.exit(0)", Test("", "3")).verdict == "AC"
    r = one(sb, "import sys; print(3); sys.exit(3)", Test("", "3"))
    assert r.verdict == "RE" and r.exit_code == 3 and r.message == "Exit status 3."
    r = one(sb, "import sys; sys.exit('bad input')", Test("", ""))
    assert r.verdict == "RE" and r.exit_code == 1 and "bad input" in r.stderr
    r = one(sb, "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", Test("", ""))
    assert r.verdict == "RE" and r.exit_code == -11 and "SIGSEGV" in r.message


def test_stdin_eof_fails_fast(sb):
    r = one(sb, "while True: input()", Test("1\n2\n", ""))  # (a read that blocked would end TLE)
    assert r.verdict == "RE" and "EOFError" in r.message
    code = "import sys\na = sys.stdin.read()\nb = sys.stdin.read()\nprint(len(a), len(b))"
    assert one(sb, code, Test("hello\n", "6 0")).verdict == "AC"


def test_output_text(sb):
    r = one(sb, "import sys; sys.stdout.buffer.write(b'ok \\xff\\xfe\\n')", Test("", "x"))
    assert r.stdout == "ok \ufffd\ufffd\n"  # invalid UTF-8 replaced, never an exception
    code = "import sys\nfor i in range(20000): sys.stderr.write(f'{i:09d}\\n')\nprint(1)"
    r = one(sb, code, Test("", "1"))
    assert r.verdict == "AC" and len(r.stderr.encode()) == STDERR_KEEP
    assert r.stderr.endswith("000019999\n")  # the tail, where tracebacks are
    assert one(sb, "print(input()[::-1])", Test("héllo ✓\n", "✓ olléh")).verdict == "AC"


def test_large_input_and_output(sb):
    data = "\n".join(str(i) for i in range(500_000)) + "\n"
    code = "import sys\nxs = sys.stdin.read().split()\nsys.stdout.write('\\n'.join(reversed(xs)))"
    expected = "\n".join(reversed(data.split()))
    r = one(sb, code, Test(data, expected))
    assert r.verdict == "AC" and len(r.stdout) == len(expected)


def test_common_program_shapes(sb):
    threaded = ("import threading, sys\nsys.setrecursionlimit(10**6)\nthreading.stack_size(1 << 26)\n"
                "def f(n): return 0 if n == 0 else 1 + f(n - 1)\n"
                "def main(): print(f(int(input())))\nthreading.Thread(target=main).start()\n")
    assert one(sb, threaded, Test("50000\n", "50000")).verdict == "AC"  # waits for the thread
    at_exit = "import atexit, io, sys\nout = io.StringIO()\natexit.register(lambda: sys.__stdout__.write(out.getvalue()))\nout.write('42')"
    assert one(sb, at_exit, Test("", "42")).verdict == "AC"  # atexit runs, like python does
    main = "def main():\n    print(sum(map(int, input().split())))\nif __name__ == '__main__':\n    main()"
    assert one(sb, main, Test("1 2 3", "6")).verdict == "AC"
    files = "open('a.txt', 'w').write('hi')\nimport os, tempfile\nprint(open('a.txt').read(), os.getcwd().startswith('/'))"
    assert one(sb, files, Test("", "hi True")).verdict == "AC"  # the working directory is writable
    imports = "import heapq, bisect, collections, itertools, functools, math, fractions, decimal, re, random, json\nprint('ok')"
    assert one(sb, imports, Test("", "ok")).verdict == "AC"


def test_workers_do_not_load_threading():
    """Performance regression guard: threading's at-fork hooks would touch ~120
    pages in every child (see the comment at the top of sandbox.py)."""
    r = run_tests("import sys\nprint(sorted(m for m in ('threading', 'random', 'subprocess', 'dataclasses') if m in sys.modules))",
                  [Test("", "[]")])
    assert r[0].verdict == "AC", r[0].stdout


# ------------------------------------------------------- function-call tests

def test_function_call_tests(sb):
    code = "def add(a, b):\n    return a + b\n"
    results = sb.run_tests(code, [Test(check="assert add(1, 2) == 3"),
                                  Test(check="def check(candidate):\n    assert candidate(2, 2) == 5\ncheck(add)"),
                                  Test(check="assert add('a', 1) == 'a1'")], time_limit=2)
    assert [r.verdict for r in results] == ["AC", "WA", "RE"]
    assert "assert candidate(2, 2) == 5" in results[1].message  # the failing assertion, for feedback
    assert "TypeError" in results[2].message
    assert one(sb, "def add(a, b): return [a, (b, {a: {b}})]",
               Test(check="assert add(1, 2) == [1, (2, {1: {2}})]")).verdict == "AC"


def test_function_call_test_with_stdin_and_helpers(sb):
    code = "import math\nN = int(input())\ndef f(x):\n    return math.isqrt(x) * N\n"
    assert one(sb, code, Test("3\n", check="assert f(16) == 12")).verdict == "AC"
    # the check may call any of the program's functions; they return plain values
    code = "from collections import Counter\ndef hist(s):\n    return Counter(s)\n"
    assert one(sb, code, Test(check="assert hist('aab') == {'a': 2, 'b': 1}")).verdict == "AC"


def test_check_code_that_does_not_compile_is_not_the_programs_fault(sb):
    r = one(sb, "def f(): return 1", Test(check="assert f( == 1"))
    assert r.verdict == "SE" and "SyntaxError" in r.message


# ------------------------------------------------------------- the pool

def test_stop_on_failure(sb):
    tests = [Test("1 1", "2"), Test("1 1", "3"), Test("2 2", "4")]
    results = sb.run_tests(ADD, tests, time_limit=2, stop_on_failure=True)
    assert [r.verdict for r in results] == ["AC", "WA", SKIP]
    assert results[2].exit_code is None and "not run" in results[2].message.lower()
    assert [r.verdict for r in sb.run_tests(ADD, tests, time_limit=2)] == ["AC", "WA", "AC"]


def test_map_keeps_order_and_runs_in_parallel(sb):
    jobs = [(f"print({i} * int(input()))", [Test("2", str(2 * i)), Test("3", str(3 * i))]) for i in range(40)]
    jobs.append(("def (", [Test("", "")]))
    jobs.append(("print(1)", []))
    out = sb.map(jobs, time_limit=2)
    assert [[r.verdict for r in rs] for rs in out[:40]] == [["AC", "AC"]] * 40
    assert out[40][0].verdict == "CE" and out[41] == []
    # on a 2-worker pool two programs run at once: each is still running when the other
    # starts (CLOCK_MONOTONIC is the machine's; a loaded machine only stretches both)
    nap = "import sys, time\nt = time.monotonic()\ntime.sleep(0.3)\nprint(1)\nprint(t, time.monotonic(), file=sys.stderr)"
    out = sb.map([(nap, [Test("", "1")])] * 2, time_limit=2)
    assert all(rs[0].verdict == "AC" for rs in out)
    (start_a, end_a), (start_b, end_b) = [map(float, rs[0].stderr.split()) for rs in out]
    assert start_a < end_b and start_b < end_a


def test_thread_safe_callers(sb):
    results = {}

    def call(i):
        results[i] = sb.run_tests(f"print({i})", [Test("", str(i))] * 3, time_limit=2)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.verdict == "AC" for i in range(8) for r in results[i])


def test_half_the_cpu_limit_under_load_is_accepted():
    """More parallel jobs than cores: each program gets less than a core, but
    its CPU time is what counts, so one that uses half its limit is still AC."""
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass\nprint(1)"
    with Sandbox(workers=2 * (os.cpu_count() or 1)) as pool:
        out = pool.map([(burn, [Test("", "1")])] * (4 * (os.cpu_count() or 1)), time_limit=1.0)
    assert [rs[0].verdict for rs in out] == ["AC"] * len(out)
    assert all(0.5 <= rs[0].time < 1.0 for rs in out)


def test_sandbox_error_is_distinguishable_and_recovers():
    """The worker dies mid-execution: SE (not the program's fault), then a fresh
    worker serves the next program."""
    with Sandbox(workers=1) as pool:
        worker = pool._workers[0]
        killer = threading.Timer(0.5, lambda: worker.proc.kill())
        killer.start()
        r = pool.run_tests("import time; time.sleep(3)", [Test("", "")], time_limit=2)[0]
        assert r.verdict == "SE" and "sandbox" in r.message
        assert pool.run_tests(ADD, [Test("1 2", "3")])[0].verdict == "AC"


def test_default_pool_and_isolation_report():
    assert run_tests(ADD, [Test("2 3", "5")])[0].verdict == "AC"
    pool = sandbox._default
    iso = pool.isolation
    assert set(iso) == {"mode", "user_namespace", "mount_namespace", "pid_namespace", "network_namespace",
                        "ipc_namespace", "private_root", "unprivileged_uid", "landlock", "seccomp", "cgroup",
                        "memory_cgroup", "pids_cgroup", "cgroup_kill", "lost", "reason"}
    assert iso["mode"] in ("namespaces", "landlock")  # the default pool never runs unisolated
    assert iso["cgroup"] in ("v1", "v2", "hybrid", "none") and isinstance(iso["lost"], (list, tuple))
    assert pool.describe().startswith("sandbox: ") and ("LOST" in pool.describe()) == bool(iso["lost"])
    if iso["mode"] == "namespaces":
        assert all(iso[k] for k in ("mount_namespace", "pid_namespace", "network_namespace", "private_root"))
        assert iso["user_namespace"] == (os.geteuid() != 0) and iso["reason"] == ""
    else:
        assert iso["landlock"] >= 1 and iso["seccomp"] and iso["reason"].startswith("namespaces: ")
    if os.geteuid() == 0:
        assert iso["unprivileged_uid"] and len(set(pool.uids)) == len(pool.uids)


MOUNTS_V1 = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
"""
MOUNT_V2 = "41 23 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n"


@pytest.mark.parametrize("mountinfo, cgroup, expected", [
    (MOUNTS_V1, "4:memory:/a/b\n1:cpu:/\n0::/\n", ("v1", "/sys/fs/cgroup/memory/a/b", None, None)),
    (MOUNTS_V1 + MOUNT_V2, "4:memory:/a\n0::/user.slice/x.scope\n",  # systemd's hybrid
     ("hybrid", "/sys/fs/cgroup/memory/a", "/sys/fs/cgroup/unified/user.slice/x.scope", "/sys/fs/cgroup/unified")),
    ("29 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "0::/\n",
     ("v2", None, "/sys/fs/cgroup", "/sys/fs/cgroup")),
    # v1 lines for hierarchies that this mount namespace does not show count for nothing
    ("29 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "4:memory:/x\n0::/job/step\n",
     ("v2", None, "/sys/fs/cgroup/job/step", "/sys/fs/cgroup")),
    # a bind of a subtree (as container runtimes do): paths are relative to its root
    ("29 1 0:26 /job /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "0::/job/step\n",
     ("v2", None, "/sys/fs/cgroup/step", "/sys/fs/cgroup")),
    ("29 1 0:26 /job /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "0::/other\n", ("v2", None, None, "/sys/fs/cgroup")),
    ("22 1 0:5 / /proc rw - proc proc rw\n", "0::/\n", ("none", None, None, None)),
    (r"29 1 0:26 / /sys/fs/with\040space rw - cgroup2 cgroup2 rw" + "\n", "0::/\n",
     ("v2", None, "/sys/fs/with space", "/sys/fs/with space")),
])
def test_cgroup_hierarchies_are_recognised(mountinfo, cgroup, expected):
    assert sandbox._cgroups(mountinfo, cgroup) == expected


def test_cgroup_v2_tree_goes_beside_the_callers_cgroup():
    """Our own cgroup if it is the hierarchy's root, else its parent: a cgroup that
    holds processes (the caller) cannot hand controllers to children."""
    assert sandbox._v2_base("/sys/fs/cgroup", "/sys/fs/cgroup") == "/sys/fs/cgroup"
    assert sandbox._v2_base("/sys/fs/cgroup/app.slice/run.scope/main", "/sys/fs/cgroup") == \
        "/sys/fs/cgroup/app.slice/run.scope"


def test_closed_sandbox_refuses_work():
    pool = Sandbox(workers=1)
    pool.close()
    with pytest.raises(RuntimeError):
        pool.run_tests(ADD, [Test("1 2", "3")])


# ------------------------------------------------------------------ the CLI

def test_cli(tmp_path):
    (tmp_path / "sol.py").write_text(ADD)
    (tmp_path / "tests.json").write_text(json.dumps(
        [{"input": "1 2\n", "output": "3\n"}, {"input": "2 2\n", "output": "5\n"}]))
    cli = [sys.executable, str(ROOT / "sandbox.py"), str(tmp_path / "sol.py")]
    p = subprocess.run(cli + ["--tests", str(tmp_path / "tests.json")], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p.stderr
    assert "test 1: AC" in p.stdout and "test 2: WA" in p.stdout and "expected: '5\\n'" in p.stdout
    assert "1/2 passed" in p.stdout
    (tmp_path / "a.in").write_text("5 6\n")
    (tmp_path / "a.out").write_text("11\n")
    p = subprocess.run(cli + ["--input", str(tmp_path / "a.in"), "--output", str(tmp_path / "a.out")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "test 1: AC" in p.stdout and "1/1 passed" in p.stdout
    (tmp_path / "cc.json").write_text(json.dumps({"input": ["1 1\n", "x\n"], "output": ["2\n", "0\n"]}))
    p = subprocess.run(cli + ["--tests", str(tmp_path / "cc.json"), "--stop-on-failure"],
                       capture_output=True, text=True, timeout=60)
    assert "test 2: RE" in p.stdout and "ValueError" in p.stdout


def test_stale_worker_cgroups_are_removed():
    """A worker killed from outside cannot remove its memory cgroup; the next
    worker to start removes every such empty leftover (rmdir refuses live ones)."""
    version, memory, _, _ = sandbox._cgroups(Path("/proc/self/mountinfo").read_text(),
                                             Path("/proc/self/cgroup").read_text())
    if os.geteuid() != 0 or memory is None or not os.access(memory, os.W_OK):
        pytest.skip("no writable cgroup v1 memory hierarchy (cgroup v2: test_sandbox_modes.py)")
    path = sandbox._v1_memory_path(memory, 12345)
    os.makedirs(path, exist_ok=True)
    with Sandbox(workers=1) as pool:
        assert pool.isolation["memory_cgroup"]
        assert not os.path.exists(path)


def test_the_programs_syntax_warnings_stay_off_the_callers_console(sb, capfd):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning would even turn into a CE here
        [r] = sb.run_tests("x = [1, 2]\nif False:\n    print(1[0])\nprint('\\d')\n", [Test(input="", output="\\d\n")])
    assert r.verdict == "AC"
    assert "SyntaxWarning" not in capfd.readouterr().err


def test_emptying_a_hostile_working_folder():
    """The landlock mode's working folder is on the host and emptied by the worker:
    whatever a program left there goes, at any depth (no recursion), through folders
    it made unreadable, without following its symlinks out."""
    import tempfile
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None  # rmdir can take ms on a busy disk
    with tempfile.TemporaryDirectory(dir=shm) as scratch:
        folder, outside = Path(scratch, "w"), Path(scratch, "outside")
        folder.mkdir(), outside.mkdir()
        (outside / "keep.txt").write_text("mine")
        fd = os.open(folder, os.O_RDONLY)
        for _ in range(1500):  # deeper than Python's recursion limit
            os.mkdir("d", dir_fd=fd)
            fd, previous = os.open("d", os.O_RDONLY, dir_fd=fd), fd
            os.close(previous)
        os.close(fd)
        for name in (".rlef-1", ".rlef-2", "closed"):  # names _empty moves entries to, taken
            (folder / name).mkdir()
            (folder / name / "f").write_text("x")
        os.chmod(folder / "closed", 0)
        (folder / "link").symlink_to(outside)
        (folder / "d" / "link").symlink_to(outside / "keep.txt")
        sandbox._empty(str(folder))
        assert os.listdir(folder) == [] and (outside / "keep.txt").read_text() == "mine"
