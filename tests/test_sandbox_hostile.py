"""Hostile programs against sandbox.py: every isolation claim of the README has a
test here. They are safe on a developer machine: every loop is bounded (by its own
count or by the sandbox's limits), every process they start is killed by the
sandbox, and each test ends by checking that nothing is left running and that a
correct program still gets AC.

The same file runs in every mode that claims isolation (tests/test_sandbox_modes.py
runs it under each condition of tests/confine.py): a test skips only where the
mode does not claim what it tests, as Sandbox.isolation says."""
import ctypes
import json
import os
import secrets
import signal
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
            if os.environ.get("RLEF_SANDBOX_REPORT"):  # for test_sandbox_modes.py
                with open(os.environ["RLEF_SANDBOX_REPORT"], "w") as f:
                    json.dump({"isolation": pool.isolation, "describe": pool.describe()}, f)
            yield pool
    finally:
        del os.environ["RLEF_HOSTILE_TEST_SECRET"]


def leftovers(sb, workers=None) -> list[int]:
    """Processes of the sandbox's programs still on the host: those that run as one
    of its uids; forks of a worker (their command line is the worker's, which ends
    with its uid), the worker and its parent aside; descendants of the workers. A
    program that shares the caller's uid is found by the last two."""
    workers = sb._workers if workers is None else workers
    tags = {f"\0{w.uid}\0".encode() for w in workers}
    supervisors = {w.proc.pid for w in workers if w.proc}
    found, parents = set(), {}
    for pid in map(int, filter(str.isdigit, os.listdir("/proc"))):
        try:
            with open(f"/proc/{pid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read()
            parents[pid] = int(fields["PPid"])
        except (OSError, KeyError, ValueError):
            continue
        if int(fields["Uid"].split()[0]) in sb.uids or any(command.endswith(tag) for tag in tags):
            found.add(pid)
    serving = {pid for pid, parent in parents.items() if parent in supervisors}
    for pid in parents:
        ancestor, depth = parents.get(pid), 0
        while ancestor and ancestor not in serving and depth < 64:
            ancestor, depth = parents.get(ancestor), depth + 1
        if ancestor in serving:
            found.add(pid)
    return sorted(found - supervisors - serving)


def mode(sb) -> str:
    return sb.isolation["mode"]


@pytest.fixture(autouse=True)
def afterwards_all_is_well(sb):
    yield
    deadline = time.monotonic() + 10  # (at once, unless the machine is loaded)
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
    if sb.isolation["private_root"] and os.geteuid() == 0:  # (landlock: the runs above start empty)
        for worker in sb._workers:
            assert os.listdir(worker_root(worker) + "/sandbox") == []


def test_cannot_write_outside_its_working_directory(sb, tmp_path):
    token = secrets.token_hex(6)
    targets = ["/tmp", "/var/tmp", "/dev/shm", "/root", "/home", "/", "/usr", "/usr/lib", "/etc",
               "..", "../..", "/proc", "/proc/self", str(tmp_path), os.getcwd(),
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


def test_cannot_change_the_callers_files(sb, tmp_path):
    """Not their contents, and neither what Landlock does not cover: mode, owner,
    times, size by path, extended attributes, hard links."""
    victim = tmp_path / "data.txt"
    victim.write_text("keep me")
    os.chmod(tmp_path, 0o777), os.chmod(victim, 0o666)  # writable by anyone on the host
    before = os.stat(victim)
    code = f"""
        import os
        ok = []
        p = {str(victim)!r}
        for name, attempt in [("open", lambda: open(p, "a").write("x")), ("chmod", lambda: os.chmod(p, 0o600)),
                              ("utime", lambda: os.utime(p, (0, 0))), ("truncate", lambda: os.truncate(p, 0)),
                              ("setxattr", lambda: os.setxattr(p, "user.rlef", b"x")),
                              ("link", lambda: os.link(p, "mine")), ("rename", lambda: os.rename(p, "mine")),
                              ("unlink", lambda: os.unlink(p)), ("chown", lambda: os.chown(p, os.getuid(), os.getgid()))]:
            try:
                attempt()
                ok.append(name)
            except OSError:
                pass
        print(ok)
    """
    r = run(sb, code)
    assert r.stdout == "[]\n", r.stdout + r.stderr
    after = os.stat(victim)
    assert victim.read_text() == "keep me"
    assert (after.st_mode, after.st_uid, after.st_mtime_ns, after.st_nlink) == (
        before.st_mode, before.st_uid, before.st_mtime_ns, before.st_nlink)


def test_cannot_change_the_python_installation(sb):
    """Files a program may open but only read: the Python installation, which the
    caller's uid may own (pyenv in its home), or which root's programs may write the
    attributes of where they keep CAP_DAC_OVERRIDE (pyenv in /root). Nothing through
    the fd either: mode, owner, extended attributes (all tried as no-op changes)."""
    code = """
        import os
        ok = []
        for path in (os.__file__, os.path.dirname(os.__file__)):
            fd = os.open(path, os.O_RDONLY)
            for name, attempt in [("fchmod", lambda: os.chmod(fd, os.stat(fd).st_mode & 0o7777)),
                                  ("fchown", lambda: os.chown(fd, os.getuid(), os.getgid())),
                                  ("fsetxattr", lambda: os.setxattr(fd, "user.rlef", b"x")),
                                  ("fremovexattr", lambda: os.removexattr(fd, "user.rlef"))]:
                try:
                    attempt()
                    ok.append(name)
                except OSError:
                    pass
        print(ok)
    """
    try:
        r = run(sb, code)
        assert r.stdout == "[]\n", r.stdout + r.stderr
    finally:
        for path in (os.__file__, os.path.dirname(os.__file__)):
            if "user.rlef" in os.listxattr(path):
                os.removexattr(path, "user.rlef")


def test_cannot_read_the_callers_files(sb, tmp_path):
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

def test_no_network(sb, tmp_path):
    """Not TCP or UDP to the caller's loopback or the internet, not DNS, not the
    caller's unix sockets (named or abstract)."""
    server = socket.create_server(("127.0.0.1", 0))  # the caller's loopback
    port = server.getsockname()[1]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    abstract = "\0rlef-hostile-" + secrets.token_hex(6)
    unix_servers = [socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) for _ in range(2)]
    named = str(tmp_path / "caller.sock")
    for s, address in zip(unix_servers, (abstract, named)):
        s.bind(address)
        s.setblocking(False)
    os.chmod(tmp_path, 0o777), os.chmod(named, 0o777)
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
        for family, kind, address in [(socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", {udp.getsockname()[1]})),
                                      (socket.AF_UNIX, socket.SOCK_DGRAM, {abstract!r}),
                                      (socket.AF_UNIX, socket.SOCK_DGRAM, {named!r})]:
            try:
                socket.socket(family, kind).sendto(b"escaped", address)
                ok.append(str(address))
            except OSError:
                pass
        print(ok)
    """
    r = run(sb, code)
    server.setblocking(False)
    with pytest.raises(BlockingIOError):  # no connection waits in the backlog
        server.accept()
    for s in [udp] + unix_servers:
        with pytest.raises(BlockingIOError):  # no datagram arrived
            s.recv(100)
        s.close()
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
    # the daemon, writing to the inherited stdout for 30 s, did not keep the run open:
    # ~0.2 s; a bound far from both, so that no load makes it fail
    assert time.monotonic() - t < 20
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
    r = run(sb, code, time_limit=0.5)
    done.set()
    watcher.join()
    assert r.verdict in ("TLE", "RE")
    # RLIMIT_NPROC per worker uid, or per user namespace, or pids.max per execution; a
    # program that shares the caller's uid gets NPROC more than that uid had at start
    assert 1 < peak[0] <= NPROC * len(sb._workers) + 16


def test_a_dying_worker_leaves_nothing_running():
    """The worker is killed while a program and its children run: its parent, the
    supervisor, kills all of them (the pid namespace dies with the worker; else the
    orphans come to the supervisor, which kills their process groups, which the
    program could not leave), and the next program gets a fresh worker."""
    code = dedent("""
        import os, time
        for _ in range(8):
            if os.fork() == 0:
                while True:
                    try:
                        os.fork()
                    except OSError:
                        pass
                    time.sleep(0.05)
        time.sleep(30)
    """)
    with Sandbox(workers=1) as pool:
        worker = pool._workers[0]
        supervisor = worker.proc.pid

        def kill_the_worker():
            with open(f"/proc/{supervisor}/task/{supervisor}/children") as f:
                os.kill(int(f.read().split()[0]), signal.SIGKILL)
        killer = threading.Timer(1.0, kill_the_worker)
        killer.start()
        r = pool.run_tests(code, [Test("", "")], time_limit=10)[0]
        killer.join()
        assert r.verdict == "SE"
        dead = [_Gone(worker.uid)]
        deadline = time.monotonic() + 10
        while leftovers(pool, dead) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert leftovers(pool, dead) == []
        assert pool.run_tests(GOOD, [Test("2 3", "5")])[0].verdict == "AC"


class _Gone:
    """A worker that was: its uid (the tag of its forks) and no process."""
    def __init__(self, uid):
        self.uid, self.proc = uid, None


def test_programs_run_unprivileged(sb):
    if not sb.isolation["unprivileged_uid"]:
        pytest.skip("not root: programs keep the caller's uid (the README says what remains)")
    code = """
        import os
        try:
            os.setuid(0)
            became_root = True
        except OSError:
            became_root = False
        print(os.getuid(), os.geteuid(), os.getgid(), os.getgroups(), became_root)
    """
    uid, euid, gid, groups, became_root = run(sb, code).stdout.split()
    assert int(uid) == int(euid) == int(gid) and int(uid) in sb.uids
    assert groups == "[]" and became_root == "False"  # capabilities: test_programs_are_confined


def test_programs_are_confined(sb):
    """No capabilities, no way to gain privileges through setuid binaries, and in
    the landlock mode a seccomp filter (read with prctl: /proc is closed there)."""
    code = """
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        header, data = (ctypes.c_uint32 * 2)(0x20080522, 0), (ctypes.c_uint32 * 6)()
        libc.capget(header, data)
        print(list(data)[:2] + list(data)[3:5], libc.prctl(39, 0, 0, 0, 0), libc.prctl(21, 0, 0, 0, 0))
    """
    caps, no_new_privs, seccomp_mode = run(sb, code).stdout.strip().rsplit(" ", 2)
    # where Python is installed where only root may read (pyenv in /root), root's
    # programs keep CAP_DAC_OVERRIDE alone (effective and permitted), and say so
    dac = any("CAP_DAC_OVERRIDE" in line for line in sb.isolation["lost"])
    assert caps == ("[2, 2, 0, 0]" if dac else "[0, 0, 0, 0]") and no_new_privs == "1"
    if sb.isolation["seccomp"]:  # (without, the machine may have a filter of its own: Docker)
        assert seccomp_mode == "2"


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


def test_cannot_signal_the_caller_by_proxy(sb):
    """F_SETOWN names a process to get SIGIO (F_SETSIG: any signal) when a file is
    ready: the kernel then signals it with the program's credentials."""
    received = []
    previous = signal.signal(signal.SIGUSR2, lambda *a: received.append(1))
    try:
        code = f"""
            import fcntl, os
            ok = []
            r, w = os.pipe()
            for owner in ({os.getpid()}, -{os.getpgid(0)}, os.getppid(), 1):
                try:
                    fcntl.fcntl(r, fcntl.F_SETOWN, owner)
                    fcntl.fcntl(r, 10, {int(signal.SIGUSR2)})  # F_SETSIG
                    fcntl.fcntl(r, fcntl.F_SETFL, os.O_ASYNC)
                    os.write(w, b"x"), os.read(r, 1)
                    ok.append(owner)
                except OSError:
                    pass
            print("done")
        """
        assert run(sb, code).stdout == "done\n"
        time.sleep(0.1)
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert received == []


def test_cannot_read_or_trace_the_callers_memory(sb):
    """Not /proc/PID/mem or environ, not ptrace, not process_vm_readv: the caller's
    memory holds every expected output. (Namespaces: the caller is not even in the
    program's pid namespace. Landlock: ptrace-like access stays within the sandbox,
    /proc is closed, and seccomp refuses the calls.)"""
    caller, secret = os.getpid(), b"MEM-" + secrets.token_hex(8).encode()
    buffer = ctypes.create_string_buffer(secret)
    code = f"""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        got = []
        for path in ("/proc/{caller}/mem", "/proc/{caller}/environ", "/proc/{caller}/maps"):
            try:
                with open(path, "rb") as f:
                    if path.endswith("mem"):
                        f.seek({ctypes.addressof(buffer)})
                    got.append(f.read(64))
            except OSError:
                pass
        if libc.ptrace(16, {caller}, 0, 0) == 0:  # PTRACE_ATTACH
            got.append("ptrace")
        local = ctypes.create_string_buffer(64)
        iov_local = (ctypes.c_void_p * 2)(ctypes.addressof(local), 64)
        iov_remote = (ctypes.c_void_p * 2)({ctypes.addressof(buffer)}, 64)
        if libc.process_vm_readv({caller}, iov_local, 1, iov_remote, 1, 0) > 0:
            got.append(local.raw)
        print(got)
    """
    r = run(sb, code)
    assert r.stdout == "[]\n" and secret.decode() not in r.stdout, r.stdout + r.stderr


def test_cannot_reach_the_callers_sysv_memory(sb):
    """SysV shared memory is not in any folder: without an ipc namespace, a program
    under the caller's uid could attach the caller's segments by key."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmat.restype = ctypes.c_void_p
    key, secret = secrets.randbelow(1 << 30) + 1, b"SHM-" + secrets.token_hex(8).encode()
    segment = libc.shmget(key, 4096, 0o1600)  # IPC_CREAT | 0600
    assert segment >= 0, os.strerror(ctypes.get_errno())
    try:
        address = libc.shmat(segment, None, 0)
        ctypes.memmove(address, secret, len(secret))
        libc.shmdt(ctypes.c_void_p(address))
        code = f"""
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            libc.shmat.restype = ctypes.c_void_p
            segment = libc.shmget({key}, 0, 0)
            address = libc.shmat(segment, None, 0) if segment >= 0 else None
            print([] if address in (None, ctypes.c_void_p(-1).value) else [ctypes.string_at(address, 40)])
        """
        r = run(sb, code)
        assert r.stdout == "[]\n", r.stdout + r.stderr
    finally:
        libc.shmctl(segment, 0, None)  # IPC_RMID


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
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype, libc.mmap.argtypes = ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_size_t] + [ctypes.c_int] * 4
libc.munmap.argtypes = libc.msync.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
libc.write.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]

def regions():
    # (start, end) of every mapping: from /proc/self/maps, or where /proc is closed
    # (landlock mode) by probing: mmap(MAP_FIXED_NOREPLACE) fails with EEXIST if any
    # page of a range is mapped, msync() fails with ENOMEM unless all of them are
    try:
        with open("/proc/self/maps") as f:
            return [tuple(int(a, 16) for a in line.split()[0].split("-")) for line in f
                    if not line.rstrip().endswith(("[vvar]", "[vsyscall]", "[vvar_vclock]"))]
    except OSError:
        pass
    found = []
    def any_mapped(start, end):
        address = libc.mmap(start, end - start, 0, 0x22 | 0x100000, -1, 0)
        if address == start:
            libc.munmap(start, end - start, 0)
        return address == ctypes.c_void_p(-1).value and ctypes.get_errno() == 17
    def walk(start, end):
        if any_mapped(start, end):
            if libc.msync(start, end - start, 1) == 0:
                found.append((start, end))
            else:
                middle = start + (end - start) // 2 // 4096 * 4096
                walk(start, middle), walk(middle, end)
    walk(1 << 16, 0x7FFFFFFFF000)
    return found

def readable(start, end):
    # the readable bytes of [start, end), through a pipe: write() skips what cannot
    # be read (EFAULT) instead of crashing as a direct read would
    r, w = os.pipe()
    chunks, at = [], start
    while at < end:
        n = libc.write(w, at, min(end - at, 65536))
        if n > 0:
            chunks.append(os.read(r, n))
            at += n
        else:
            at = (at // 4096 + 1) * 4096
    os.close(r), os.close(w)
    return b"".join(chunks)

def scan(needle):
    # every readable byte of this process's memory, plus every fd it holds
    found = []
    def look(blob):
        i = blob.find(needle)
        while i >= 0 and len(found) < 50:
            found.append(blob[max(i - 16, 0):i + 40].hex())
            i = blob.find(needle, i + 1)
    for start, end in regions():
        for at in range(start, end, 1 << 24):
            look(readable(at, min(end, at + (1 << 24))))
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
    if sb.isolation["private_root"]:  # the working directory's tmpfs (landlock: lost, says isolation)
        assert "No space left" in run(sb, disk, memory_limit_mb=512).stderr
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
    if sb.isolation["unprivileged_uid"] or sb.isolation["pids_cgroup"]:
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
    r = run(sb, code, memory_limit_mb=256, time_limit=5)  # reclaim before the OOM kill costs CPU
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
