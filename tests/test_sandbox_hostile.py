"""Hostile programs against sandbox.py: every isolation claim of the README has a
test here. They are safe on a developer machine: every loop is bounded (by its own
count or by the sandbox's limits), every process they start is killed by the
sandbox, and each test ends by checking that nothing is left running and that a
correct program still gets AC."""
import json
import os
import secrets
import socket
import textwrap
import threading
import time

import pytest

from sandbox import NOFILE, NPROC, Sandbox, Test

GOOD = "print(sum(map(int, input().split())))"
ENV_SECRET = "env-" + secrets.token_hex(8)


def dedent(code: str) -> str:
    return textwrap.dedent(code).lstrip("\n")


@pytest.fixture(scope="module")
def sb():
    os.environ["RLEF_HOSTILE_TEST_SECRET"] = ENV_SECRET  # in the caller's environment
    try:
        with Sandbox(workers=2) as pool:
            yield pool
    finally:
        del os.environ["RLEF_HOSTILE_TEST_SECRET"]


def leftovers(sb) -> list[int]:
    """Processes on the host that run as one of the sandbox's uids."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as f:
                uid = next(int(line.split()[1]) for line in f if line.startswith("Uid:"))
        except (OSError, StopIteration):
            continue
        if uid in sb.uids:
            found.append(int(pid))
    return found


@pytest.fixture(autouse=True)
def afterwards_all_is_well(sb):
    yield
    deadline = time.monotonic() + 2
    while leftovers(sb) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert leftovers(sb) == []
    out = sb.map([(GOOD, [Test("2 3", "5")])] * 4, time_limit=2)  # every worker still serves
    assert [rs[0].verdict for rs in out] == ["AC"] * 4


def run(sb, code, test=None, **kw):
    return sb.run_tests(dedent(code), [test or Test("", "")], **{"time_limit": 2.0, **kw})[0]


def worker_root(worker) -> str:
    """The worker's private filesystem, seen from the host (we are its parent's parent)."""
    w0 = worker.proc.pid
    with open(f"/proc/{w0}/task/{w0}/children") as f:
        return f"/proc/{int(f.read().split()[0])}/root"


# ------------------------------------------------------------ environment, files

def test_environment_has_no_variables_of_the_caller(sb):
    r = run(sb, "import os, json; print(json.dumps(dict(os.environ)))")
    assert json.loads(r.stdout) == {} and ENV_SECRET not in r.stdout


def test_fresh_empty_working_directory_removed_afterwards(sb):
    code = """
        import os
        print(os.listdir("."), len(os.getcwd()) > 1)
        for i in range(3):
            os.makedirs(f"d{i}/e", exist_ok=True)
            open(f"d{i}/e/f", "w").write("x" * 1000)
        os.chmod("d0", 0)  # not even the worker's cleanup should trip on this
    """
    for _ in range(4):  # several runs per worker: each starts empty
        r = run(sb, code)
        assert r.stdout == "[] True\n", r.stderr
    if sb.isolation["private_root"] and os.geteuid() == 0:
        for worker in sb._workers:
            assert os.listdir(worker_root(worker) + "/sandbox") == []


def test_cannot_write_outside_its_working_directory(sb, tmp_path):
    if not sb.isolation["private_root"]:
        pytest.skip("no mount namespace here: the README lists what remains")
    token = secrets.token_hex(6)
    targets = ["/tmp", "/var/tmp", "/dev/shm", "/root", "/home", "/", "/usr", "/usr/lib", "/etc",
               "/sandbox", "..", "/proc", "/proc/self", str(tmp_path), os.getcwd(),
               os.path.dirname(os.__file__)]
    code = f"""
        import os
        ok = []
        for d in {targets!r}:
            for attempt in (lambda p: open(p, "w").write("x"), os.mkdir):
                try:
                    attempt(os.path.join(d, "rlef-escape-{token}"))
                    ok.append(d)
                except OSError:
                    pass
        open("mine", "w").write("fine")
        print(ok, open("mine").read())
    """
    r = run(sb, code)
    assert r.stdout == "[] fine\n", r.stdout + r.stderr
    for d in targets:
        assert not os.path.exists(os.path.join(d, f"rlef-escape-{token}"))


def test_cannot_read_the_callers_files(sb, tmp_path):
    if not sb.isolation["private_root"]:
        pytest.skip("no mount namespace here: the README lists what remains")
    secret = "file-" + secrets.token_hex(8)
    (tmp_path / "expected.txt").write_text(secret)
    os.chmod(tmp_path, 0o755), os.chmod(tmp_path / "expected.txt", 0o644)  # world-readable on the host
    paths = [str(tmp_path / "expected.txt"), os.path.abspath(__file__), "/etc/passwd", "/root/.bashrc",
             os.path.join(os.getcwd(), "sandbox.py")]
    code = f"""
        found = []
        for p in {paths!r}:
            try:
                found.append(open(p).read()[:100])
            except OSError:
                pass
        print(found)
    """
    r = run(sb, code)
    assert r.stdout == "[]\n" and secret not in r.stdout


# --------------------------------------------------------------------- network

def test_no_network(sb):
    if not sb.isolation["network_namespace"]:
        pytest.skip("no network namespace here: the README lists what remains")
    server = socket.create_server(("127.0.0.1", 0))  # the caller's loopback
    port = server.getsockname()[1]
    code = f"""
        import socket
        ok = []
        for host, port in [("127.0.0.1", {port}), ("8.8.8.8", 53), ("1.1.1.1", 443), ("::1", {port})]:
            try:
                socket.create_connection((host, port), timeout=1).close()
                ok.append(host)
            except OSError:
                pass
        try:
            socket.getaddrinfo("example.com", 80)
            ok.append("dns")
        except OSError:
            pass
        print(ok)
    """
    r = run(sb, code)
    server.setblocking(False)
    with pytest.raises(BlockingIOError):  # no connection waits in the backlog
        server.accept()
    server.close()
    assert r.stdout == "[]\n", r.stdout + r.stderr


# ------------------------------------------------------------------ processes

def test_daemonised_grandchildren_are_killed(sb):
    code = """
        import os, sys, time
        if os.fork() == 0:
            os.setsid()  # away from the program's session and process group
            if os.fork() == 0:
                t = time.time()
                while time.time() - t < 30:  # keeps writing to the inherited stdout
                    print("still here", flush=True)
                    time.sleep(0.01)
            os._exit(0)
        time.sleep(0.1)
        print("main exits")
    """
    t = time.monotonic()
    r = run(sb, code)
    assert "main exits" in r.stdout and r.exit_code == 0
    assert time.monotonic() - t < 3  # the daemon, still writing to stdout, did not keep the run open
    # (afterwards_all_is_well checks that no process of the sandbox's uids is left)


def test_fork_bomb(sb):
    peak = [0]
    done = threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], len(leftovers(sb)))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    code = """
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """
    t = time.monotonic()
    r = run(sb, code, time_limit=0.5)
    done.set()
    watcher.join()
    assert r.verdict in ("TLE", "RE") and time.monotonic() - t < 6
    if sb.isolation["unprivileged_uid"]:  # RLIMIT_NPROC holds per worker uid
        assert 1 < peak[0] <= NPROC * len(sb.uids)


def test_programs_run_unprivileged(sb):
    if not sb.isolation["unprivileged_uid"]:
        pytest.skip("not root: programs keep the caller's uid (the README says what remains)")
    code = """
        import os
        caps = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")]
        try:
            os.setuid(0)
            became_root = True
        except OSError:
            became_root = False
        print(os.getuid(), os.geteuid(), os.getgid(), caps, became_root)
    """
    uid, euid, gid, caps, became_root = run(sb, code).stdout.split()
    assert int(uid) == int(euid) == int(gid) and int(uid) in sb.uids
    assert caps == "['0000000000000000']" and became_root == "False"


def test_cannot_kill_the_sandbox_or_its_caller(sb):
    code = f"""
        import os, signal
        me = os.getpid()
        for pid in [1, os.getppid(), -1, {os.getpid()}] + list(range(2, 300)):
            if pid != me:
                for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGSTOP):
                    try:
                        os.kill(pid, sig)
                    except OSError:
                        pass
        print("done")
    """
    assert run(sb, code).stdout == "done\n"
    # the afterwards check runs a correct program on every worker


def test_proc_shows_only_the_sandbox(sb):
    if not sb.isolation["pid_namespace"]:
        pytest.skip("no pid namespace here: the README lists what remains")
    code = """
        import os
        pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        denied = []
        for path in ("/proc/1/mem", "/proc/1/environ", "/proc/1/root/sandbox", "/proc/1/fd/0"):
            try:
                open(path, "rb").read(1) if not path.endswith("sandbox") else os.listdir(path)
            except OSError:
                denied.append(path)
        print(len(pids), pids[0], os.getpid() in pids, len(denied))
    """
    count, first, self_seen, denied = run(sb, code).stdout.split()
    assert int(count) <= 3 and first == "1" and self_seen == "True"  # the worker, the program
    assert denied == "4"
    assert str(os.getpid()) not in run(sb, "import os; print(os.listdir('/proc'))").stdout


# ------------------------------------------------- expected outputs and checks

SCAN = """
import os
def scan(needle):
    # every readable byte of this process's memory, plus every fd it holds
    found = []
    def look(blob):
        i = blob.find(needle)
        while i >= 0 and len(found) < 50:
            found.append(blob[max(i - 16, 0):i + 40].hex())
            i = blob.find(needle, i + 1)
    import ctypes  # reads memory directly (/proc/self/mem is closed to it)
    for line in open("/proc/self/maps").read().splitlines():
        addrs, perms = line.split()[:2]
        if perms[0] != "r" or line.endswith(("[vvar]", "[vsyscall]", "[vvar_vclock]")):
            continue
        start, end = (int(a, 16) for a in addrs.split("-"))
        for at in range(start, end, 1 << 24):
            look(ctypes.string_at(at, min(end - at, 1 << 24)))
    for fd in range(256):
        try:
            os.set_blocking(fd, False)
            look(os.pread(fd, 1 << 20, 0) if os.lseek(fd, 0, os.SEEK_CUR) >= 0 else b"")
        except OSError:
            try:
                look(os.read(fd, 1 << 20))
            except OSError:
                pass
    return found
"""


def _tokens_in(text: str, *tokens: str) -> list[str]:
    hexes = {t: t.encode().hex() for t in tokens}
    return [t for t in tokens if t in text or hexes[t] in text]


def test_no_test_data_reaches_the_program():
    """Expected outputs never leave the caller; check code and earlier programs'
    outputs never pass through the worker's memory, so a child, which starts as a
    copy of that memory, finds none of them. Positive control: the scanner does
    find a token in its own stdin."""
    needle = "-" + "SECRET" + "-"
    out_secret, check_secret, printed_secret, own_secret = (
        f"{kind}{needle}{secrets.token_hex(8)}" for kind in ("OUT", "CHECK", "PRINTED", "STDIN"))
    with Sandbox(workers=1) as pool:  # one worker: every execution is a fork of the same process
        assert pool.run_tests("def f(): return 1", [Test(check=f"assert f() == 1, {check_secret!r}")])[0].passed
        assert pool.run_tests(f"print({printed_secret!r})", [Test("", printed_secret)])[0].passed
        assert not pool.run_tests("print(1)", [Test("", out_secret)])[0].passed
        scanner = SCAN + f"import sys\nstdin = sys.stdin.read()\nprint(scan({needle.encode()!r}))"
        r = pool.run_tests(scanner, [Test(own_secret, out_secret)], time_limit=10, memory_limit_mb=1024)[0]
    assert r.verdict == "WA", r.stderr
    assert _tokens_in(r.stdout, own_secret) == [own_secret]  # the scan works
    assert _tokens_in(r.stdout, out_secret, check_secret, printed_secret) == []


def test_check_code_is_unreadable_while_the_top_level_runs(sb):
    needle = "-" + "SECRET" + "-"
    check_secret = f"CHECK{needle}{secrets.token_hex(8)}"
    program = SCAN + f"found = scan({needle.encode()!r})\nprint(found)\ndef add(a, b):\n    return a + b\n"
    r = sb.run_tests(program, [Test(check=f"# {check_secret}\nassert add(1, 2) == 3, {check_secret!r}")],
                     time_limit=10)[0]
    assert r.verdict == "AC", r.stderr  # the check did run after the scan
    assert _tokens_in(r.stdout, check_secret) == []


# --------------------------------------------------- forging a function-call test

FORGERIES = {
    "sys.exit(0)": "import sys\ndef add(a, b): return 0\nsys.exit(0)",
    "os._exit(0)": "import os\ndef add(a, b): return 0\nos._exit(0)",
    "raise SystemExit": "def add(a, b): return 0\nraise SystemExit",
    "atexit": "import atexit\natexit.register(lambda: print('PASS'))\ndef add(a, b): return 0",
    "markers": "print('PASS'); print('OK'); print('passed'); print('AC')\ndef add(a, b): return 0",
    "builtins replaced": dedent("""
        import builtins
        class E(Exception): pass
        builtins.AssertionError = E
        builtins.print = builtins.exit = builtins.isinstance = lambda *a, **k: True
        builtins.type = lambda *a: int
        def add(a, b): return 0
    """),
    "always equal": dedent("""
        class E:
            def __eq__(self, other): return True
            def __ne__(self, other): return False
            def __bool__(self): return True
        def add(a, b): return E()
    """),
    "int subclass": "class I(int):\n    def __eq__(self, o): return True\ndef add(a, b): return I(0)",
    "list subclass": "class L(list):\n    def __eq__(self, o): return True\ndef add(a, b): return L()",
    "callable object": "class F:\n    def __call__(self, *a): return type('E', (), {'__eq__': lambda s, o: True})()\nadd = F()",
    "spray the protocol": dedent("""
        import os
        for fd in range(64):
            for msg in (b'T', b'P', b'P' + b'0' * 32, b'A', b'R'):
                try:
                    os.write(fd, msg)
                except OSError:
                    pass
        def add(a, b): return 0
    """),
    "plant a fake check": dedent("""
        import marshal, os, struct
        code = marshal.dumps(compile("pass", "test.py", "exec"))
        blob = struct.pack("<I", len(code)) + code + b"pass"
        for fd in range(64):  # the control socket included
            try:
                os.write(fd, blob)
            except OSError:
                pass
        def add(a, b): return 0
    """),
    "exit inside the call": "import os\ndef add(a, b): os._exit(0)",
    "sys.exit inside the call": "import sys\ndef add(a, b): sys.exit(0)",
    "own check": "def check(*a): pass\ndef add(a, b): return 0",
    "global abs": "abs = lambda x: 0\ndef add(a, b): return 0",
    "builtins.abs": "import builtins\nbuiltins.abs = lambda x: 0\ndef add(a, b): return 0",
    "abs patched during the call": "import builtins\ndef add(a, b):\n    builtins.abs = lambda x: 0\n    return 0",
}
CHECK = "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert abs(candidate(2, 2) - 4) < 1e-9\ncheck(add)"


@pytest.mark.parametrize("name", FORGERIES)
def test_function_call_tests_cannot_be_forged(sb, name):
    right = "def add(a, b): return a + b"
    forged, honest = sb.map([(FORGERIES[name], [Test(check=CHECK)]), (right, [Test(check=CHECK)])], time_limit=2)
    assert forged[0].verdict != "AC", forged[0]
    assert honest[0].verdict == "AC"


ABUSE_THE_CHANNEL = {
    "close it": "import os\nos.close(3)",
    "make it non-blocking": "import os\nos.set_blocking(3, False)",
    "shut it down": "import socket\nsocket.socket(fileno=3).shutdown(socket.SHUT_RDWR)",
    "announce T and exit": "import os\nos.write(3, b'T')\nos._exit(0)",
    "announce T and close": "import os\nos.write(3, b'T')\nos.close(3)",
    "flood it": dedent("""
        import os
        os.set_blocking(3, False)
        for _ in range(100000):
            try:
                os.write(3, b'x')
            except BlockingIOError:
                break
    """),
}


@pytest.mark.parametrize("name", ABUSE_THE_CHANNEL)
@pytest.mark.parametrize("kind", ["stdin/stdout", "function call"])
def test_programs_cannot_cause_a_sandbox_error(sb, name, kind):
    """SE must mean the sandbox failed. A trainer that drops SE samples would
    otherwise reward a program for breaking its own control channel."""
    abuse = textwrap.indent(ABUSE_THE_CHANNEL[name], "    ")  # fd 3 is closed in stdin/stdout tests
    code = f"try:\n{abuse}\nexcept OSError:\n    pass\ndef add(a, b): return a + b\nprint(3)\n"
    test = Test("", "3") if kind == "stdin/stdout" else Test(check="assert add(1, 2) == 3")
    r = run(sb, code, test, time_limit=1)
    assert r.verdict != "SE", r.message
    if kind == "stdin/stdout" or name == "make it non-blocking":
        assert r.verdict == "AC"


def test_what_a_program_does_to_its_fds_stays_with_it(sb):
    """For speed the worker keeps some memfds from one execution to the next (the
    program's code, the output it collects). The program never holds those (its
    code's fd is closed before it runs), and what it does to the fds it does hold
    (append mode, non-blocking, a seek far past the end, a write into its stdin)
    must not reach the next execution: afterwards_all_is_well runs the next ones."""
    code = dedent("""
        import fcntl, os
        try:
            os.fstat(4)
            print("the program's code is still open")
        except OSError:
            pass
        for fd in (0, 1, 2):
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND | os.O_NONBLOCK)
        os.lseek(0, 1 << 20, os.SEEK_SET)
        os.write(0, b"junk")
        print("done")
    """)
    out = sb.map([(code, [Test("2 3\n", "done")])] * 4, time_limit=2)  # every worker gets one
    assert [rs[0].verdict for rs in out] == ["AC"] * 4, out


# -------------------------------------------------------------------- limits

def test_resource_limits(sb):
    files = "keep = []\ntry:\n    while len(keep) < 1000:\n        keep.append(open(f'f{len(keep)}', 'w'))\nexcept OSError:\n    pass\nprint(len(keep))"
    assert int(run(sb, files).stdout) < NOFILE
    assert "File too large" in run(sb, "open('big', 'wb').write(b'x' * (32 << 20))").stderr
    disk = "for i in range(20):\n    open(f'f{i}', 'wb').write(b'x' * (10 << 20))"
    assert "No space left" in run(sb, disk, memory_limit_mb=512).stderr  # the workdir's tmpfs
    threads = dedent("""
        import threading, time
        n = 0
        try:
            while n < 500:
                threading.Thread(target=time.sleep, args=(5,), daemon=True).start()  # alive till the end, even under load
                n += 1
        except RuntimeError:
            pass
        print(n)
    """)
    n = int(run(sb, threads).stdout)
    if sb.isolation["unprivileged_uid"]:
        assert n < NPROC


def test_memory_of_all_processes_together(sb):
    if not sb.isolation["memory_cgroup"]:
        pytest.skip("no memory cgroup here: only the per-process limit holds")
    code = """
        import os, time
        kids = []
        for _ in range(6):
            pid = os.fork()
            if pid == 0:
                block = b"x" * (150 << 20)  # each process is within its own limit
                time.sleep(1)
                os._exit(0)
            kids.append(pid)
        for pid in kids:
            os.waitpid(pid, 0)
        print("all done")
    """
    r = run(sb, code, memory_limit_mb=256, time_limit=2)
    assert r.verdict == "MLE", r


def test_known_limit_a_program_that_speaks_the_protocol(sb):
    """Documented non-guarantee (README): code in the same interpreter as the check
    can always defeat it on purpose. Here the top level announces itself done on
    its control socket, receives the nonce, answers P + nonce and exits. It takes
    knowing this harness's protocol; nothing a program does by accident gets there."""
    code = dedent("""
        import os, socket
        s = socket.socket(fileno=3)
        s.send(b"T")
        nonce, fds, _, _ = socket.recv_fds(s, 64, 1)
        s.send(b"P" + nonce)
        os._exit(0)
    """)
    assert run(sb, code, Test(check="assert False")).verdict == "AC"


# ------------------------------------------------------------ without root

UNPRIVILEGED_SMOKE = """
import json, os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sandbox import Sandbox, Test
out = {}
with Sandbox(workers=1) as sb:
    out["isolation"] = sb.isolation
    out["ac_wa"] = [r.verdict for r in sb.run_tests("print(sum(map(int, input().split())))",
                                                    [Test("1 2", "3"), Test("1 2", "4")])]
    out["check"] = sb.run_tests("def f(x): return 2 * x", [Test(check="assert f(2) == 4")])[0].verdict
    r = sb.run_tests("import os\\nprint(open('/proc/self/status').read().split('CapEff:')[1].split()[0])\\n"
                     "open('/tmp/x', 'w')", [Test("", "")])[0]
    out["caps"], out["write_tmp"] = r.stdout.strip(), r.stderr.strip().splitlines()[-1]
    out["mle"] = sb.run_tests("x = [0] * (400 << 20)", [Test("", "")], memory_limit_mb=256)[0].verdict
    out["tle"] = sb.run_tests("while True: pass", [Test("", "")], time_limit=0.3)[0].verdict
    out["after"] = sb.run_tests("print(1)", [Test("", "1")])[0].verdict
print(json.dumps(out))
"""


def test_unprivileged_caller():
    """Not root: a user namespace gives the same namespaces and private root; the
    child drops every capability instead of changing uid (README: what remains)."""
    import shutil
    import subprocess
    import sys
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root (to become nobody) and setpriv")
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    pythons = [p for p in ("/usr/bin/python3", "/usr/local/bin/python3", sys.executable) if os.path.exists(p)]
    probe = "import os, subprocess, sys; os.splice; subprocess.run([sys.executable, '-c', ''], check=True)"
    usable = [p for p in pythons if subprocess.run(nobody + [p, "-c", probe], capture_output=True).returncode == 0]
    if not usable:
        pytest.skip("no Python >= 3.10 that the user nobody can run")
    import tempfile
    with tempfile.TemporaryDirectory() as folder:  # pytest's tmp_path is private to root
        os.chmod(folder, 0o755)
        shutil.copy(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sandbox.py"), folder)
        with open(os.path.join(folder, "smoke.py"), "w") as f:
            f.write(UNPRIVILEGED_SMOKE)
        p = subprocess.run(nobody + [usable[0], os.path.join(folder, "smoke.py")], capture_output=True,
                           text=True, timeout=120, cwd=folder)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["ac_wa"] == ["AC", "WA"] and out["check"] == "AC" and out["after"] == "AC"
    assert out["mle"] == "MLE" and out["tle"] == "TLE"
    if out["isolation"]["user_namespace"]:
        assert out["isolation"]["private_root"] and out["isolation"]["network_namespace"]
        assert out["caps"] == "0000000000000000" and "No such file or directory" in out["write_tmp"]
