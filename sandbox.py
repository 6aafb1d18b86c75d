"""Fast, isolated execution of untrusted Python programs on tests.

The programs come from a model under RL training, and such a model learns to
exploit whatever the harness lets it. Every defence below names the threat it
answers.

API
    Test(input="1 2\\n", output="3\\n")        stdin/stdout test
    Test(check="assert add(1, 2) == 3")        function-call test: runs after the
                                               program's top level, same interpreter
    run_tests(code, tests, time_limit=10.0, memory_limit_mb=1024,
              stop_on_failure=False) -> list[TestResult]     (a shared default pool)
    Sandbox(workers=None, allow_unisolated=False): .run_tests(...),
              .map([(code, tests), ...], ...), .isolation, .describe(), .close()
    IsolationError(RuntimeError)               Sandbox() where nothing isolates
    outputs_match(expected, actual)            the CodeContests token checker

Isolation: each worker takes the first of three modes that works here (below,
at "the worker side"): "namespaces", "landlock" (Landlock and seccomp, for
machines that refuse user namespaces or CAP_SYS_ADMIN), or "unisolated". Where
only "unisolated" works, Sandbox() raises IsolationError, whose message names the
failed calls (with errno) and the remedies; Sandbox(allow_unisolated=True) runs
anyway and warns once per process. Sandbox.isolation says what holds:
    mode                   "namespaces", "landlock" or "unisolated"
    user_namespace, mount_namespace, pid_namespace, network_namespace,
    ipc_namespace          which namespaces the programs run in
    private_root           the chroot into a read-only view (namespace mode)
    unprivileged_uid       programs run under a uid of their own (root callers)
    landlock               the Landlock ABI in force, 0 if none
    seccomp                the landlock mode's system call filter is in force
    cgroup                 the hierarchy found: "v1", "v2", "hybrid" or "none"
    memory_cgroup          memory of all of an execution's processes bounded together
    pids_cgroup            their number bounded (pids.max)
    cgroup_kill            leftovers killed by cgroup.kill
    lost                   what this mode does not protect against, in words
    reason                 why a stronger mode was not used ("" in namespace mode)
Sandbox.describe() is the same on one line, for a log.

Verdicts: AC WA TLE MLE RE OLE CE SE, and SKIP for a test that was not run because
an earlier one failed under stop_on_failure=True. CE means the program does not
compile (checked in the caller before anything runs); SE means the sandbox itself
failed. SE is never the program's doing: the child reports "ready" before any of
the program's code runs, and without that report the execution is SE.

Limits per test: `time_limit` CPU seconds of the program's process (all its
threads; checked every few ms, RLIMIT_CPU as a backstop), a wall-clock backstop of
3 * time_limit + 1 s (sleeping or blocked programs), `memory_limit_mb` of address
space per process (RLIMIT_AS, so Python raises MemoryError), and, where a memory
cgroup is available, memory_limit_mb + 256 MiB for all of a test's processes
together. MLE = an uncaught MemoryError (last stderr line) or an OOM kill in the
cgroup. At most OUTPUT_LIMIT bytes of stdout+stderr: more is OLE and the program
is killed at once. TestResult.stdout holds all of stdout (at most OUTPUT_LIMIT),
TestResult.stderr the last STDERR_KEEP bytes; both are decoded as UTF-8 with
invalid bytes replaced.

Design: three kinds of process.
    caller (e.g. the trainer; holds every test, expected outputs included)
      |  pipes: requests and replies; judging of stdout happens here
    worker: a fresh interpreter (`python -I -S -c _WORKER_BOOT`), one per core,
      |  running this file's code as the caller compiled it. It is NOT a fork of
      |  the caller, so no test data is in its memory. It sets up isolation once
      |  (namespace mode: new mount/pid/network/ipc namespaces, as pid 1 of its
      |  own, and a chroot into a read-only view of the Python install; landlock
      |  mode: a Landlock ruleset and a seccomp filter for its children), under
      |  a small supervisor that cleans up after it, and forks one child per
      |  execution.
    child: redirects stdin/stdout/stderr, sets rlimits, enters the execution's
         cgroup (v2), confines itself (landlock mode), drops to the worker's own
         unprivileged uid (unprivileged callers: drops every capability of its
         user namespace), then runs the program with exec() as __main__.
The caller compiles each program (that is the CE check) and sends the marshalled
code. The worker moves every byte of program, input, check code and output with
splice(2) between pipes and memfds: none of it ever enters the worker's address
space, so a later child, which starts as a copy of that address space, finds
nothing from earlier executions in its own memory. Expected outputs never leave
the caller. Custom checkers (problems with several valid answers) are out of scope.

Speed: a trivial stdin/stdout test costs ~1.8 ms of CPU in all (caller, worker
and child; bench/sandbox.py), against ~14 ms for a fresh interpreter per test.
Nearly all of it is the kernel's work on memory: fork() copies the worker's page
tables, the child copies each page it writes to (~3 us a page here, ~200 pages
for a trivial program, most of them for reference counts) and frees it all when
it exits. So the worker is kept small and ready before any fork: no compiler
garbage in its heap, no module only the caller needs, the C functions that
children call already resolved, and whatever every child would do alike done
once (the comments at each of these say what it saved).

Top to bottom: the public types and the judging of stdout; the caller's side
(workers, batches, the Sandbox pool); the worker's side, each mode's set-up one
class at the end of the section of its tools (namespaces: _NamespaceMode;
cgroups: _CgroupMember; Landlock and seccomp: _LandlockMode), then _Isolation,
which takes the first mode that works, and the executor, which forks a child per
execution (_Executor) and watches it and cleans up (_Supervision); the harness
that runs in the child; the command line.
docs/sandbox.md has the guarantees of each mode and the measurements.
"""
from __future__ import annotations

import _socket
import _thread
import atexit
import builtins
import functools
import marshal
import math
import os
import re
import resource
import select
import signal
import struct
import sys
import time

# Every page of the worker's heap costs each fork time (page tables to copy,
# pages to copy on write), and threading (so queue and subprocess) and random
# also run at-fork hooks in every child. So the worker loads only what it needs:
# caller-side modules are imported in the functions that use them, and the
# public types are plain classes (dataclasses would add ~3 MB to the worker).

VERDICTS = ("AC", "WA", "TLE", "MLE", "RE", "OLE", "CE", "SE")
SKIP = "SKIP"               # not run: an earlier test failed and stop_on_failure=True
OUTPUT_LIMIT = 16 << 20     # bytes of stdout + stderr one execution may write
STDERR_KEEP = 64 << 10      # the tail of stderr that comes back (tracebacks end there)
NPROC = 64                  # processes + threads per worker uid (fork bombs)
NOFILE = 64                 # open files per process
FILE_SIZE = 16 << 20        # largest file a program may write
WORKDIR_SIZE = "64m"        # the tmpfs that holds a program's working directory
CGROUP_SLACK = 256 << 20    # cgroup limit = memory_limit + this (worker, memfds, tmpfs)
_SELF = os.path.abspath(__file__)


# ----------------------------------------------------------------- public types

class Test:
    """One test: `input` is the program's stdin; then either `output` (the expected
    stdout, judged by outputs_match) or `check` (code run after the program's top
    level in the same interpreter: it passes if it raises nothing)."""
    __slots__ = ("input", "output", "check")
    __test__ = False  # not a pytest class

    def __init__(self, input: str | bytes = "", output: str | None = None, check: str | None = None):
        if (output is None) == (check is None):
            raise ValueError("a Test needs exactly one of output= or check=")
        self.input, self.output, self.check = input, output, check

    def __repr__(self) -> str:
        return f"Test(input={self.input!r}, output={self.output!r}, check={self.check!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Test) and (self.input, self.output, self.check) == (other.input, other.output, other.check)

    def __hash__(self) -> int:
        return hash((self.input, self.output, self.check))


class IsolationError(RuntimeError):
    """Sandbox() found no way to isolate programs here (no namespaces, no Landlock
    with seccomp). The message names what failed and the remedies; running anyway
    takes Sandbox(..., allow_unisolated=True)."""


class TestResult:
    """verdict: one of VERDICTS, or SKIP. time: CPU seconds (user + system) of the
    program's process. wall: wall-clock seconds. exit_code: exit status, -N if
    killed by signal N, None if it did not run. message: a short reason usable as
    feedback (the traceback for RE, the assertion for a failed check)."""
    __slots__ = ("verdict", "stdout", "stderr", "time", "wall", "exit_code", "message")
    __test__ = False

    def __init__(self, verdict: str, stdout: str = "", stderr: str = "", time: float = 0.0,
                 wall: float = 0.0, exit_code: int | None = None, message: str = ""):
        self.verdict, self.stdout, self.stderr, self.time = verdict, stdout, stderr, time
        self.wall, self.exit_code, self.message = wall, exit_code, message

    @property
    def passed(self) -> bool:
        return self.verdict == "AC"

    def __repr__(self) -> str:
        return "TestResult(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__) + ")"


# --------------------------------------------------------------------- judging

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")


def outputs_match(expected: str, actual: str) -> bool:
    """The CodeContests checker: both outputs split on whitespace (so trailing
    newlines and blank lines do not matter) must have as many tokens, and each pair
    of tokens must be equal ignoring case, or both be decimal numbers that are
    equal: integers exactly at any size ("-0" == "0"), and when either has a
    fraction or exponent, as floats within 1e-5 absolute or relative ("1e5" ==
    "100000.0"). "nan"/"inf" are words, not numbers."""
    exp, act = expected.split(), actual.split()
    return len(exp) == len(act) and all(map(_tokens_match, exp, act))


def _tokens_match(e: str, a: str) -> bool:
    if e == a or e.lower() == a.lower():
        return True
    if not (_NUMBER.fullmatch(e) and _NUMBER.fullmatch(a)):
        return False
    if _INTEGER.fullmatch(e) and _INTEGER.fullmatch(a):
        return _integer_key(e) == _integer_key(a)  # no int(): huge ints are exact
    return math.isclose(float(e), float(a), rel_tol=1e-5, abs_tol=1e-5)


def _integer_key(token: str) -> tuple[bool, str]:
    digits = token.lstrip("+-").lstrip("0")
    return (token.startswith("-") and bool(digits), digits)


def _verdict(test: Test, reply: dict, stdout: str, stderr: str, time_limit: float) -> TestResult:
    """Turn the worker's report of one execution into a TestResult."""
    if "error" in reply:
        return TestResult("SE", message="sandbox error: " + reply["error"])
    r = TestResult("SE", stdout, stderr, reply["cpu"], reply["wall"], reply["exit"])
    last = stderr.rstrip().rpartition("\n")[2]
    trace = stderr.strip()[-2000:]
    if reply["killed"] == "OLE":
        r.verdict, r.message = "OLE", f"Output limit exceeded ({OUTPUT_LIMIT} bytes)."
    elif reply["killed"] == "TLE" or r.time > time_limit:
        r.verdict, r.message = "TLE", "Execution took too long."
    elif reply["oom"] or last.startswith("MemoryError"):
        r.verdict, r.message = "MLE", "Out of memory."
    elif test.check is not None:
        r.verdict = {"passed": "AC", "failed": "WA"}.get(reply["check"], "RE")
        if r.verdict != "AC":
            r.message = trace or (f"The program exited (status {r.exit_code}) before the test ran."
                                  if reply["check"] == "not reached" else "The program exited during the test.")
    elif r.exit_code != 0:
        r.verdict = "RE"
        r.message = trace or (f"Killed by signal {signal.Signals(-r.exit_code).name}."
                              if r.exit_code < 0 else f"Exit status {r.exit_code}.")
    elif outputs_match(test.output, stdout):
        r.verdict = "AC"
    else:
        r.verdict, r.message = "WA", "Wrong answer."
    return r


_COMPILE_ERRORS = (SyntaxError, ValueError, UnicodeError, RecursionError, MemoryError, OverflowError)


def _compile(source: str, filename: str) -> bytes:
    """The marshalled code object plus the source (for tracebacks). Compiling runs
    nothing, so it happens here in the caller: it is the CE check, and a child that
    compiled would pay ~180 page faults for touching the compiler's state."""
    import warnings
    with warnings.catch_warnings():  # the program's SyntaxWarnings ("\d", `1[0]`) are not the caller's
        warnings.simplefilter("ignore")
        code = marshal.dumps(compile(source, filename, "exec", dont_inherit=True, optimize=0))
    return struct.pack("<I", len(code)) + code + source.encode()


def _compile_error(error: BaseException) -> str:
    import traceback
    return "".join(traceback.format_exception_only(type(error), error)).strip()


# ------------------------------------------------------------ pipes and frames

# Frames are marshalled dicts of numbers, strings and None: both ends are this
# file's code in the same Python (the program never holds either pipe), and
# marshal is ~5x cheaper than json and no module to load in the worker.

def _pack(header: dict) -> bytes:
    data = marshal.dumps(header)
    return struct.pack("<I", len(data)) + data


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_exact(fd: int, n: int, deadline: float | None = None, poller=None) -> bytes:
    """n bytes from fd; with a deadline, `poller` (a select.poll with fd registered)
    waits for each chunk."""
    chunks = []
    while n:
        if deadline is not None and not poller.poll(max(0.0, deadline - time.monotonic()) * 1000):
            raise TimeoutError("the worker did not answer in time")
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise EOFError("the worker closed its pipe")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _read_frame(fd: int, deadline: float | None = None, poller=None) -> dict:
    (size,) = struct.unpack("<I", _read_exact(fd, 4, deadline, poller))
    return marshal.loads(_read_exact(fd, size, deadline, poller))


# ------------------------------------------------------------------ the caller

# The worker runs this file's code as compiled here, in the caller. Compiling
# 1,200 lines in the worker would leave ~3 MB of the compiler's fragments in its
# heap: pages whose table entries every fork copies and every child tears down.
_WORKER_BOOT = """\
import marshal, os, sys
path, fd, uid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
namespace = {"__name__": "sandbox_worker", "__file__": path}
exec(marshal.loads(os.pread(fd, os.fstat(fd).st_size, 0)), namespace)
os.close(fd)
namespace["_worker_main"](uid)
"""


@functools.cache
def _worker_code() -> bytes:
    """This file, compiled and marshalled: what _WORKER_BOOT runs."""
    with open(_SELF, encoding="utf-8") as f:
        return marshal.dumps(compile(f.read(), _SELF, "exec", dont_inherit=True))


class _Worker:
    """The caller's handle on one worker process: sends executions, restarts it."""

    def __init__(self, uid: int):
        self.uid, self.proc, self.isolation, self.poller = uid, None, {}, None
        self.mode = None  # once known, a restarted worker must isolate as the first did

    def spawn(self) -> None:
        import subprocess
        # A fresh interpreter, not a fork: the caller's memory holds every test.
        # -I -S: no environment variables, no user or venv site-packages.
        # LD_BIND_NOW: the dynamic linker resolves every C function at startup, so
        # a child's first call of one (setresuid, close_range...) finds it resolved
        # instead of writing to, so copying, the library's pages in every child.
        code = os.memfd_create("sandbox-worker-code")
        try:
            _write_all(code, _worker_code())
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-B", "-c", _WORKER_BOOT, _SELF, str(code), str(self.uid)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=(code,), env={"LD_BIND_NOW": "1"},
                start_new_session=True)
        finally:
            os.close(code)
        self.poller = select.poll()  # one for the worker's life: waits for each reply
        self.poller.register(self.proc.stdout.fileno(), select.POLLIN)

    def handshake(self) -> None:
        try:
            self.isolation = _read_frame(self.proc.stdout.fileno(), time.monotonic() + 60, self.poller)
        except (EOFError, TimeoutError) as e:  # what it printed went to the caller's stderr
            proc = self.proc
            self.stop()
            code = proc.returncode
            raise RuntimeError(f"sandbox worker (pid {proc.pid}) did not start: {e}; " + (
                f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}")) from None
        if "error" in self.isolation:
            raise RuntimeError("sandbox worker failed to start: " + self.isolation["error"])
        if self.mode is not None and self.isolation["mode"] != self.mode:  # never degrade silently
            self.stop()
            raise RuntimeError(f"a restarted sandbox worker isolates by {self.isolation['mode']!r}, not "
                               f"{self.mode!r} as when the Sandbox started: {self.isolation['reason']}")
        self.mode = self.isolation["mode"]

    def execute(self, code: bytes, test: Test, check: bytes, time_limit: float, memory_limit_mb: int) -> TestResult:
        if self.proc is None:
            self.spawn()
            self.handshake()
        stdin = test.input.encode() if isinstance(test.input, str) else bytes(test.input)
        header = {"time_limit": time_limit, "memory": int(memory_limit_mb * (1 << 20)), "code": len(code),
                  "input": len(stdin), "check": -1 if test.check is None else len(check)}
        _write_all(self.proc.stdin.fileno(), _pack(header) + code + stdin + check)
        fd, deadline = self.proc.stdout.fileno(), time.monotonic() + 3 * time_limit + 60
        reply = _read_frame(fd, deadline, self.poller)
        if "error" in reply:
            self.stop()  # the worker exits after an internal error
            return _verdict(test, reply, "", "", time_limit)
        out = _read_exact(fd, reply["stdout"], deadline, self.poller).decode("utf-8", "replace")
        err = _read_exact(fd, reply["stderr"], deadline, self.poller).decode("utf-8", "replace")
        return _verdict(test, reply, out, err, time_limit)

    def stop(self) -> None:
        import subprocess
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        for pipe in (proc.stdin, proc.stdout):
            try:
                pipe.close()  # the worker exits on EOF; its pid namespace dies with it
            except OSError:
                pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class _Batch:
    """The runs of one map() call. The caller sleeps until all are done and wakes
    once: an event per run would cost it a thread switch per program."""

    def __init__(self, runs: int):
        import threading
        self.pending, self.lock, self.done = runs, threading.Lock(), threading.Event()
        self.compiled: dict[tuple[str, str], bytes | str] = {}
        if runs == 0:
            self.done.set()

    def compile(self, source: str, filename: str) -> bytes | str:
        """_compile()'s result, or the error message (a str) if it does not compile.
        Once per distinct source in the batch: a batch of rollouts repeats each
        problem's tests, and often programs too, and compiling is most of what the
        caller does per test (~0.1 ms for a HumanEval check)."""
        key = (source, filename)
        if key not in self.compiled:
            try:
                self.compiled[key] = _compile(source, filename)
            except _COMPILE_ERRORS as e:
                self.compiled[key] = _compile_error(e)
        return self.compiled[key]

    def finished(self) -> None:
        with self.lock:
            self.pending -= 1
            if self.pending == 0:
                self.done.set()


class _Run:
    """One program's pass over its tests: collects results, decides what runs next."""

    def __init__(self, code: str, tests, time_limit, memory_limit_mb, stop_on_failure, batch: _Batch):
        import threading
        self.tests, self.time_limit, self.memory_limit_mb = list(tests), time_limit, memory_limit_mb
        self.stop_on_failure, self.code, self.batch = stop_on_failure, code, batch
        self.results: list[TestResult | None] = [None] * len(self.tests)
        self.pending, self.lock = len(self.tests), threading.Lock()

    def start(self) -> list[tuple[_Run, int]]:
        self.code = self.batch.compile(self.code, "solution.py") if self.tests else b""
        if isinstance(self.code, str):  # in stderr too: what `python solution.py` would print
            self.results = [TestResult("CE", stderr=self.code, message=self.code) for _ in self.tests]
            self.pending = 0
        if self.pending == 0:
            self.batch.finished()
            return []
        return [(self, 0)] if self.stop_on_failure else [(self, i) for i in range(len(self.tests))]

    def record(self, index: int, result: TestResult) -> list[tuple[_Run, int]]:
        with self.lock:
            self.results[index] = result
            self.pending -= 1
            following = []
            if self.stop_on_failure and index + 1 < len(self.tests):
                if result.verdict == "AC":
                    following = [(self, index + 1)]
                else:
                    for i in range(index + 1, len(self.tests)):
                        self.results[i] = TestResult(SKIP, message="Not run: an earlier test failed.")
                    self.pending = 0
            if self.pending == 0:
                self.batch.finished()
            return following


class Sandbox:
    """A pool of pre-started workers (default: one per core). Thread-safe: several
    threads may call run_tests/map at once. Use as a context manager or close()."""

    def __init__(self, workers: int | None = None, allow_unisolated: bool = False):
        import queue, random, threading
        count = workers or os.cpu_count() or 1
        # One distinct unprivileged uid per worker, drawn at random far above real
        # users: RLIMIT_NPROC and "kill every process of this uid" are per worker.
        uids = random.SystemRandom().sample(range(1 << 30, (1 << 31) - 2), count)
        self._workers = [_Worker(uid) for uid in uids]
        self._queue = queue.SimpleQueue()
        try:
            for worker in self._workers:
                worker.spawn()
            for worker in self._workers:
                worker.handshake()
            #: Which protections hold here: see the module docstring and the README.
            self.isolation = dict(self._workers[0].isolation)
            for worker in self._workers[1:]:  # never one pool that holds less in some workers
                differ = [k for k, v in self.isolation.items() if k not in ("lost", "reason") and worker.isolation[k] != v]
                if differ:
                    raise RuntimeError(f"sandbox workers disagree on what holds ({', '.join(differ)}); lost: "
                                       f"{self.isolation['lost']} against {worker.isolation['lost']}")
            if self.isolation["mode"] == "unisolated" and not allow_unisolated:
                raise IsolationError(_isolation_error(self.isolation))
        except BaseException:
            for worker in self._workers:
                worker.stop()
            raise
        if self.isolation["mode"] == "unisolated":
            _warn_unisolated(self.isolation)
        self.uids = [w.uid for w in self._workers] if self.isolation["unprivileged_uid"] else []
        self._threads = [threading.Thread(target=self._serve, args=(w,), daemon=True)
                         for w in self._workers]
        for thread in self._threads:
            thread.start()

    def describe(self) -> str:
        """One line for a log: the mode, what holds, and what is lost."""
        iso = self.isolation
        if iso["mode"] == "namespaces":
            names = [n for n in ("user", "mount", "pid", "network", "ipc") if iso[n + "_namespace"]]
            parts = [f"namespaces ({', '.join(names)}), private read-only root"]
        elif iso["mode"] == "landlock":
            parts = [f"Landlock ABI {iso['landlock']} + seccomp, no namespaces"]
        else:
            parts = ["UNISOLATED (allow_unisolated=True)"]
        parts.append(f"uids {min(self.uids)}.. (one per worker)" if iso["unprivileged_uid"] else "the caller's uid")
        limits = [name for name, key in (("memory", "memory_cgroup"), ("pids", "pids_cgroup"), ("kill", "cgroup_kill"))
                  if iso[key]]
        parts.append(f"cgroup {iso['cgroup']}" + (f" {'+'.join(limits)}" if limits else " unused"))
        line = "sandbox: " + ", ".join(parts)
        if iso["lost"]:
            line += "; LOST: " + "; ".join(iso["lost"])
        if iso["reason"]:
            line += f" (why: {iso['reason']})"
        return line

    def run_tests(self, code: str, tests, time_limit: float = 10.0, memory_limit_mb: int = 1024,
                  stop_on_failure: bool = False) -> list[TestResult]:
        return self.map([(code, tests)], time_limit, memory_limit_mb, stop_on_failure)[0]

    def map(self, jobs, time_limit: float = 10.0, memory_limit_mb: int = 1024,
            stop_on_failure: bool = False) -> list[list[TestResult]]:
        """Run many (code, tests) jobs in parallel; results come back in order."""
        if not self._threads:
            raise RuntimeError("this Sandbox is closed")
        jobs = list(jobs)
        batch = _Batch(len(jobs))
        runs = [_Run(code, tests, time_limit, memory_limit_mb, stop_on_failure, batch) for code, tests in jobs]
        for run in runs:
            for item in run.start():
                self._queue.put(item)
        batch.done.wait()
        return [run.results for run in runs]

    def _serve(self, worker: _Worker) -> None:
        while (item := self._queue.get()) is not None:
            run, index = item
            test = run.tests[index]
            check = b"" if test.check is None else run.batch.compile(test.check, "test.py")
            if isinstance(check, str):  # a broken test is not the program's fault either
                result = TestResult("SE", message="the test's check code does not compile: " + check)
            else:
                try:
                    result = worker.execute(run.code, test, check, run.time_limit, run.memory_limit_mb)
                except Exception as e:  # the sandbox failed, not the program: SE, fresh worker
                    result = TestResult("SE", message=f"sandbox error: {e!r}")
                    worker.stop()
            for following in run.record(index, result):
                self._queue.put(following)

    def close(self) -> None:
        threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            thread.join()
        for worker in self._workers:
            worker.stop()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _isolation_error(isolation: dict) -> str:
    return (
        "no way to isolate programs works here, so they would run with your rights: they could read the "
        "tests' expected outputs from this process's memory, read and write your files, use the network "
        "and kill your processes (kill(-1)).\n"
        f"What failed: {isolation['reason']}.\n"
        "Remedies, any one of:\n"
        "  - allow unprivileged user namespaces: sysctl -w user.max_user_namespaces=15000 (older Debian "
        "kernels also kernel.unprivileged_userns_clone=1);\n"
        "  - on Ubuntu 23.10 and later (AppArmor): sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, "
        "or an AppArmor profile for this Python that allows `userns,`;\n"
        "  - in a container: --cap-add SYS_ADMIN --security-opt seccomp=unconfined --security-opt "
        "apparmor=unconfined (namespaces), or a seccomp profile that allows landlock_create_ruleset, "
        "landlock_add_rule and landlock_restrict_self (Landlock: Linux 5.13 or later with landlock "
        "in the lsm= boot parameter);\n"
        "  - run as root; in a container, root keeping CAP_SETUID and CAP_SETGID (Docker's defaults) or "
        "with a cgroup v2 pids controller it may write;\n"
        "  - or run unisolated on purpose: Sandbox(..., allow_unisolated=True), --allow-unisolated on "
        "rlef.py and eval.py.")


_warned_unisolated = False


def _warn_unisolated(isolation: dict) -> None:
    """Once per process: running unisolated is a choice, never a silent fallback."""
    global _warned_unisolated
    if not _warned_unisolated:
        _warned_unisolated = True
        import warnings
        warnings.warn("sandbox: programs run UNISOLATED (allow_unisolated=True). LOST: "
                      + "; ".join(isolation["lost"]) + f". Why: {isolation['reason']}", RuntimeWarning, stacklevel=3)


_default: Sandbox | None = None
_default_lock = _thread.allocate_lock()


def run_tests(code: str, tests, time_limit: float = 10.0, memory_limit_mb: int = 1024,
              stop_on_failure: bool = False) -> list[TestResult]:
    """Run `code` on `tests` with a shared Sandbox (one worker per core)."""
    global _default
    with _default_lock:
        if _default is None:
            import atexit
            _default = Sandbox()
            atexit.register(_default.close)
    return _default.run_tests(code, tests, time_limit, memory_limit_mb, stop_on_failure)


# ------------------------------------------------------------ the worker side
# Everything below runs in the worker process and its children, never in the caller.
#
# A worker isolates its programs in the first of three modes that works here
# (Sandbox.isolation["mode"]; the README has a table of what each one answers):
#   namespaces  New mount, pid, network and ipc namespaces (unprivileged: inside a
#               user namespace) and a private, read-only root. The program sees
#               nothing of the host. Needs root, or unprivileged user namespaces.
#   landlock    No namespaces: user namespaces refused (a sysctl, or Ubuntu's
#               AppArmor rule), or root without CAP_SYS_ADMIN (Docker's defaults).
#               Landlock limits the files the program may open; a seccomp filter,
#               the system calls it may make (the network, signals and tracing of
#               other processes, kernel interfaces it has no use for); rlimits, the rest.
#   unisolated  Neither: rlimits only. Sandbox() refuses it unless allow_unisolated=True.
# In every mode a cgroup, where one is writable, bounds the memory (v1 or v2) and
# the number of processes (v2) of all of an execution's processes together.

CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC = 0x20000, 0x2000000, 0x4000000, 0x8000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_NOATIME, MS_NODIRATIME = 1, 2, 4, 8, 1024, 2048
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE, MS_RELATIME = 32, 4096, 16384, 1 << 18, 1 << 21
ST_RELATIME = 4096  # statvfs's f_flag
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV = 1, 2, 4
AT_FDCWD, AT_RECURSIVE = -100, 0x8000
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_SECCOMP, PR_CAPBSET_DROP = 1, 4, 22, 24
PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS, PR_SET_KEEPCAPS, CAP_DAC_OVERRIDE = 36, 38, 8, 1
SECCOMP_MODE_FILTER = 2
# System calls that Python's os module lacks; from 424 on, numbers are the same on every architecture
SYS_MOUNT_SETATTR, SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 442, 444, 445, 446
M_ARENA_MAX = -8
# What a child can see of the host: the Python install and the libraries it loads.
_VISIBLE = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc/ld.so.cache")
_DEVICES = ("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom")
# Modules programs import most, loaded once in the worker so that children find
# them in memory: `import typing` alone costs a child ~4 ms. They add no measurable
# cost to a fork. Not random: its at-fork reseed would cost every child ~45 page faults.
_PRELOAD = ("array", "bisect", "collections", "copy", "datetime", "decimal", "fractions", "functools",
            "heapq", "itertools", "math", "operator", "re", "string", "typing")
_libc = None


def _failed(what: str, errno: int) -> OSError:
    """An OSError that names the call and its errno: "unshare(CLONE_NEWUSER): ENOSPC
    (No space left on device)". IsolationError quotes these to the user."""
    import errno as codes
    return OSError(errno, f"{what}: {codes.errorcode.get(errno, errno)} ({os.strerror(errno)})")


def _text(error: BaseException) -> str:
    """What failed, without the "[Errno 1] " that str() puts before an OSError's message."""
    return re.sub(r"^\[Errno \d+\] ", "", str(error)) or type(error).__name__


def _check(result: int, what: str) -> int:
    if result < 0:
        import ctypes
        raise _failed(what, ctypes.get_errno())
    return result


def _mount(source, target, fstype, flags, data=None) -> None:
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    _check(_libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _write(path: str, text: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError as e:
        raise _failed(f"write {text!r} to {path}", e.errno) from None


def _worker_main(uid: int) -> None:
    """Set up isolation once, then serve executions until the caller closes the pipe."""
    import ctypes
    global _libc
    _libc = ctypes.CDLL(None, use_errno=True)
    # The protocol pipes move off fds 0/1, and fds up to 9 are taken, so every
    # per-execution fd is >= 10 and the child's dup2 onto 0-4 never clobbers one.
    req, resp = os.dup(0), os.dup(1)
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0), os.dup2(null, 1)
    while os.dup(null) < 9:
        pass
    try:
        executor = _Executor(uid, req, resp)
    except Exception as e:
        import traceback
        _write_all(resp, _pack({"error": "".join(traceback.format_exception(e))}))
        return
    import gc
    gc.collect()
    gc.freeze()  # a child's collections then never visit (so never copy) the worker's objects
    _libc.malloc_trim(0)  # fewer pages, cheaper forks
    _write_all(resp, _pack(executor.isolation))
    executor.serve()


def _children_stdio() -> None:
    """The children's stdio, built here in the worker: each child dup2()s its own
    pipes onto fds 0-2 and inherits these (empty) objects instead of building them."""
    sys.stdin = sys.__stdin__ = open(0, encoding="utf-8", closefd=False)
    sys.stdout = sys.__stdout__ = open(1, "w", encoding="utf-8", closefd=False)
    sys.stderr = sys.__stderr__ = open(2, "w", encoding="utf-8", errors="backslashreplace",
                                      buffering=1, closefd=False)


# A typical stdin/stdout program, what _warm_up runs in the worker: reading lines,
# splitting, converting, a loop with a dict, sorting, printing.
_WARM_UP_PROGRAM = """\
import sys
n = int(sys.stdin.readline())
xs = list(map(int, input().split()))
counts = {}
for x in sorted(xs):
    counts[x] = counts.get(x, 0) + 1
print(n, max(counts.values()), " ".join(str(x) for x in xs))
"""


def _warm_up() -> None:
    """Run the harness on a typical small program, here in the worker, before any
    fork. CPython rewrites a function's bytecode with specialised instructions
    once it has run 8 times, and caches attribute lookups per type. Done here,
    every child inherits the results; left to each child, they wrote to (so
    copied) ~20 pages per child. The program's input is a memfd put on fd 0 for
    the while, its output goes to fd 1 (/dev/null); the caller builds fresh stdio
    objects and a fresh __main__ afterwards."""
    program = _compile(_WARM_UP_PROGRAM, "solution.py")
    data, saved = os.memfd_create("warm-up"), os.dup(0)
    os.write(data, b"3\n5 1 5\n")
    os.dup2(data, 0)
    for _ in range(12):
        os.lseek(0, 0, os.SEEK_SET)
        error, source = _exec_main(program, type(sys)("__main__"))
        _report(error, {"solution.py": source})
        _flush()
    os.dup2(saved, 0)
    os.close(saved), os.close(data)


def _probe(setup) -> str | None:
    """Run setup() in a forked child that exits afterwards, so that the worker learns
    whether it works without being changed by it (an unshare cannot be undone, and
    on Ubuntu 24.04 unshare(CLONE_NEWUSER) succeeds and only what follows fails).
    Returns None if it worked, else what failed."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            setup()
            os._exit(0)
        except BaseException as e:
            os.write(write, _text(e).encode()[:2000])
        finally:
            os._exit(1)
    os.close(write)
    with open(read, "rb") as f:
        message = f.read().decode(errors="replace")  # until the child (and its children) exit
    status = os.waitpid(pid, 0)[1]
    return None if status == 0 else message or f"failed (wait status {status})"


# ---------------------------------------------------------------- namespaces

def _enter_namespaces(user: bool) -> None:
    """New mount, pid, network and ipc namespaces. Unprivileged (user=True), a user
    namespace first, in which we are root, mapped to our own uid outside."""
    uid, gid = os.getuid(), os.getgid()
    if user:
        _check(_libc.unshare(CLONE_NEWUSER), "unshare(CLONE_NEWUSER)")
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
            _write(f"/proc/self/{name}", text)
    for name, flag in (("CLONE_NEWNS", CLONE_NEWNS), ("CLONE_NEWPID", CLONE_NEWPID),
                       ("CLONE_NEWNET", CLONE_NEWNET), ("CLONE_NEWIPC", CLONE_NEWIPC)):
        _check(_libc.unshare(flag), f"unshare({name})")


def _try_namespaces(user: bool) -> None:
    """All of the namespace mode's setup, for _probe: the namespaces, and the private
    root built by pid 1 of the new pid namespace (only it may mount that /proc)."""
    _enter_namespaces(user)
    failure = _probe(lambda: _build_root(with_proc=True))
    if failure:
        raise RuntimeError(failure)


def _build_root(with_proc: bool) -> None:
    """Chroot into a private, read-only view: the Python install and system
    libraries bound read-only, four device nodes, our own /proc, and /sandbox, where
    the working directory is mounted (_Executor.fresh_workdir). Threats: writing
    outside the working directory (/tmp, home, the repository), and reading files
    that hold tests (datasets, caches, the caller's files): they are not there."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount leaks to the host
    new = "/tmp"  # covered by a tmpfs in this mount namespace only
    _mount("tmpfs", new, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
    paths = list(_VISIBLE)
    for prefix in (sys.base_prefix, sys.base_exec_prefix):
        if not any(prefix == p or prefix.startswith(p + "/") for p in paths):
            paths.append(prefix)  # e.g. a pyenv install under /root
    for path in paths + list(_DEVICES):
        target = new + path
        if os.path.islink(path):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.symlink(os.readlink(path), target)
            continue
        if os.path.isdir(path):
            os.makedirs(target, exist_ok=True)
        elif os.path.exists(path):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            open(target, "w").close()
        else:
            continue
        # Recursive: GPU nodes mount driver files under /usr, and in a user namespace
        # such submounts are locked to their parent: a bind without them is EINVAL.
        _mount(path, target, None, MS_BIND | MS_REC)
        _read_only(target, device=path in _DEVICES)
    if with_proc:  # shows only this pid namespace: the caller is invisible
        os.mkdir(new + "/proc")
        _mount("proc", new + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.mkdir(new + "/sandbox")
    _mount(None, new, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chroot(new)
    os.chdir("/")


def _read_only(target: str, device: bool) -> None:
    """Make a recursive bind read-only and nosuid (and nodev, but for device nodes),
    every mount in it included: otherwise a submount (say /usr/local/nvidia) would
    stay writable. mount_setattr(2) with AT_RECURSIVE does it in one call (Linux
    5.12); before that, each mount is remounted on its own (bubblewrap's way). Both
    only add flags: the flags a user namespace locks on a mount (nosuid, nodev,
    noexec, atime) cannot be cleared there, and a remount that dropped one is EPERM."""
    flags = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | (0 if device else MOUNT_ATTR_NODEV)
    attr = struct.pack("<QQQQ", flags, 0, 0, 0)  # struct mount_attr: set, clear, propagation, userns
    if _libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, target.encode(), AT_RECURSIVE, attr, len(attr)) == 0:
        return
    import ctypes
    errno = ctypes.get_errno()
    if errno != 38:  # ENOSYS: the kernel predates it; anything else is a real failure
        raise _failed(f"mount_setattr {target}", errno)
    with open("/proc/self/mountinfo") as f:  # field 5: the mount point, octal-escaped
        points = [_unescape(line.split()[4]) for line in f]
    for point in points:
        if point == target or point.startswith(target + "/"):
            locked = os.statvfs(point).f_flag  # keep them: see above
            remount = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | (0 if device else MS_NODEV)
            remount |= locked & (MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME)
            remount |= MS_RELATIME if locked & ST_RELATIME else 0
            _mount(None, point, None, remount)


def _unescape(field: str) -> str:
    """A path from /proc/self/mountinfo, where space, tab, newline and backslash are octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


class _NamespaceMode:
    """The namespace mode's set-up, in the worker: new namespaces before it forks off
    its supervisor, a private read-only root after (threats: at _build_root), a fresh
    tmpfs working directory per program, and, unprivileged, the capabilities of our
    user namespace dropped for the children. Sets isolation's namespace fields,
    workdir, workdir_state, cap_header and no_capabilities."""

    def _enter_namespace_mode(self, root: bool, pids: bool, reasons: list) -> None:
        """Probed in a forked child first: on Ubuntu 24.04 unshare(CLONE_NEWUSER)
        succeeds and only what follows fails, and a worker left in such a user
        namespace could not fall back. Refused, as the landlock mode is, where
        nothing would bound a fork bomb (_unbounded_forks; `pids`: a pids cgroup made)."""
        iso = self.isolation
        failure = _unbounded_forks(self.uid, pids) or _probe(lambda: _try_namespaces(user=not root))
        if failure is None:
            _enter_namespaces(user=not root)
            iso.update(mode="namespaces", user_namespace=not root, mount_namespace=True, pid_namespace=True,
                       network_namespace=True, ipc_namespace=True, private_root=True)
        else:
            reasons.append("namespaces: " + failure)

    def _set_up_private_root(self) -> None:
        _build_root(with_proc=True)
        self.workdir = "/sandbox"
        self.fresh_workdir()

    def fresh_workdir(self) -> None:
        """Namespaces: the working directory is a tmpfs of its own on /sandbox, in a
        root that is read-only everywhere else. So a program can write nowhere but
        there, even one that owns the directory (unprivileged, it is root in our user
        namespace, and so the owner of what we mount), and the size of the tmpfs is
        its disk quota."""
        owner = f",uid={self.uid},gid={self.uid}" if self.uid is not None else ""
        _mount("tmpfs", self.workdir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
               f"mode=0700,size={WORKDIR_SIZE}{owner}")
        st = os.stat(self.workdir)
        self.workdir_state = (st.st_mode, st.st_nlink, st.st_size)

    def _drop_bounding_set(self) -> None:
        """Unprivileged namespace mode: we are root in our user namespace; the child
        must not be. The bounding set (what an execve could grant) goes here, once,
        and children inherit its loss (dropping it in each child cost ~0.4 ms: a
        ctypes call per capability); each child clears its own sets (capset)."""
        import ctypes
        for cap in range(self.cap_last + 1):
            _check(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), "prctl(PR_CAPBSET_DROP)")
        self.cap_header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
        self.no_capabilities = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable: none

    def _drop_capabilities(self) -> None:
        _check(_libc.capset(self.cap_header, self.no_capabilities), "capset")


def _unbounded_forks(uid: int | None, pids_cgroup: bool) -> str | None:
    """Why neither mode may run here, or None. Root that cannot take another uid
    (uid None) runs programs as the host's uid 0, which RLIMIT_NPROC never binds:
    the kernel exempts that user (INIT_USER) whatever its capabilities, and a pid
    namespace bounds no count. Only a pids cgroup would then bound a fork bomb."""
    if os.geteuid() == 0 and uid is None and not pids_cgroup:
        return ("root cannot take another uid here (setresuid refused) and no pids cgroup is writable: "
                "nothing would bound a fork bomb")
    return None


def _count_tasks(uid: int) -> int:
    """Threads of `uid` on the host: unprivileged, RLIMIT_NPROC counts them all."""
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            count += int(fields["Uid"].split()[0]) == uid and int(fields["Threads"])
        except (OSError, KeyError, ValueError):
            pass
    return count


def _children(parent: int) -> list[int]:
    """The processes whose parent is `parent`, from /proc."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                if int(f.read().rpartition(")")[2].split()[1]) == parent:
                    found.append(int(pid))
        except (OSError, ValueError, IndexError):
            pass
    return found


def _supervise(worker: int, cgroup: str | None, workroot: str | None) -> None:
    """The worker's parent, outside its pid namespace if it has one: wait for the
    worker (pid 1 there, so its death kills every process of that namespace), kill
    whatever it left (we are a subreaper: orphans of its programs come to us), then
    remove its cgroup tree, whose lock we hold until we exit (_own_cgroup), and its
    working folder on the host."""
    os.waitpid(worker, 0)
    ours = os.getpgid(0)
    while True:
        for pid in _children(os.getpid()):
            try:  # its whole process group at once, or a fork bomb's children outrun us
                if os.getpgid(pid) != ours:
                    os.killpg(os.getpgid(pid), signal.SIGKILL)
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.wait()
        except ChildProcessError:
            break
    if cgroup:
        _remove_cgroup(cgroup, tries=100)
    if workroot:
        try:
            _empty(workroot)
            os.rmdir(workroot)
        except OSError:
            pass
    os._exit(0)


# ------------------------------------------------------------------- cgroups

def _cgroups(mountinfo: str, cgroup: str) -> tuple[str, str | None, str | None, str | None]:
    """The cgroup hierarchies here, from /proc/self/mountinfo and /proc/self/cgroup:
    ("v2", "v1", "hybrid" or "none"; the directory of our memory cgroup under v1;
    that of our cgroup under v2; where v2 is mounted). Hybrid is what systemd long set up: the
    controllers on v1 hierarchies, and a v2 hierarchy, often without controllers,
    beside them. A hierarchy counts only where it is mounted: /proc/self/cgroup also
    lists hierarchies that this mount namespace cannot reach."""
    v1, v2 = {}, None  # v1: controller -> (root, mount point) of its hierarchy
    for line in mountinfo.splitlines():
        fields = line.split()
        dash = fields.index("-")
        where = (_unescape(fields[3]), _unescape(fields[4]))
        if fields[dash + 1] == "cgroup2":
            v2 = where
        elif fields[dash + 1] == "cgroup":
            v1.update((option, where) for option in fields[dash + 3].split(","))
    memory = unified = None
    for line in cgroup.splitlines():
        number, controllers, path = line.split(":", 2)
        if number == "0" and v2:
            unified = _cgroup_dir(v2, path)
        elif "memory" in controllers.split(",") and "memory" in v1:
            memory = _cgroup_dir(v1["memory"], path)
    version = "hybrid" if v1 and v2 else "v1" if v1 else "v2" if v2 else "none"
    return version, memory, unified, v2 and v2[1]


def _cgroup_dir(where: tuple[str, str], path: str) -> str | None:
    """Where cgroup `path` of a hierarchy is, given the (root, mount point) of a mount of it."""
    root, point = where
    if root == "/":
        return point + path.rstrip("/")
    if path == root or path.startswith(root + "/"):
        return point + path[len(root):]
    return None  # outside what is mounted here


LOCK_EX, LOCK_NB = 2, 4


def _v1_memory_path(memory: str, uid: int) -> str:
    return f"{memory}/rlef-sandbox-{uid}"


def _own_cgroup(base: str, name: str) -> int:
    """Make the cgroup BASE/NAME for a worker about to start; return an fd that holds
    a lock (flock) on it. The worker's supervisor holds that lock for the tree's
    whole life and lets it go (exits) only after removing the tree.

    Threat: workers that start at the same moment beside each other (16 cores start
    16 at once, several pools more) must not remove each other's trees. A killed
    worker's supervisor cannot remove its tree, so every start removes those left;
    judged by what a tree held, one still being made looked abandoned, and its
    worker was killed by the scan's cgroup.kill (on the GPU machine: a failed start).
    Now a tree is removed only by whoever takes its lock, which nobody can while its
    owner lives; and a lock on BASE, held while scanning and while making and
    locking a tree, means that no scan ever sees a tree before its lock is held."""
    guard = _open_dir(base)
    try:
        _check(_libc.flock(guard, LOCK_EX), f"flock {base}")
        for other in os.listdir(base):
            if other.startswith("rlef-sandbox-"):
                _remove_abandoned(f"{base}/{other}")
        path = f"{base}/{name}"
        try:
            os.mkdir(path)
        except OSError as e:
            raise _failed(f"mkdir {path}", e.errno) from None
        lock = _open_dir(path)
        _check(_libc.flock(lock, LOCK_EX | LOCK_NB), f"flock {path}")
        return lock
    finally:
        os.close(guard)


def _open_dir(path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise _failed(f"open {path}", e.errno) from None


def _remove_abandoned(top: str) -> None:
    """Remove a worker's tree if its lock can be taken: its supervisor is gone (it was
    killed). For up to 0.2 s while what cgroup.kill killed exits (a tree is busy until
    its last process is reaped); what lingers longer, a later start removes."""
    try:
        lock = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if _libc.flock(lock, LOCK_EX | LOCK_NB) == 0:
            _remove_cgroup(top, tries=20)
    finally:
        os.close(lock)


def _remove_cgroup(top: str, tries: int) -> None:
    """Kill what is left in a worker's tree (v2: cgroup.kill) and remove it, deepest
    first; up to `tries` times, 10 ms apart, while its last processes exit."""
    for attempt in range(tries):
        try:
            if os.path.exists(top + "/cgroup.kill"):
                _write(top + "/cgroup.kill", "1")
            for path in [folder for folder, _, _ in os.walk(top, topdown=False)]:
                os.rmdir(path)
            return
        except OSError:
            if attempt + 1 < tries:
                time.sleep(0.01)


class _CgroupV1:
    """cgroup v1 (root only: v1 is not delegated to users): the worker's own memory
    cgroup, where its children are born (moving each child instead would cost ~15 ms
    there), with its limit and its OOM counter. Made before the worker starts."""
    missing, procs, kill = (), None, None

    def __init__(self, memory: str, uid: int):
        self.top = _v1_memory_path(memory, uid)
        self.lock = _own_cgroup(memory, os.path.basename(self.top))

    def join(self) -> None:
        """In the worker: move in; open what the executor writes and reads."""
        _write(self.top + "/cgroup.procs", "0")
        self.limit = os.open(self.top + "/memory.limit_in_bytes", os.O_WRONLY)
        self.events = os.open(self.top + "/memory.oom_control", os.O_RDONLY)


def _v2_base(unified: str, mount_point: str) -> str:
    """Where a worker's cgroup v2 tree goes: our own cgroup if it is the root of the
    hierarchy (root on a machine or VM of its own, the GPU nodes), else its parent.
    The no-internal-processes rule lets a cgroup hand controllers to its children
    only while it holds no processes itself, and our own cgroup holds the caller.
    Under systemd that parent is a scope with Delegate=yes in which the trainer was
    started in a leaf cgroup (the README shows how); we never move the caller."""
    return unified if unified == mount_point else os.path.dirname(unified)


class _CgroupV2:
    """All of one execution's processes in a cgroup v2 of their own:

        BASE/rlef-sandbox-UID/         holds no processes; hands memory and pids down
        BASE/rlef-sandbox-UID/worker/  the worker, where each child is born
        BASE/rlef-sandbox-UID/run/     each child moves itself here before the program
                                       runs: memory.max, memory.swap.max, pids.max;
                                       emptied with cgroup.kill after each execution

    Threats: a memory bomb spread over many processes, each within its RLIMIT_AS
    (memory.max bounds their sum, swap included, and memory.events counts the OOM
    kills: MLE); a fork bomb (pids.max); processes that outlive the program
    (cgroup.kill kills all of them at once, fork races included). The move costs
    each execution ~50 us of CPU, and on an idle machine the wall time of an RCU
    grace period (a few ms). We write only `+memory +pids` into BASE's
    cgroup.subtree_control, and our own directories. Controllers that BASE cannot
    have (cgroup.controllers) are reported absent, never faked. The tree is made
    before the worker starts, locked (_own_cgroup); the worker then joins it."""

    def __init__(self, base: str, uid: int):
        self.top = f"{base}/rlef-sandbox-{uid}"
        available = _read(base + "/cgroup.controllers").split()
        wanted = [c for c in ("memory", "pids") if c in available]
        enabled = _read(base + "/cgroup.subtree_control").split()
        if set(wanted) - set(enabled):
            try:
                _write(base + "/cgroup.subtree_control", " ".join("+" + c for c in wanted if c not in enabled))
            except OSError:  # e.g. EBUSY: BASE holds processes (a container's own root)
                wanted = [c for c in wanted if c in enabled]
        self.missing = [c for c in ("memory", "pids") if c not in wanted]
        self.lock = _own_cgroup(base, os.path.basename(self.top))
        run = self.top + "/run"
        try:
            if wanted:
                _write(self.top + "/cgroup.subtree_control", " ".join("+" + c for c in wanted))
            for path in (self.top + "/worker", run):
                try:
                    os.mkdir(path)
                except OSError as e:
                    raise _failed(f"mkdir {path}", e.errno) from None
            if "pids" in wanted:
                _write(run + "/pids.max", str(NPROC))
            if "memory" in wanted:
                _write(run + "/memory.oom.group", "1")  # an OOM kill takes the whole execution
                if os.path.exists(run + "/memory.swap.max"):
                    _write(run + "/memory.swap.max", "0")
        except OSError:
            _remove_cgroup(self.top, tries=1)
            os.close(self.lock)
            raise

    def join(self) -> None:
        """In the worker: move into worker/; open what the executor writes and reads."""
        _write(self.top + "/worker/cgroup.procs", "0")
        run = self.top + "/run"
        self.procs = os.open(run + "/cgroup.procs", os.O_WRONLY)  # each child writes "0" here
        self.kill = os.open(run + "/cgroup.kill", os.O_WRONLY) if os.path.exists(run + "/cgroup.kill") else None
        memory = "memory" not in self.missing
        self.limit = os.open(run + "/memory.max", os.O_WRONLY) if memory else None
        self.events = os.open(run + "/memory.events", os.O_RDONLY) if memory else None


class _CgroupMember:
    """Joining a cgroup: the one an execution's processes share, where one is
    writable (_CgroupV1, _CgroupV2). Made before the worker forks off its supervisor,
    which holds its lock; joined by the worker. Sets isolation's cgroup fields,
    procs_fd, kill_fd, limit_fd, oom_fd, cgroup_limit and adjust_oom."""

    def _make_cgroup(self, uid: int, root: bool) -> tuple:
        """The cgroup for this worker, or None; and why none, or what it lacks."""
        iso = self.isolation
        iso["cgroup"], memory, unified, v2_mount = _cgroups(_read("/proc/self/mountinfo"), _read("/proc/self/cgroup"))
        v2_base = _v2_base(unified, v2_mount) if iso["cgroup"] == "v2" and unified else None
        cgroup, note = None, ""  # made here, so that the supervisor holds its lock (_own_cgroup)
        try:
            if memory and root:
                cgroup = _CgroupV1(memory, uid)
            elif v2_base:
                cgroup = _CgroupV2(v2_base, uid)
                note = f"no {' or '.join(cgroup.missing)} controller in {v2_base}" if cgroup.missing else ""
            else:
                note = {"v1": "cgroup v1 is not delegated to users", "hybrid": "cgroup v1 is not delegated to users",
                        "v2": "no cgroup v2 here that this process can reach",
                        "none": "no cgroups mounted"}[iso["cgroup"]]
        except OSError as e:
            note = _text(e)
        return cgroup, note

    def _join_cgroup(self, cgroup, note: str, lost: list) -> None:
        """The cgroup an execution's processes share, where one is writable: v1, the
        worker's own memory cgroup, where children are born; v2, a cgroup per
        execution that each child moves itself into (_CgroupV2)."""
        iso = self.isolation
        self.limit_fd = self.oom_fd = self.procs_fd = self.kill_fd = None
        self.cgroup_limit, self.adjust_oom = None, False
        if cgroup:
            try:
                cgroup.join()
                self.procs_fd, self.kill_fd, self.limit_fd, self.oom_fd = cgroup.procs, cgroup.kill, cgroup.limit, cgroup.events
                # v1: the worker shares the cgroup, so the OOM killer must take the program
                self.adjust_oom = isinstance(cgroup, _CgroupV1)
                iso["pids_cgroup"] = isinstance(cgroup, _CgroupV2) and "pids" not in cgroup.missing
            except OSError as e:
                note = _text(e)
        iso["memory_cgroup"], iso["cgroup_kill"] = self.oom_fd is not None, self.kill_fd is not None
        if not iso["memory_cgroup"]:
            lost.append(f"memory of all processes together, only RLIMIT_AS per process ({note})")

    def _oom_kills(self) -> int:
        if self.oom_fd is None:
            return 0
        _, found, rest = os.pread(self.oom_fd, 4096, 0).partition(b"\noom_kill ")
        return int(rest.partition(b"\n")[0]) if found else 0


# ------------------------------------------------------- Landlock and seccomp
# The landlock mode. Neither needs privileges (only no_new_privs, which the worker
# sets anyway), so both work for an unprivileged caller without user namespaces
# and for root without CAP_SYS_ADMIN.
#
# Landlock (landlock(7)) limits what the program may do to files, and more with
# each ABI version (landlock_create_ruleset(NULL, 0, VERSION) says which):
#   1 (Linux 5.13)  open, list, execute, create, remove, rename files; ptrace and
#                   /proc/PID/mem of processes outside the sandbox refused
#   2 (5.19)        REFER: renaming and linking across directories (always refused before)
#   3 (6.2)         TRUNCATE (truncate(2) of any file before: seccomp refuses it)
#   4 (6.7)         TCP bind and connect (seccomp refuses every socket anyway)
#   5 (6.10)        ioctl on device files
#   6 (6.12)        scoping: signals and abstract unix sockets only within the sandbox
#                   (before, and still: seccomp refuses signals to other processes)
#   7 (6.15)        audit logging control: the program's refusals are not logged
# What the running kernel does not know is dropped from the ruleset (the
# documented best-effort way), and the seccomp filter covers what that leaves
# open, so every ABI from 1 on gives the same guarantees.
LL_FS_EXECUTE, LL_FS_WRITE_FILE, LL_FS_READ_FILE, LL_FS_READ_DIR = 1, 2, 4, 8
LL_FS_REMOVE_DIR, LL_FS_REMOVE_FILE, LL_FS_MAKE_DIR, LL_FS_MAKE_REG = 16, 32, 128, 256
LL_FS_MAKE_FIFO, LL_FS_MAKE_SYM, LL_FS_REFER, LL_FS_TRUNCATE, LL_FS_IOCTL_DEV = 1024, 4096, 8192, 16384, 32768
LL_NET_BIND_TCP, LL_NET_CONNECT_TCP = 1, 2
LL_SCOPE_ABSTRACT_UNIX_SOCKET, LL_SCOPE_SIGNAL = 1, 2
LL_RESTRICT_SELF_LOG_SAME_EXEC_OFF, LL_RESTRICT_SELF_LOG_SUBDOMAINS_OFF = 1, 4
_LL_READ = LL_FS_EXECUTE | LL_FS_READ_FILE | LL_FS_READ_DIR
_LL_DEVICE = LL_FS_READ_FILE | LL_FS_WRITE_FILE | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV
_LL_WORKDIR = (LL_FS_READ_FILE | LL_FS_READ_DIR | LL_FS_WRITE_FILE | LL_FS_TRUNCATE | LL_FS_MAKE_REG
               | LL_FS_MAKE_DIR | LL_FS_MAKE_SYM | LL_FS_MAKE_FIFO | LL_FS_REMOVE_FILE | LL_FS_REMOVE_DIR
               | LL_FS_REFER)
_LL_FILE = LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV

# System call numbers, (x86_64, aarch64); None where the architecture has no such
# call. From the kernel's asm/unistd_64.h and asm-generic/unistd.h (from 424 on
# the numbers are the same everywhere). aarch64 is not tested here.
_ARCH = {"x86_64": 0, "aarch64": 1}.get(os.uname().machine)
_AUDIT_ARCH = (0xC000003E, 0xC00000B7)
_SYSCALLS = {
    "socket": (41, 198), "io_uring_setup": (425, 425), "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427), "ptrace": (101, 117), "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271), "kcmp": (312, 272), "pidfd_getfd": (438, 438),
    "process_madvise": (440, 440), "pidfd_send_signal": (424, 424), "bpf": (321, 280),
    "perf_event_open": (298, 241), "userfaultfd": (323, 282), "keyctl": (250, 219), "add_key": (248, 217),
    "request_key": (249, 218), "fanotify_init": (300, 262), "fanotify_mark": (301, 263),
    "inotify_add_watch": (254, 27), "unshare": (272, 97), "setns": (308, 268), "mount": (165, 40),
    "umount2": (166, 39), "pivot_root": (155, 41), "chroot": (161, 51), "mount_setattr": (442, 442),
    "open_tree": (428, 428), "move_mount": (429, 429), "fsopen": (430, 430), "fsconfig": (431, 431),
    "fsmount": (432, 432), "fspick": (433, 433), "open_tree_attr": (467, 467),
    "shmget": (29, 194), "shmat": (30, 196), "shmctl": (31, 195), "shmdt": (67, 197), "semget": (64, 190),
    "semop": (65, 193), "semctl": (66, 191), "semtimedop": (220, 192), "msgget": (68, 186),
    "msgsnd": (69, 189), "msgrcv": (70, 188), "msgctl": (71, 187), "mq_open": (240, 180),
    "mq_unlink": (241, 181), "mq_timedsend": (242, 182), "mq_timedreceive": (243, 183),
    "mq_notify": (244, 184), "mq_getsetattr": (245, 185),
    "truncate": (76, 45), "chmod": (90, None), "fchmodat": (268, 53), "fchmodat2": (452, 452),
    "chown": (92, None), "lchown": (94, None), "fchownat": (260, 54), "utime": (132, None),
    "utimes": (235, None), "futimesat": (261, None), "utimensat": (280, 88), "setxattr": (188, 5),
    "lsetxattr": (189, 6), "removexattr": (197, 14), "lremovexattr": (198, 15), "setxattrat": (463, 463),
    "removexattrat": (466, 466), "file_setattr": (469, 469), "name_to_handle_at": (303, 264),
    "open_by_handle_at": (304, 265), "fchmod": (91, 52), "fchown": (93, 55), "fsetxattr": (190, 7),
    "fremovexattr": (199, 16),
    "clone": (56, 220), "clone3": (435, 435), "kill": (62, 129), "tkill": (200, 130), "tgkill": (234, 131),
    "rt_sigqueueinfo": (129, 138), "rt_tgsigqueueinfo": (297, 240), "prlimit64": (302, 261),
    "sched_setaffinity": (203, 122), "sched_setparam": (142, 118), "sched_setscheduler": (144, 119),
    "sched_setattr": (314, 274), "migrate_pages": (256, 238), "move_pages": (279, 239),
    "setpriority": (141, 140), "ioprio_set": (251, 30), "fcntl": (72, 25), "ioctl": (16, 29),
    "setsid": (112, 157), "setpgid": (109, 154),
}
# Two filters. A kernel compiles each filter it is given (~1.5 us an instruction
# here), so the large one, which holds for the worker too, is installed once in the
# worker, and each child installs only a small one: what depends on its pid, and
# what the worker itself needs (it signals its children and cleans up their folder).
#
# Refused outright (EPERM), by threat, in the worker's filter:
_DENIED = (
    # the network: no new socket of any kind (TCP, UDP, raw, unix, netlink); io_uring
    # would make network and other calls out of seccomp's sight
    "socket", "io_uring_setup", "io_uring_enter", "io_uring_register",
    # other processes' memory, and signals through pidfds
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "process_madvise",
    "pidfd_send_signal",
    # kernel interfaces a program has no use for, where exploits start; the user's
    # keyrings; watching the caller's folders
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    "fanotify_init", "fanotify_mark", "inotify_add_watch",
    # namespaces and mounts
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "mount_setattr", "open_tree",
    "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "open_tree_attr",
    # SysV IPC and POSIX message queues: without an ipc namespace, the caller's
    "shmget", "shmat", "shmctl", "shmdt", "semget", "semop", "semctl", "semtimedop", "msgget",
    "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive",
    "mq_notify", "mq_getsetattr",
    # what Landlock does not cover: changing the owner, times or attributes of files
    # the program cannot open (their mode: the child's filter), or of those it may
    # only read, through the fd (the Python installation, which the caller's uid may
    # own, or which CAP_DAC_OVERRIDE lets it write attributes of); truncate(2) before
    # ABI 3; opening by file handle
    "truncate", "chown", "lchown", "fchownat", "fchown", "utime", "utimes", "futimesat", "utimensat",
    "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr", "setxattrat",
    "removexattrat", "file_setattr", "name_to_handle_at", "open_by_handle_at",
)
# Allowed only with these arguments: (argument, "in" or "not in", values) must all hold.
_NAMESPACE_FLAGS = (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER
                    | CLONE_NEWPID | CLONE_NEWNET)
_CONDITIONS = {
    # another process's limits, scheduling, priority or memory placement: only its own,
    # as pid 0 (what the C library passes), never the caller's, whose uid it may share
    "prlimit64": [(0, "in", (0,))],
    "sched_setaffinity": [(0, "in", (0,))],
    "sched_setparam": [(0, "in", (0,))],
    "sched_setscheduler": [(0, "in", (0,))],
    "sched_setattr": [(0, "in", (0,))],
    "migrate_pages": [(0, "in", (0,))],
    "move_pages": [(0, "in", (0,))],
    "setpriority": [(0, "in", (0,)), (1, "in", (0,))],  # PRIO_PROCESS only: not PRIO_USER
    "ioprio_set": [(0, "in", (1,)), (1, "in", (0,))],  # IOPRIO_WHO_PROCESS only
    # signals by proxy: SIGIO (or any signal, F_SETSIG) sent to an owner it names
    "fcntl": [(1, "not in", (8, 10, 15))],  # F_SETOWN, F_SETSIG, F_SETOWN_EX
    "ioctl": [(1, "not in", (0x8901, 0x8902, 0x5412))],  # FIOSETOWN, SIOCSPGRP, TIOCSTI
    # new namespaces
    "clone": [(0, "no bits of", _NAMESPACE_FLAGS)],
}
# The child's filter: leaving its process group, which the worker kills at once
# (there is no pid namespace); changing file modes (Landlock does not cover them);
_CHILD_DENIED = ("setsid", "setpgid", "chmod", "fchmod", "fchmodat", "fchmodat2")
# and signals only to itself, its process group (the child's own session) or its
# threads: never kill(-1) or to the caller. PID: the child writes its pid there.
_CHILD_CONDITIONS = {
    "kill": [(0, "in", (0, "PID", "-PID"))],
    "tkill": [(0, "in", ("PID",))],
    "tgkill": [(0, "in", ("PID",))],
    "rt_sigqueueinfo": [(0, "in", ("PID",))],
    "rt_tgsigqueueinfo": [(0, "in", ("PID",))],
}
SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_ERRNO, SECCOMP_RET_ALLOW = 0x80000000, 0x00050000, 0x7FFF0000
EPERM, ENOSYS = 1, 38


def _seccomp_filter(denied: tuple, conditions: dict) -> tuple[bytearray, list[tuple[int, int]]]:
    """A seccomp filter of the landlock mode, as a classic BPF program (seccomp(2)),
    and where in it a child writes its own pid: [(byte offset, sign)].

    Refused calls fail with EPERM, never kill: what a program does wrong is its own
    runtime error. Only a foreign calling convention is killed: 32-bit (int 0x80)
    and x32 calls have other numbers, which this table would not know. clone3 gets
    ENOSYS (its flags are behind a pointer, out of a filter's reach), and the C
    library then falls back to clone, whose flags it can check (Docker does the
    same). Arguments are compared on their low 32 bits, which is what the kernel
    reads of an int argument."""
    numbers = {name: pair[_ARCH] for name, pair in _SYSCALLS.items() if pair[_ARCH] is not None}
    code, labels, pid_slots = [], {}, []  # code: [opcode, jump if true, jump if false, k]
    LD, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06  # BPF_LD|W|ABS, BPF_JMP|..|K, BPF_RET|K

    def emit(op, k=0, true=0, false=0):
        if k in ("PID", "-PID"):
            pid_slots.append((len(code) * 8 + 4, 1 if k == "PID" else -1))
            k = 0
        code.append([op, true, false, k])

    emit(LD, 4)  # seccomp_data.arch
    emit(JEQ, _AUDIT_ARCH[_ARCH], 0, "return kill")
    emit(LD, 0)  # seccomp_data.nr
    if _ARCH == 0:
        emit(JGE, 0x40000000, "return kill")  # x32
    for name in denied:
        if name in numbers:
            emit(JEQ, numbers[name], "return deny")
    if "clone" in conditions:
        emit(JEQ, numbers["clone3"], "return enosys")
    for name in conditions:
        emit(JEQ, numbers[name], name)
    emit(RET, SECCOMP_RET_ALLOW)
    for name, tests in conditions.items():
        labels[name] = len(code)
        for number, (argument, test, values) in enumerate(tests):
            if number:
                labels[f"{name}.{number}"] = len(code)
            passed = f"{name}.{number + 1}" if number + 1 < len(tests) else f"{name}.end"
            emit(LD, 16 + 8 * argument)  # seccomp_data.args[argument], its low half
            if test == "in":
                for value in values:
                    emit(JEQ, value if isinstance(value, str) else value & 0xFFFFFFFF, passed)
                emit(RET, SECCOMP_RET_ERRNO | EPERM)
            elif test == "not in":
                for value in values:
                    emit(JEQ, value, "return deny")
            else:  # "no bits of"
                emit(JSET, values, "return deny")
        labels[f"{name}.end"] = len(code)
        emit(RET, SECCOMP_RET_ALLOW)
    for name, result in (("deny", SECCOMP_RET_ERRNO | EPERM), ("enosys", SECCOMP_RET_ERRNO | ENOSYS),
                         ("kill", SECCOMP_RET_KILL_PROCESS)):
        labels["return " + name] = len(code)
        emit(RET, result)
    program = bytearray()
    for at, (op, true, false, k) in enumerate(code):
        jumps = [labels[j] - at - 1 if isinstance(j, str) else j for j in (true, false)]
        assert all(0 <= j < 256 for j in jumps), "a seccomp jump out of range"
        program += struct.pack("<HBBI", op, *jumps, k)
    return program, pid_slots


def _fprog(program: bytearray) -> tuple[bytes, object]:
    """struct sock_fprog for a filter (its length, a pointer to it), and the ctypes
    view that keeps the pointer valid."""
    import ctypes
    memory = (ctypes.c_char * len(program)).from_buffer(program)
    return struct.pack("<H6xQ", len(program) // 8, ctypes.addressof(memory)), memory


def _landlock_ruleset(abi: int, readable: list[str], workdir: str) -> int:
    """A Landlock ruleset fd: read and execute beneath `readable`, read and write
    /dev/null and /dev/zero, read /dev/random and /dev/urandom, and everything but
    execute beneath `workdir`. Nothing else: not /tmp, /dev/shm, home, /proc, /sys,
    /etc, not the folder that holds `workdir`. No TCP, no signals or abstract unix
    sockets outside the sandbox where the ABI covers them. Made once per worker;
    each child restricts itself with it, adding nothing (its fd is shared)."""
    fs = (1 << 13) - 1 | (LL_FS_REFER if abi >= 2 else 0) | (LL_FS_TRUNCATE if abi >= 3 else 0)
    fs |= LL_FS_IOCTL_DEV if abi >= 5 else 0
    net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP if abi >= 4 else 0
    scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL if abi >= 6 else 0
    size = 8 if abi < 4 else 16 if abi < 6 else 24  # struct landlock_ruleset_attr grew with the ABI
    attr = struct.pack("<QQQ", fs, net, scoped)[:size]
    ruleset = _check(_libc.syscall(SYS_LANDLOCK_CREATE_RULESET, attr, size, 0),
                     "landlock_create_ruleset")
    rules = [(path, _LL_READ) for path in readable]
    rules += [("/dev/null", _LL_DEVICE), ("/dev/zero", _LL_DEVICE), ("/dev/random", LL_FS_READ_FILE),
              ("/dev/urandom", LL_FS_READ_FILE), (workdir, _LL_WORKDIR)]
    for path, rights in rules:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        rights &= fs if os.path.isdir(path) else fs & _LL_FILE
        try:
            rule = struct.pack("<Qi", rights, fd)  # struct landlock_path_beneath_attr (packed)
            _check(_libc.syscall(SYS_LANDLOCK_ADD_RULE, ruleset, 1, rule, 0),
                   f"landlock_add_rule {path}")
        finally:
            os.close(fd)
    return ruleset


def _make_workroot() -> str:
    """Landlock and unisolated modes: the worker's folder on the host,
    /tmp/rlef-sandbox-RANDOM. It is locked (flock) for as long as the worker or its
    supervisor lives, so that the folders of killed workers, which nobody else
    removes, can be told apart and removed here. (Not tempfile: it loads random.)"""
    for name in os.listdir("/tmp"):
        if not name.startswith("rlef-sandbox-"):
            continue
        try:
            fd = os.open("/tmp/" + name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            if os.fstat(fd).st_uid == os.geteuid() and _libc.flock(fd, LOCK_EX | LOCK_NB) == 0:
                _empty("/tmp/" + name)
                os.rmdir("/tmp/" + name)
        except OSError:
            pass
        finally:
            os.close(fd)
    token = os.urandom(8).hex()
    os.mkdir(f"/tmp/.rlef-new-{token}", 0o711)
    lock = os.open(f"/tmp/.rlef-new-{token}", os.O_RDONLY | os.O_DIRECTORY)  # kept open: the lock
    _check(_libc.flock(lock, LOCK_EX), "flock")
    os.rename(f"/tmp/.rlef-new-{token}", f"/tmp/rlef-sandbox-{token}")  # only now, locked, can a scan see it
    os.mkdir(f"/tmp/rlef-sandbox-{token}/w", 0o700)
    return f"/tmp/rlef-sandbox-{token}"


def _empty(folder: str) -> None:
    """Remove everything in `folder`, whatever a program built there, without
    recursion (a chain of nested folders may be deeper than any stack): each
    subfolder's entries move up into `folder`, then the subfolder goes, so each
    entry is renamed at most once. Folders it made unreadable are made readable
    first; symlinks are removed, never followed."""
    import stat
    top = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    moved = 0
    try:
        while names := os.listdir(top):
            for name in names:
                if not stat.S_ISDIR(os.stat(name, dir_fd=top, follow_symlinks=False).st_mode):
                    os.unlink(name, dir_fd=top)
                    continue
                os.chmod(name, 0o700, dir_fd=top)
                sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=top)
                try:
                    for child in os.listdir(sub):
                        while True:
                            moved += 1
                            try:
                                os.rename(child, f".rlef-{moved}", src_dir_fd=sub, dst_dir_fd=top)
                                break
                            except OSError as e:  # the program took that name for a folder: the next
                                if e.errno not in (17, 20, 21, 39):  # EEXIST ENOTDIR EISDIR ENOTEMPTY
                                    raise
                finally:
                    os.close(sub)
                os.rmdir(name, dir_fd=top)
    finally:
        os.close(top)


class _LandlockMode:
    """The landlock mode's set-up: a Landlock ruleset and two seccomp filters, checked
    in a confined child, the worker's filter installed in the worker and each child
    confined by _confine; as root, each child takes the worker's own uid. Sets
    ruleset, landlock_flags, filter, pid_slots, fprogs and read_caps."""

    def _set_up_landlock(self, iso: dict, reasons: list) -> None:
        """The landlock mode, if the kernel has Landlock and seccomp filters; a forked
        child checks that both hold before the worker relies on them."""
        import ctypes
        if _ARCH is None:
            reasons.append(f"landlock: no seccomp filter here for {os.uname().machine}")
            return
        if unbounded := _unbounded_forks(self.uid, iso["pids_cgroup"]):
            reasons.append("landlock: " + unbounded)
            return
        abi = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, 0, 1)
        if abi < 0:
            reasons.append("landlock: " + _text(_failed("landlock_create_ruleset", ctypes.get_errno())))
            return
        stdlib = os.path.dirname(os.__file__)
        if self.uid is not None and _probe(lambda: (self._take_uid(), os.listdir(stdlib))):
            # Python is installed where only root may read: pyenv or conda in /root, a home
            # of mode 700. The child then keeps CAP_DAC_OVERRIDE (in Docker's default set)
            # and no other capability: Landlock, which binds root too, alone bounds its
            # files; its uid still bounds forks (RLIMIT_NPROC), signals and tracing.
            with open("/proc/self/status") as f:
                if int(f.read().partition("CapEff:")[2].split()[0], 16) & 1 << CAP_DAC_OVERRIDE:
                    self.read_caps = (ctypes.c_uint32 * 2)(0x20080522, 0), (ctypes.c_uint32 * 6)(
                        1 << CAP_DAC_OVERRIDE, 1 << CAP_DAC_OVERRIDE)  # effective, permitted
        readable = list(_VISIBLE) + [sys.base_prefix, sys.base_exec_prefix]
        try:
            self.ruleset = _landlock_ruleset(abi, readable, self.workdir)
        except OSError as e:
            reasons.append("landlock: " + _text(e))
            return
        self.landlock_flags = LL_RESTRICT_SELF_LOG_SAME_EXEC_OFF | LL_RESTRICT_SELF_LOG_SUBDOMAINS_OFF if abi >= 7 else 0
        worker_filter, _ = _seccomp_filter(_DENIED, _CONDITIONS)
        self.filter, self.pid_slots = _seccomp_filter(_CHILD_DENIED, _CHILD_CONDITIONS)
        self.fprogs = [_fprog(worker_filter), _fprog(self.filter)]  # (each keeps its buffer alive)
        failure = _probe(self._confine_test)
        if failure:
            reasons.append("landlock: " + failure)
            os.close(self.ruleset)
            self.ruleset = None
            return
        _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, self.fprogs[0][0]), "prctl(PR_SET_SECCOMP)")
        for _ in range(3):  # ctypes' call path warmed here, not in each child: ~9 page faults a child
            _libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, -1, 0), _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, None)
        iso.update(mode="landlock", landlock=abi, seccomp=True)

    def _confine(self) -> None:
        """In the child, before the program: Landlock, and the child's seccomp filter
        with our own pid written into it (the worker's filter holds already)."""
        pid = os.getpid()
        for offset, sign in self.pid_slots:
            struct.pack_into("<I", self.filter, offset, (sign * pid) & 0xFFFFFFFF)
        _check(_libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, self.ruleset, self.landlock_flags),
               "landlock_restrict_self")
        _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, self.fprogs[1][0]), "prctl(PR_SET_SECCOMP)")

    def _confine_test(self) -> None:
        """For _probe: confined as a child will be, the folder around the working
        folder is closed (Landlock holds), no socket can be made and no signal sent
        to the worker (seccomp holds), and the standard library can be read (under a
        uid of its own, with read_caps where Python is installed where only root may
        read)."""
        _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, self.fprogs[0][0]), "prctl(PR_SET_SECCOMP)")
        self._confine()
        if self.uid is not None:
            self._take_uid()
        stdlib = os.path.dirname(os.__file__)
        try:
            os.listdir(stdlib)
        except OSError:
            raise RuntimeError(f"a program under a uid of its own cannot read the standard library ({stdlib}), "
                               "and root here lacks CAP_DAC_OVERRIDE to let it: Python is installed where only "
                               "root may read (pyenv or conda in a home of mode 700?). Install it where every "
                               "user may read it (e.g. /usr/local or /opt), or give root CAP_DAC_OVERRIDE "
                               "(Docker grants it by default)") from None
        for attempt, what in ((lambda: os.listdir(os.path.dirname(self.workdir)), "Landlock"),
                              (lambda: _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM), "seccomp"),
                              (lambda: os.kill(os.getppid(), 0), "seccomp for children")):
            try:
                attempt()
            except PermissionError:
                continue
            raise RuntimeError(f"{what} did not hold in a confined child")

    def _take_uid(self) -> None:
        """As root, in the child: the worker's uid, no groups, and no capabilities but
        read_caps (see _set_up_landlock) where Python is installed where only root may read."""
        os.setgroups([])
        os.setresgid(self.uid, self.uid, self.uid)
        if self.read_caps:
            _libc.prctl(PR_SET_KEEPCAPS, 1)  # setresuid then keeps the permitted set
        os.setresuid(self.uid, self.uid, self.uid)
        if self.read_caps:
            _check(_libc.capset(*self.read_caps), "capset")

    @staticmethod
    def _can_become(uid: int) -> bool:
        """Root inside a container may be unable to take an arbitrary uid."""
        pid = os.fork()
        if pid == 0:
            try:
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
                os._exit(0)
            finally:
                os._exit(1)
        return os.waitpid(pid, 0)[1] == 0


class _Execution:
    """The fds and state of one execution, as the worker sees it."""

    def __init__(self, job: dict, stdin_fd: int, program_fd: int):
        self.job, self.killed, self.written, self.nonce = job, None, 0, None
        self.first = None  # the child's first message: R, or S + what failed
        self.passed = self.assertion_failed = False
        self.out_r, out_w = os.pipe()
        self.err_r, err_w = os.pipe()
        # Control channel, one packet per message. Child to worker: R(eady), S(etup
        # failed), T(op level done), A(ssertion failed), P(assed) + nonce. Worker to
        # child: the nonce with the check code's memfd attached. A child cannot put
        # anything into its own receiving end of a socketpair: only the worker can.
        self.ctl, child_ctl = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        self.fresh_fds = [stdin_fd, out_w, err_w, child_ctl.detach()]  # closed by us after the fork
        # The child's fds 0-4; it reads the program from fd 4, then closes it.
        self.child_fds = [*self.fresh_fds, program_fd]
        self.worker_fds = [self.out_r, self.err_r]

    @property
    def ready(self) -> bool:
        return self.first == b"R"


# What Sandbox.isolation reports, besides "mode", "landlock" (the ABI in force, 0 if
# none), "cgroup" (the hierarchies found), "lost" and "reason" (see Sandbox).
_PROTECTIONS = ("user_namespace", "mount_namespace", "pid_namespace", "network_namespace", "ipc_namespace",
                "private_root", "unprivileged_uid", "seccomp", "memory_cgroup", "pids_cgroup", "cgroup_kill")


class _Isolation(_NamespaceMode, _LandlockMode, _CgroupMember):
    """The worker's set-up, once: the first mode that works here (namespaces; else
    landlock with seccomp; else unisolated: only the host folder, rlimits and, as
    root, a uid of its own), the cgroup it joins, its supervisor, and whatever every
    child would otherwise do alike. isolation is what Sandbox.isolation reports."""

    def __init__(self, uid: int, req: int, resp: int):
        import traceback, types  # noqa: F401  (loaded once, for every child)
        for name in _PRELOAD:
            __import__(name)
        self.req, self.resp = req, resp
        iso = self.isolation = dict.fromkeys(_PROTECTIONS, False)
        iso.update(mode="unisolated", landlock=0, cgroup="none", lost=(), reason="")
        lost, reasons = [], []
        root = os.geteuid() == 0
        tasks = 0 if root else _count_tasks(os.getuid())
        self.uid = uid if root and self._can_become(uid) else None
        cgroup, note = self._make_cgroup(uid, root)
        self._enter_namespace_mode(root, isinstance(cgroup, _CgroupV2) and "pids" not in cgroup.missing, reasons)
        workroot = None
        if not iso["private_root"]:  # on the host: the supervisor removes it when the worker is gone
            workroot = _make_workroot()
            self.workdir = workroot + "/w"
        self._start_supervisor(req, resp, cgroup, workroot)
        self._join_cgroup(cgroup, note, lost)
        self.ooms = self._oom_kills()
        iso["unprivileged_uid"] = self.uid is not None
        self.ruleset = self.read_caps = None
        if iso["mode"] == "namespaces":
            self._set_up_private_root()
        else:
            if self.uid is not None:
                os.chown(self.workdir, self.uid, self.uid)
            self._set_up_landlock(iso, reasons)  # if it fails: unisolated, the host folder and rlimits
        with open("/proc/self/status") as f:  # capabilities to drop in each child (userns root)
            self.capabilities = self.uid is None and int(f.read().partition("CapEff:")[2].split()[0], 16) != 0
        if self.capabilities:
            self._drop_bounding_set()
        self.nproc = NPROC if self.uid is not None else NPROC + (2 if iso["user_namespace"] else tasks)
        iso["lost"], iso["reason"] = tuple(lost + self._losses()), "; ".join(reasons)
        self._prepare_children()

    def _start_supervisor(self, req: int, resp: int, cgroup, workroot: str | None) -> None:
        """Fork: the parent becomes the worker's supervisor (_supervise) and never
        returns; the worker goes on, with what holds for it and all its children."""
        _libc.prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans come to us (not inherited by a fork)
        worker = os.fork()
        if worker:
            os.close(req), os.close(resp)
            _supervise(worker, cgroup and cgroup.top, workroot)
        _libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
        if cgroup:
            os.close(cgroup.lock)  # the supervisor's copy holds it
        self.pid_namespace = self.isolation["pid_namespace"]
        if not self.pid_namespace:  # (in one, we are pid 1: the reaper of its orphans)
            _libc.prctl(PR_SET_CHILD_SUBREAPER, 1)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # children may share our uid (they inherit this)
        _libc.prctl(PR_SET_DUMPABLE, 0)  # no ptrace, no /proc/PID/mem of the worker
        # No setuid binaries for the children: set here once, inherited by every fork
        # and irrevocable (a prctl in each child cost it ~10 page faults through ctypes).
        # Landlock and seccomp need it too.
        _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        _libc.mallopt(M_ARENA_MAX, 1)  # threads would each reserve 64 MiB of address space
        os.environ.clear()  # e.g. the LC_CTYPE that locale coercion set
        with open("/proc/sys/kernel/cap_last_cap") as f:
            self.cap_last = int(f.read())

    def _prepare_children(self) -> None:
        """What every child would otherwise do alike, done once here."""
        import _sitebuiltins  # -S skips `site`, which is what defines exit() and quit()
        builtins.exit = _sitebuiltins.Quitter("exit", "Ctrl-D (i.e. EOF)")
        builtins.quit = _sitebuiltins.Quitter("quit", "Ctrl-D (i.e. EOF)")
        # Made once and emptied after every execution. The program never holds these
        # (it writes to pipes; the child closes the program's memfd before running
        # it), so it cannot change their flags or offsets for the next one. Its stdin
        # it does hold: that memfd is made anew for each execution.
        self.out_mem, self.err_mem = os.memfd_create("stdout"), os.memfd_create("stderr")
        self.program_mem = os.memfd_create("program")
        # What each child would otherwise compute or build for itself: every page
        # a child touches is a page it copies (~3 us each, ~200 per child), so
        # whatever is the same for every child is done once, here.
        self.fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        self.fixed_limits = ((resource.RLIMIT_NPROC, self.nproc), (resource.RLIMIT_FSIZE, FILE_SIZE),
                             (resource.RLIMIT_NOFILE, NOFILE), (resource.RLIMIT_CORE, 0))
        sys.argv = ["solution.py"]
        _children_stdio()
        _warm_up()
        _children_stdio()  # fresh again: the warm-up used them
        sys.modules["__main__"] = type(sys)("__main__")  # the program's module, still empty

    def _losses(self) -> list[str]:
        """What this mode does not protect against: Sandbox.isolation["lost"]."""
        mode = self.isolation["mode"]
        if mode == "namespaces":
            return []
        if mode == "landlock":
            dac = ["file permissions: Python is installed where only root may read, so programs keep "
                   "CAP_DAC_OVERRIDE to read it, and Landlock alone bounds their files"] if self.read_caps else []
            return dac + ["a disk quota: the working folder is in the host's /tmp, where a program may write "
                          f"files of {FILE_SIZE >> 20} MiB each, as many as its time allows",
                          "names and sizes of files outside its folder: stat() is no Landlock right (reading, "
                          "listing and writing are)"]
        return ["the caller's files: it may read and write whatever this uid may"
                if self.uid is None else "files: it may read and write whatever any user may",
                "the caller's memory, expected outputs included (/proc/PID/mem)" if self.uid is None else
                "other processes' memory (none of the caller's: another uid)",
                "the network", "signals to this user's processes, kill(-1) included" if self.uid is None else
                "signals to its own uid's processes", "the other mount, pid, network and ipc namespaces"]


class _Supervision:
    """The executor's watch over a running child and its cleaning up after it."""

    def _watch(self, x: _Execution, pid: int, start: float) -> None:
        """Until the child exits: move its output into memfds, answer its control
        messages, and kill it at the CPU, wall-clock or output limit."""
        pidfd = os.pidfd_open(pid)
        poller = select.poll()
        for fd in (x.out_r, x.err_r, pidfd) + ((x.ctl.fileno(),) if x.job["check"] >= 0 else ()):
            poller.register(fd, select.POLLIN)  # stdin/stdout tests: messages read at the end
        sinks = {x.out_r: self.out_mem, x.err_r: self.err_mem}
        time_limit = x.job["time_limit"]
        wall_limit = 3 * time_limit + 1
        cpu_clock = (~pid << 3) | 2  # the kernel's CPU clock of process `pid`, all threads
        while True:
            elapsed = time.monotonic() - start
            try:
                cpu = time.clock_gettime(cpu_clock)
            except OSError:  # already gone
                cpu = 0.0
            if x.killed is None and (elapsed > wall_limit or cpu > time_limit):
                x.killed = "TLE"
                os.kill(pid, signal.SIGKILL)
            # a program on n cores reaches the limit no sooner than (limit - cpu) / n
            timeout = max(min(wall_limit - elapsed, (time_limit - cpu) / 2), 0.002)
            for fd, _ in poller.poll(timeout * 1000):
                if fd == pidfd:
                    os.close(pidfd)
                    return
                if fd == x.ctl.fileno():
                    if not self._message(x):
                        poller.unregister(fd)
                    continue
                moved = os.splice(fd, sinks[fd], 1 << 20) if x.killed != "OLE" else 0
                x.written += moved
                if not moved:
                    poller.unregister(fd)
                if x.written > OUTPUT_LIMIT and x.killed is None:
                    x.killed = "OLE"  # at once: nobody buffers more than the limit
                    os.kill(pid, signal.SIGKILL)

    def _message(self, x: _Execution) -> bool:
        """Read one control message; on the first T of a function-call test, send
        the check. False once the child's end is closed. Whatever the program does
        to its end of the socket is its own failure, never SE: errors here only
        mean that the channel is gone."""
        try:
            data = x.ctl.recv(128)
        except OSError:  # e.g. reset: the child exited with our message unread
            return False
        if not data:
            return False
        if x.first is None:
            x.first = data
        elif data == b"A":
            x.assertion_failed = True
        elif x.nonce is not None and data == b"P" + x.nonce:
            x.passed = True
        elif data == b"T" and x.ready and x.job["check"] >= 0 and x.nonce is None:
            # Top level done: only now does the check code exist outside the caller's
            # pipe, in a memfd made for this child, with a nonce to send back on success.
            check_fd = self._memfd("check", x.job["check"])
            x.nonce = os.urandom(16).hex().encode()
            try:
                x.ctl.sendmsg([x.nonce], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("i", check_fd))])
            except OSError:  # the child closed its end
                pass
            os.close(check_fd)
        return True

    def _kill_leftovers(self, program: int) -> None:
        """Kill and reap every process the program left (daemons that setsid()
        away included). All of them are our descendants: we are pid 1 of their
        namespace, or their subreaper."""
        deadline = time.monotonic() + 10
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return  # nothing is left
            if pid:
                continue
            if time.monotonic() > deadline:
                raise RuntimeError("could not kill the program's processes")
            self._kill_all(program)
            time.sleep(0.0005)

    def _kill_all(self, program: int) -> None:
        if self.kill_fd is not None:  # cgroup v2: every process of the execution at once
            os.write(self.kill_fd, b"1")
        elif self.pid_namespace:  # as pid 1: every other process of the namespace
            os.kill(-1, signal.SIGKILL)
        elif self.uid is not None:  # every process of the worker's own uid
            pid = os.fork()
            if pid == 0:
                try:
                    os.setresuid(self.uid, self.uid, self.uid)
                    os.kill(-1, signal.SIGKILL)
                finally:
                    os._exit(0)
        else:
            if self.ruleset is not None:  # landlock: its process group, which it cannot leave,
                try:  # at once (a fork bomb does not outrun this); still ours: it has members
                    os.killpg(program, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            for pid in _children(os.getpid()):  # and our children: orphans come to us
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    def _clean(self, workdir: str) -> None:
        """Leave nothing for the next program in its working directory."""
        if self.isolation["private_root"]:
            # A tmpfs directory's size counts its entries, its mode and links show any
            # chmod or subfolder: one stat says whether anything is left. If so, a
            # fresh tmpfs (no walk through hostile trees).
            st = os.stat(workdir)
            if (st.st_mode, st.st_nlink, st.st_size) != self.workdir_state:
                _check(_libc.umount2(workdir.encode(), MNT_DETACH), "umount")
                self.fresh_workdir()
            return
        try:  # landlock: the program could write only in there
            left = os.listdir(workdir)
        except PermissionError:  # unisolated: it may have closed it
            left = True
        if left:
            os.chmod(workdir, 0o700)
            _empty(workdir)


class _Executor(_Supervision, _Isolation):
    """The worker: isolation set up once (_Isolation), then one forked child per
    execution, watched and cleaned up after (_Supervision)."""

    def serve(self) -> None:
        while True:
            try:
                header = _read_frame(self.req)
            except EOFError:
                return
            try:
                reply = self.execute(header)
            except Exception as e:  # report, then exit: the caller restarts us
                import traceback
                _write_all(self.resp, _pack({"error": "".join(traceback.format_exception(e))}))
                return
            _write_all(self.resp, _pack(reply))
            err_size = os.fstat(self.err_mem).st_size
            for fd, offset, size in ((self.out_mem, 0, reply["stdout"]),
                                     (self.err_mem, err_size - reply["stderr"], reply["stderr"])):
                while size:
                    moved = os.splice(fd, self.resp, size, offset_src=offset)
                    offset, size = offset + moved, size - moved
            for fd, size in ((self.out_mem, reply["stdout"]), (self.err_mem, err_size),
                             (self.program_mem, header["code"])):
                if size:  # emptied for the next execution
                    os.ftruncate(fd, 0), os.lseek(fd, 0, os.SEEK_SET)

    def _memfd(self, name: str, size: int) -> int:
        """A memfd filled with the next `size` bytes of the request pipe, which go
        from pipe to memfd inside the kernel, never through our memory."""
        fd = os.memfd_create(name)
        self._fill(fd, size)
        os.lseek(fd, 0, os.SEEK_SET)
        return fd

    def _fill(self, fd: int, size: int) -> None:
        while size:
            moved = os.splice(self.req, fd, size)
            if not moved:
                raise EOFError("request truncated")
            size -= moved

    def execute(self, job: dict) -> dict:
        """Run one program on one test in a fresh child; report what happened."""
        self._fill(self.program_mem, job["code"])
        x = _Execution(job, self._memfd("stdin", job["input"]), self.program_mem)
        limits = ((resource.RLIMIT_CPU, math.ceil(job["time_limit"]) + 1),
                  (resource.RLIMIT_AS, job["memory"])) + self.fixed_limits
        limit = job["memory"] + CGROUP_SLACK
        if self.limit_fd is not None and limit != self.cgroup_limit:
            os.write(self.limit_fd, str(limit).encode())
            self.cgroup_limit = limit
        workdir = self.workdir
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            try:
                self._child(job, workdir, x.child_fds, limits)
            finally:
                os._exit(70)
        for fd in x.fresh_fds:
            os.close(fd)
        self._watch(x, pid, start)
        _, status, usage = os.wait4(pid, 0)
        wall = time.monotonic() - start
        self._kill_leftovers(pid)  # also whatever still holds the pipes open
        for fd, sink in ((x.out_r, self.out_mem), (x.err_r, self.err_mem)):
            while x.killed is None and (moved := os.splice(fd, sink, 1 << 20)):
                x.written += moved
                if x.written > OUTPUT_LIMIT:
                    x.killed = "OLE"
        while self._message(x):  # the child's end is closed: recv() returns
            pass  # what is queued, then b""
        x.ctl.close()
        if job["check"] >= 0 and x.nonce is None:  # keep the request stream in step
            os.close(self._memfd("check", job["check"]))
        for fd in x.worker_fds:
            os.close(fd)
        self._clean(workdir)
        if not x.ready:
            raise RuntimeError("the child failed before running the program: " +
                               (x.first or b"").decode("ascii", "replace"))
        if job["check"] < 0:
            check = None
        elif x.nonce is None:
            check = "not reached"
        elif x.passed:
            check = "passed"
        else:
            check = "failed" if x.assertion_failed else "error"
        ooms, self.ooms = self.ooms, self._oom_kills()
        return {"exit": os.waitstatus_to_exitcode(status), "cpu": usage.ru_utime + usage.ru_stime,
                "wall": wall, "killed": x.killed, "oom": self.ooms > ooms, "check": check,
                "stdout": min(os.fstat(self.out_mem).st_size, OUTPUT_LIMIT),
                "stderr": min(os.fstat(self.err_mem).st_size, STDERR_KEEP)}

    def _child(self, job: dict, workdir: str, fds: list[int], limits: tuple) -> None:
        """In the forked child, before any of the program's code: fds, limits, uid."""
        try:
            os.setsid()
            if self.procs_fd is not None:  # cgroup v2: into the execution's own cgroup, first
                os.write(self.procs_fd, b"0")
            if self.adjust_oom:  # cgroup v1: the OOM killer takes the program, not the worker
                fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
                os.write(fd, b"1000"), os.close(fd)
            for target, fd in enumerate(fds):  # stdin, stdout, stderr, control, program
                os.dup2(fd, target)
            if self.ruleset is not None:  # landlock mode (needs the ruleset's fd, so here)
                self._confine()
            # Threat: the worker's pipes to the caller and its cgroup files. Gone.
            os.closerange(len(fds), self.fd_limit)
            program = os.pread(4, job["code"], 0)
            os.close(4)
            for kind, value in limits:
                resource.setrlimit(kind, (value, value))
            os.chdir(workdir)
            if self.uid is not None:  # root ignores RLIMIT_NPROC and may do anything
                self._take_uid()
            elif self.capabilities:  # root in our user namespace
                self._drop_capabilities()
            if not self.pid_namespace:  # (in one, we are pid 1: our death kills all of it)
                _libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
        except BaseException as e:
            os.write(3, b"S" + repr(e).encode()[:200])
            os._exit(1)
        os.write(3, b"R")  # from here on the program's code runs
        if job["check"] < 0:
            os.close(3)  # a stdin/stdout test needs no control channel
        _run_program(program, job["check"] >= 0)


# ---------------------------------------------------------------- the harness
# Runs in the child, in the same interpreter as the program.

def _load(blob: bytes):
    """A code object and its source, from _compile()'s format."""
    (size,) = struct.unpack_from("<I", blob)
    return marshal.loads(memoryview(blob)[4:4 + size]), blob[4 + size:]


def _run_program(program: bytes, check: bool) -> None:
    """Run the program as __main__; for a function-call test, then its check. Exits.

    A stdin/stdout test is judged on stdout and exit status alone, both of which
    the program controls anyway: nothing here needs protecting from it."""
    _exit = os._exit
    run_check = _check_runner() if check else None  # before the program runs
    main = sys.modules["__main__"]  # made empty by the worker, with sys.argv
    error, source = _exec_main(program, main)
    if check:
        run_check(main.__dict__, error, source)  # exits
    status = _report(error, {"solution.py": source})
    threading_module = sys.modules.get("threading")
    if threading_module is not None:  # what the interpreter does at exit:
        threading_module._shutdown()  # wait for the program's threads,
    atexit._run_exitfuncs()  # run its atexit hooks
    _flush()
    _exit(status)


def _exec_main(program: bytes, main) -> tuple:
    """Run the program's code in the module `main`: (what it raised or None, its source)."""
    base_exception = BaseException  # the program may rebind the builtin
    code, source = _load(program)
    try:
        exec(code, main.__dict__)
    except base_exception as e:
        return e, source
    return None, source


def _check_runner():
    """For a function-call test: everything the harness needs after the program's
    top level, taken before it runs. Returns the function that runs the check.

    Protocol: send T (top level done); receive the nonce with the check code's
    memfd attached (neither existed in this process before); run the check; send
    P + nonce only if it raised nothing. Threats and answers:
    - exiting early (sys.exit, os._exit, atexit, an exception): no T, or no P;
    - printing a marker: stdout is not looked at;
    - writing P (or T, or a fake check) to every fd: the nonce did not exist while
      the top level ran, and the worker's messages come only through the socket;
    - replacing builtins (print, AssertionError, abs, isinstance...): the builtins
      are restored from a snapshot before the harness or the check use them, and
      the check gets a private copy; module attributes the program may rebind
      (os.write, socket methods, marshal.loads) are held here as locals;
    - returning objects that compare equal to anything: see _as_builtin."""
    bdict, pristine = builtins.__dict__, dict(builtins.__dict__)
    ctl = _socket.socket(fileno=3)
    send, recvmsg, blocking = ctl.send, ctl.recvmsg, ctl.setblocking
    pread, fstat, close = os.pread, os.fstat, os.close
    loads, unpack, _exit, base_exception = marshal.loads, struct.unpack_from, os._exit, BaseException
    restore = lambda: (bdict.clear(), bdict.update(pristine))  # noqa: E731

    def run_check(program: dict, error, program_source: bytes) -> None:
        restore()
        if error is not None:  # no T: the test never runs
            status = _report(error, {"solution.py": program_source})
            _flush()
            _exit(status)
        blocking(True)  # the program may have made fd 3 non-blocking
        send(b"T")
        nonce, ancillary, _, _ = recvmsg(64, _socket.CMSG_SPACE(4))
        (fd,) = unpack("i", ancillary[0][2])
        blob = pread(fd, fstat(fd).st_size, 0)
        close(fd)
        (size,) = unpack("<I", blob)
        code, source = loads(blob[4:4 + size]), blob[4 + size:]
        sys.settrace(None), sys.setprofile(None)
        namespace = {"__name__": "__main__", "__builtins__": dict(pristine)}
        for name, value in program.items():
            if name in pristine or name == "__builtins__":
                continue  # the check sees the real abs, len, isinstance...
            if callable(value) and not issubclass(type(value), type):
                value = _returning_builtins(value, restore)
            namespace[name] = value
        try:
            exec(code, namespace)
        except base_exception as e:
            restore()
            if isinstance(e, AssertionError):
                send(b"A")
            status = _report(e, {"test.py": source, "solution.py": program_source}) or 1
            _flush()
            _exit(status)
        restore()
        _flush()
        send(b"P" + nonce)
        _exit(0)

    return run_check


def _returning_builtins(function, restore):
    def call(*args, **kwargs):
        value = function(*args, **kwargs)
        restore()  # the program may have replaced builtins during the call
        return _as_builtin(value, [10 ** 7])
    return call


_EXACT = (type(None), bool, int, float, complex, str, bytes)
_REBUILD = (
    (list, lambda v, b: [_as_builtin(x, b) for x in list.__iter__(v)]),
    (tuple, lambda v, b: tuple(_as_builtin(x, b) for x in tuple.__iter__(v))),
    (dict, lambda v, b: {_as_builtin(k, b): _as_builtin(x, b) for k, x in dict.items(v)}),
    (set, lambda v, b: {_as_builtin(x, b) for x in set.__iter__(v)}),
    (frozenset, lambda v, b: frozenset(_as_builtin(x, b) for x in frozenset.__iter__(v))),
    (int, lambda v, b: int.__index__(v)),
    (float, lambda v, b: float.__float__(v)),
    (complex, lambda v, b: complex.__complex__(v)),
    (str, lambda v, b: str.__str__(v)),
    (bytes, lambda v, b: bytes.__bytes__(v)),
)


def _as_builtin(value, budget: list):
    """`value` rebuilt from exact built-in types through the base types' own
    methods. Threat: an object whose __eq__ always says True (or an int/list
    subclass overriding comparison) would pass every `assert f(x) == y`; its
    rebuilt value compares as what it really holds. Other objects fail the test."""
    budget[0] -= 1
    if budget[0] < 0:
        raise AssertionError("the returned value is too large to compare")
    kind = type(value)
    if kind in _EXACT:
        return value
    for base, rebuild in _REBUILD:
        if issubclass(kind, base):
            return rebuild(value, budget)
    raise AssertionError(f"returned a {kind.__name__!r} object; tests compare built-in values only")


def _report(error, sources: dict[str, bytes]) -> int:
    """Exit status for how the code ended, printing the traceback like Python
    (`sources`: file name -> source, for the lines the traceback quotes)."""
    if error is None:
        return 0
    if isinstance(error, SystemExit):
        if error.code is None or isinstance(error.code, int):
            return (error.code or 0) & 0xFF
        print(error.code, file=sys.__stderr__)
        return 1
    if isinstance(error, MemoryError):  # printing a traceback may need memory
        os.write(2, b"MemoryError\n")
        return 1
    try:
        import linecache, traceback
        for filename, source in sources.items():
            lines = source.decode("utf-8", "replace").splitlines(True)
            linecache.cache[filename] = (len(source), None, lines, filename)
        report = traceback.TracebackException(type(error), error, error.__traceback__.tb_next)
        # the harness's own frames (the wrapper around the program's functions)
        # would show the program this file's path and line numbers: not its business
        report.stack = traceback.StackSummary.from_list([f for f in report.stack if f.filename != __file__])
        sys.__stderr__.write("".join(report.format()))
    except BaseException:
        os.write(2, f"{type(error).__name__}\n".encode())
    return 1


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except BaseException:
            pass


# ------------------------------------------------------------------------ CLI

def _main(argv: list[str]) -> int:
    import argparse
    parser = argparse.ArgumentParser(description="Run a Python solution on tests in the sandbox.")
    parser.add_argument("solution", help="the program, a .py file")
    parser.add_argument("--tests", help="JSON: a list of {input, output} or {check} objects, "
                                        "or CodeContests style {input: [...], output: [...]}")
    parser.add_argument("--input", action="append", default=[], help="a stdin file (repeatable)")
    parser.add_argument("--output", action="append", default=[], help="its expected stdout file")
    parser.add_argument("--time-limit", type=float, default=10.0, help="CPU seconds per test")
    parser.add_argument("--memory-limit", type=int, default=1024, help="MiB per test")
    parser.add_argument("--stop-on-failure", action="store_true")
    parser.add_argument("--allow-unisolated", action="store_true",
                        help="run even where nothing isolates the program (Sandbox says why)")
    args = parser.parse_args(argv)
    if len(args.input) != len(args.output):
        parser.error("give one --output per --input")
    try:
        tests, code = _read_cli_files(args)
    except (OSError, ValueError, TypeError, KeyError) as e:  # the user's files: one line, no traceback
        raise SystemExit(f"error: {e}") from None
    if not tests:
        parser.error("no tests: use --tests or --input/--output")
    try:
        sandbox = Sandbox(workers=min(len(tests), os.cpu_count() or 1), allow_unisolated=args.allow_unisolated)
    except IsolationError as e:
        raise SystemExit(f"error: {e}") from None
    with sandbox:
        print(sandbox.describe())
        results = sandbox.run_tests(code, tests, args.time_limit, args.memory_limit, args.stop_on_failure)
    for number, (test, r) in enumerate(zip(tests, results), 1):
        print(f"test {number}: {r.verdict:4} {r.time:7.3f}s cpu {r.wall:7.3f}s wall")
        if r.verdict == "WA" and test.output is not None:
            print(f"  expected: {test.output[:300]!r}\n  got:      {r.stdout[:300]!r}")
        elif r.message and r.verdict != "AC":
            print("  " + r.message[-1500:].replace("\n", "\n  "))
    passed = sum(r.passed for r in results)
    print(f"{passed}/{len(results)} passed")
    return 0 if passed == len(results) else 1


def _read_cli_files(args) -> tuple[list[Test], str]:
    """The CLI's tests and program, from the files its arguments name."""
    tests = []
    if args.tests:
        import json
        with open(args.tests) as f:
            try:
                items = json.load(f)
            except ValueError as e:
                raise ValueError(f"{args.tests}: not JSON ({e})") from None
        if isinstance(items, dict):
            items = [{"input": i, "output": o} for i, o in zip(items["input"], items["output"])]
        try:
            tests = [Test(**item) for item in items]
        except TypeError as e:
            raise TypeError(f"{args.tests}: each test is {{input, output}} or {{check}} ({e})") from None
    for name_in, name_out in zip(args.input, args.output):
        with open(name_in) as fi, open(name_out) as fo:
            tests.append(Test(input=fi.read(), output=fo.read()))
    with open(args.solution) as f:
        return tests, f.read()


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
