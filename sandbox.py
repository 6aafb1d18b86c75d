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
    Sandbox(workers=N): .run_tests(...), .map([(code, tests), ...], ...), .isolation
    outputs_match(expected, actual)            the CodeContests token checker

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
      |  the caller, so no test data is in its memory. It enters new mount/pid/
      |  network/ipc namespaces (as pid 1 of its own), chroots into a read-only
      |  view of the Python install, and forks one child per execution.
    child: redirects stdin/stdout/stderr, sets rlimits, drops to the worker's
         own unprivileged uid (unprivileged callers: drops every capability of
         its user namespace), then runs the program with exec() as __main__.
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
        self.isolation = _read_frame(self.proc.stdout.fileno(), time.monotonic() + 60, self.poller)
        if "error" in self.isolation:
            raise RuntimeError("sandbox worker failed to start: " + self.isolation["error"])

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

    def __init__(self, workers: int | None = None):
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
        except BaseException:
            for worker in self._workers:
                worker.stop()
            raise
        #: What isolation is active here (the README lists what remains without it).
        self.isolation = dict(self._workers[0].isolation)
        self.uids = [w.uid for w in self._workers] if self.isolation["unprivileged_uid"] else []
        self._threads = [threading.Thread(target=self._serve, args=(w,), daemon=True)
                         for w in self._workers]
        for thread in self._threads:
            thread.start()

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

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER = 0x20000, 0x8000000, 0x10000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE, MS_RELATIME = 32, 4096, 16384, 1 << 18, 1 << 21
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP = 1, 4, 24
PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 36, 38
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


def _check(result: int, what: str) -> None:
    if result != 0:
        import ctypes
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source, target, fstype, flags, data=None) -> None:
    enc = lambda s: None if s is None else s.encode()
    _check(_libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


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


def _enter_namespaces(isolation: dict) -> None:
    """New mount, pid, network and ipc namespaces, each where the kernel allows it.
    Unprivileged, a user namespace first (we become root inside it only)."""
    uid, gid = os.getuid(), os.getgid()
    isolation["user_namespace"] = uid != 0 and _libc.unshare(CLONE_NEWUSER) == 0
    if isolation["user_namespace"]:
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    for name, flag in (("mount", CLONE_NEWNS), ("pid", CLONE_NEWPID), ("network", CLONE_NEWNET),
                       ("ipc", CLONE_NEWIPC)):
        isolation[name + "_namespace"] = _libc.unshare(flag) == 0


def _cgroup_path(uid: int) -> str | None:
    """Our own memory cgroup (v1), where a per-worker child cgroup goes."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if "memory" in controllers.split(","):
                return f"/sys/fs/cgroup/memory{path.rstrip('/')}/rlef-sandbox-{uid}"
    return None


def _join_memory_cgroup(uid: int) -> tuple[int | None, int | None]:
    """Move the worker into a memory cgroup of its own, where its children are born
    (moving each child instead would cost ~15 ms). Returns fds of its limit and
    OOM counter, or Nones where cgroup v1 memory is not there or not writable."""
    path = _cgroup_path(uid)
    try:
        parent = os.path.dirname(path)
        for stale in os.listdir(parent):  # left by workers that were killed; rmdir
            if stale.startswith("rlef-sandbox-"):  # refuses any cgroup still in use
                try:
                    os.rmdir(os.path.join(parent, stale))
                except OSError:
                    pass
        os.makedirs(path, exist_ok=True)
        with open(path + "/cgroup.procs", "w") as f:
            f.write("0")
        return os.open(path + "/memory.limit_in_bytes", os.O_WRONLY), os.open(path + "/memory.oom_control", os.O_RDONLY)
    except (OSError, TypeError):  # TypeError: no memory cgroup at all (path is None)
        return None, None


def _supervise(worker: int, uid: int) -> None:
    """The process outside the pid namespace: wait for the worker (pid 1 inside,
    so its death kills every process there), then remove its cgroup."""
    os.waitpid(worker, 0)
    path = _cgroup_path(uid)
    for _ in range(100):
        try:
            if path and os.path.isdir(path):
                os.rmdir(path)
            break
        except OSError:
            time.sleep(0.01)  # its last processes are still exiting
    os._exit(0)


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


def _build_root(with_proc: bool) -> None:
    """Chroot into a private, read-only view: the Python install and system
    libraries bound read-only, four device nodes, our own /proc, and a fresh tmpfs
    /sandbox for working directories. Threats: writing outside the working directory
    (/tmp, home, the repository), and reading files that hold tests (datasets,
    caches, the caller's files): they are simply not there."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount leaks to the host
    new = "/tmp"  # covered by a tmpfs in this mount namespace only
    _mount("tmpfs", new, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
    paths = list(_VISIBLE)
    if not any(sys.base_prefix.startswith(p + "/") for p in paths):
        paths.append(sys.base_prefix)  # e.g. a pyenv install under /root
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
        _mount(path, target, None, MS_BIND)
        st = os.statvfs(path).f_flag  # keep the flags a user namespace locks
        flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | (st & (MS_NODEV | MS_NOEXEC | 1024 | 2048))
        flags |= MS_RELATIME if st & 4096 else 0
        _mount(None, target, None, flags | (0 if path in _DEVICES else MS_NODEV))
    if with_proc:  # shows only this pid namespace: the caller is invisible
        os.mkdir(new + "/proc")
        _mount("proc", new + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.mkdir(new + "/sandbox")
    _mount("tmpfs", new + "/sandbox", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
           f"mode=0711,size={WORKDIR_SIZE}")
    _mount(None, new, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chroot(new)
    os.chdir("/")


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


class _Executor:
    """The worker: isolation set up once, then one forked child per execution."""

    def __init__(self, uid: int, req: int, resp: int):
        import traceback, types  # noqa: F401  (loaded once, for every child)
        for name in _PRELOAD:
            __import__(name)
        self.req, self.resp, self.count = req, resp, 0
        iso = self.isolation = {}
        root = os.geteuid() == 0
        tasks = 0 if root else _count_tasks(os.getuid())
        _enter_namespaces(iso)
        if iso["pid_namespace"]:
            worker = os.fork()
            if worker:
                os.close(req), os.close(resp)
                _supervise(worker, uid)
            _libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
        else:  # orphans of a program are re-parented to us, so we can reap them
            _libc.prctl(PR_SET_CHILD_SUBREAPER, 1)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # children may share our uid (they inherit this)
        _libc.prctl(PR_SET_DUMPABLE, 0)  # no ptrace, no /proc/PID/mem of the worker
        # No setuid binaries for the children: set here once, inherited by every fork
        # and irrevocable (a prctl in each child cost it ~10 page faults through ctypes).
        _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        _libc.mallopt(M_ARENA_MAX, 1)  # threads would each reserve 64 MiB of address space
        os.environ.clear()  # e.g. the LC_CTYPE that locale coercion set
        with open("/proc/sys/kernel/cap_last_cap") as f:
            self.cap_last = int(f.read())
        self.cgroup_limit = None
        self.limit_fd, self.oom_fd = _join_memory_cgroup(uid) if root else (None, None)
        iso["memory_cgroup"] = self.oom_fd is not None
        self.ooms = self._oom_kills()
        iso["private_root"] = iso["mount_namespace"]
        if iso["private_root"]:
            _build_root(iso["pid_namespace"])
            self.workroot = "/sandbox"
        else:  # no mount namespace: a private directory in the host's /tmp
            import tempfile
            self.workroot = tempfile.mkdtemp(prefix="rlef-sandbox-")
            os.chmod(self.workroot, 0o711)
        self.pid_namespace = iso["pid_namespace"]
        self.uid = uid if root and self._can_become(uid) else None
        iso["unprivileged_uid"] = self.uid is not None
        self.nproc = NPROC if self.uid is not None else NPROC + (2 if iso["user_namespace"] else tasks)
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
        self.count += 1
        workdir = f"{self.workroot}/{self.count}"
        os.mkdir(workdir, 0o700)
        if self.uid is not None:
            os.chown(workdir, self.uid, self.uid)
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
        self._kill_leftovers()  # also whatever still holds the pipes open
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

    def _oom_kills(self) -> int:
        if self.oom_fd is None:
            return 0
        _, found, rest = os.pread(self.oom_fd, 4096, 0).partition(b"\noom_kill ")
        return int(rest.partition(b"\n")[0]) if found else 0

    def _kill_leftovers(self) -> None:
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
            self._kill_all()
            time.sleep(0.0005)

    def _kill_all(self) -> None:
        if self.pid_namespace:  # as pid 1: every other process of the namespace
            os.kill(-1, signal.SIGKILL)
        elif self.uid is not None:  # every process of the worker's own uid
            pid = os.fork()
            if pid == 0:
                try:
                    os.setresuid(self.uid, self.uid, self.uid)
                    os.kill(-1, signal.SIGKILL)
                finally:
                    os._exit(0)
        else:  # best effort: our children (orphans come to us) and their groups
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        fields = f.read().rpartition(")")[2].split()
                    if int(fields[1]) == os.getpid():
                        os.kill(int(pid), signal.SIGKILL)
                        os.killpg(int(fields[2]), signal.SIGKILL)
                except (OSError, ValueError, IndexError):
                    pass

    def _clean(self, workdir: str) -> None:
        """Leave nothing for the next program: its working directory and anything
        else under the sandbox root go."""
        try:
            os.rmdir(workdir)
            # Under a uid of its own a program cannot write in the sandbox root (ours,
            # 0711): with its directory gone, nothing of it is left. Otherwise, look.
            if self.uid is not None or not os.listdir(self.workroot):
                return
        except OSError:
            pass
        if self.isolation["private_root"]:  # a fresh tmpfs: no rmtree of hostile trees
            _check(_libc.umount2(self.workroot.encode(), MNT_DETACH), "umount")
            _mount("tmpfs", self.workroot, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                   f"mode=0711,size={WORKDIR_SIZE}")
        else:
            import shutil
            shutil.rmtree(workdir, ignore_errors=True)

    def _child(self, job: dict, workdir: str, fds: list[int], limits: tuple) -> None:
        """In the forked child, before any of the program's code: fds, limits, uid."""
        try:
            os.setsid()
            for target, fd in enumerate(fds):  # stdin, stdout, stderr, control, program
                os.dup2(fd, target)
            # Threat: the worker's pipes to the caller and its cgroup files. Gone.
            os.closerange(len(fds), self.fd_limit)
            program = os.pread(4, job["code"], 0)
            os.close(4)
            if self.oom_fd is not None:  # the OOM killer takes the program, not the worker
                fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
                os.write(fd, b"1000"), os.close(fd)
            for kind, value in limits:
                resource.setrlimit(kind, (value, value))
            os.chdir(workdir)
            if self.uid is not None:  # root ignores RLIMIT_NPROC and may do anything
                os.setgroups([])
                os.setresgid(self.uid, self.uid, self.uid)
                os.setresuid(self.uid, self.uid, self.uid)
            else:
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

    def _drop_capabilities(self) -> None:
        """Unprivileged mode: we are root in our user namespace; the child must not be."""
        import ctypes
        for cap in range(self.cap_last + 1):
            _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
        _check(_libc.capset(header, (ctypes.c_uint32 * 6)()), "capset")


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
    args = parser.parse_args(argv)
    if len(args.input) != len(args.output):
        parser.error("give one --output per --input")
    tests = []
    if args.tests:
        import json
        with open(args.tests) as f:
            data = json.load(f)
        if isinstance(data, dict):
            data = [{"input": i, "output": o} for i, o in zip(data["input"], data["output"])]
        tests = [Test(**item) for item in data]
    for name_in, name_out in zip(args.input, args.output):
        with open(name_in) as fi, open(name_out) as fo:
            tests.append(Test(input=fi.read(), output=fo.read()))
    if not tests:
        parser.error("no tests: use --tests or --input/--output")
    with open(args.solution) as f:
        code = f.read()
    with Sandbox(workers=min(len(tests), os.cpu_count() or 1)) as sandbox:
        active = [k for k, v in sandbox.isolation.items() if v]
        print("isolation:", ", ".join(active))
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


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
