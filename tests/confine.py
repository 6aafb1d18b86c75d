"""Run a command under one of the conditions that users' machines impose on the
sandbox, reproduced on this one with no lasting change to the host. Needs root;
standard library only (any Python 3.10+).

    python tests/confine.py CONDITION [--home FOLDER] -- command [args...]

Conditions (each ends by exec()ing the command):
  submounts        a private mount namespace with a read-only, nosuid, nodev, noexec
                   tmpfs mounted on a folder under /usr (GPU nodes mount driver
                   files there), then the command as the user nobody (65534)
  old-kernel       submounts, and mount_setattr(2) answers ENOSYS, as before Linux 5.12
  userns-refused   nobody inside a user namespace whose user.max_user_namespaces is 0:
                   unshare(CLONE_NEWUSER) fails with ENOSPC, as where the sysctl is 0
  apparmor         nobody; user namespaces are made, but mount(2) fails with EPERM in
                   them, as Ubuntu 23.10+ does to unprivileged user namespaces
  docker           root without CAP_SYS_ADMIN in any capability set, and a seccomp
                   filter answering EPERM to unshare, mount, umount2, setns, pivot_root,
                   mount_setattr and clone with namespace flags (ENOSYS to clone3):
                   Docker's defaults
  no-landlock      userns-refused, and the Landlock system calls answer ENOSYS, as on
                   kernels without Landlock: nothing isolates
  cgroup2          root in a private mount namespace where /sys/fs/cgroup is a cgroup2
                   mount alone (the global hierarchy, whatever controllers it has here)
  delegated        cgroup2, and the command as nobody in a leaf of a cgroup delegated to
                   nobody (what systemd's Delegate=yes gives a user); the cgroups are
                   removed afterwards
  root-one-uid     cgroup2 and docker, and CAP_SETUID and CAP_SETGID dropped too: root that
                   cannot take another uid, so RLIMIT_NPROC (which root ignores) bounds nothing
  root-admin-one-uid  cgroup2, and CAP_SETUID and CAP_SETGID dropped, CAP_SYS_ADMIN kept: the
                   namespaces mode as root that cannot take another uid

--home FOLDER (with the conditions that run the command as nobody): FOLDER, e.g. /root
  where pyenv or conda put Python, is seen as nobody's own home (mode 700, its owner
  nobody) through a read-only idmapped bind mount in a private mount namespace. So nobody
  runs the Python installed there, as a user runs their own pyenv or conda.

Everything is per process (namespaces, seccomp filters, capabilities): it ends with
the command. A folder mounted over stays as it was on the host; the cgroups that
delegated makes in the (global) cgroup hierarchy are removed when the command ends.
"""
import ctypes
import os
import struct
import sys
import time

libc = ctypes.CDLL(None, use_errno=True)
NOBODY = 65534
CLONE_NEWNS, CLONE_NEWUSER = 0x20000, 0x10000000
NAMESPACE_FLAGS = 0x7E020000  # CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
MS_REC, MS_PRIVATE, MNT_DETACH = 16384, 1 << 18, 2
MOUNT_ATTR_RDONLY, MOUNT_ATTR_IDMAP, AT_EMPTY_PATH, MOVE_MOUNT_F_EMPTY_PATH = 1, 0x100000, 0x1000, 4
CAP_SETGID, CAP_SETUID, CAP_SYS_ADMIN = 6, 7, 21
# x86_64 numbers (the sandbox's own table has aarch64's too; these tests run on x86_64)
SYSCALLS = {"unshare": 272, "mount": 165, "umount2": 166, "setns": 308, "pivot_root": 155, "mount_setattr": 442,
            "clone": 56, "clone3": 435, "landlock_create_ruleset": 444, "landlock_add_rule": 445,
            "landlock_restrict_self": 446, "open_tree": 428, "move_mount": 429}
EPERM, ENOSPC, ENOSYS = 1, 28, 38


def check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def seccomp(answers: dict[str, int], clone_namespaces: bool = False) -> None:
    """A seccomp filter: each named system call fails with its errno; clone with a
    namespace flag fails with EPERM if clone_namespaces. Everything else runs."""
    code = [(0x20, 0, 0, 4), (0x15, 1, 0, 0xC000003E), (0x06, 0, 0, 0x80000000), (0x20, 0, 0, 0)]
    for name, errno in answers.items():  # load arch; x86_64 or kill; load nr
        code += [(0x15, 0, 1, SYSCALLS[name]), (0x06, 0, 0, 0x00050000 | errno)]
    if clone_namespaces:  # clone: load flags (arg 0), any namespace bit -> EPERM
        code += [(0x15, 0, 3, SYSCALLS["clone"]), (0x20, 0, 0, 16), (0x45, 0, 1, NAMESPACE_FLAGS),
                 (0x06, 0, 0, 0x00050000 | EPERM)]
    code.append((0x06, 0, 0, 0x7FFF0000))
    program = b"".join(struct.pack("<HBBI", *op) for op in code)
    buffer = ctypes.create_string_buffer(program)
    fprog = struct.pack("<H6xQ", len(code), ctypes.addressof(buffer))
    check(libc.prctl(22, 2, fprog, 0, 0), "prctl(PR_SET_SECCOMP)")  # root: no no_new_privs needed


def become_nobody() -> None:
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)


def private_mounts() -> None:
    check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make / private")


def home_of_nobody(folder: str) -> None:
    """Show `folder` as owned by nobody: a read-only bind mount of it, idmapped by a user
    namespace that maps uid and gid 0 to nobody (what root owns there becomes nobody's;
    the modes stay), mounted over it in a private mount namespace."""
    private_mounts()
    ready, done = os.pipe(), os.pipe()
    pid = os.fork()
    if pid == 0:  # holds the user namespace that describes the mapping
        check(libc.unshare(CLONE_NEWUSER), "unshare(CLONE_NEWUSER)")
        os.write(ready[1], b"u")
        os.read(done[0], 1)
        os._exit(0)
    os.read(ready[0], 1)
    for name in ("uid_map", "gid_map"):
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write(f"0 {NOBODY} 1\n")
    userns = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY)
    os.write(done[1], b"x"), os.waitpid(pid, 0)
    tree = libc.syscall(SYSCALLS["open_tree"], -100, folder.encode(), 1 | os.O_CLOEXEC)  # OPEN_TREE_CLONE
    if tree < 0:
        check(-1, f"open_tree {folder}")
    attr = struct.pack("<QQQQ", MOUNT_ATTR_RDONLY | MOUNT_ATTR_IDMAP, 0, 0, userns)
    check(libc.syscall(SYSCALLS["mount_setattr"], tree, b"", AT_EMPTY_PATH, attr, len(attr)), "idmap the bind mount")
    check(libc.syscall(SYSCALLS["move_mount"], tree, b"", -100, folder.encode(), MOVE_MOUNT_F_EMPTY_PATH),
          f"mount over {folder}")
    os.close(tree), os.close(userns)


def submounts() -> None:
    """A locked-looking submount under /usr, on a folder that exists on Debian and Ubuntu."""
    private_mounts()
    folder = next(f for f in ("/usr/local/src", "/usr/src", "/usr/games", "/usr/local/share") if os.path.isdir(f))
    check(libc.mount(b"tmpfs", folder.encode(), b"tmpfs", 1 | 2 | 4 | 8, b"size=1m"), f"mount tmpfs on {folder}")


def nested_userns_without_userns() -> None:
    """Fork; the child enters a new user namespace, where the parent (root) maps
    uids and gids 0 and 65534, and sets its max_user_namespaces to 0 (then it may
    become 65534). The parent waits and passes the exit status on."""
    to_parent, to_child = os.pipe(), os.pipe()
    pid = os.fork()
    if pid:
        os.close(to_parent[1]), os.close(to_child[0])
        try:
            if os.read(to_parent[0], 1) == b"u":  # the child is in its user namespace
                for name in ("uid_map", "gid_map"):
                    with open(f"/proc/{pid}/{name}", "w") as f:
                        f.write(f"0 0 1\n{NOBODY} {NOBODY} 1\n")
        finally:
            os.close(to_child[1])  # the child goes on
        status = os.waitpid(pid, 0)[1]
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
    os.close(to_parent[0]), os.close(to_child[1])
    check(libc.unshare(CLONE_NEWUSER), "unshare(CLONE_NEWUSER)")
    os.write(to_parent[1], b"u")
    os.read(to_child[0], 1)  # returns at EOF: the maps are written
    os.close(to_parent[1]), os.close(to_child[0])
    with open("/proc/sys/user/max_user_namespaces", "w") as f:
        f.write("0")


def only_cgroup2() -> None:
    """/sys/fs/cgroup: the cgroup2 hierarchy alone, as on a machine without v1."""
    private_mounts()
    check(libc.umount2(b"/sys/fs/cgroup", MNT_DETACH), "umount /sys/fs/cgroup")
    check(libc.mount(b"cgroup2", b"/sys/fs/cgroup", b"cgroup2", 2 | 4 | 8, None), "mount cgroup2")


def delegate_to_nobody() -> None:
    """Make a cgroup for nobody as systemd's Delegate=yes does (the folder and its
    cgroup.procs, cgroup.subtree_control and cgroup.threads are the user's), move a
    child process into a leaf of it, where it goes on; wait for it here, outside,
    then remove what is left of the cgroup."""
    base = f"/sys/fs/cgroup/rlef-test-delegated-{os.getpid()}"
    available = open("/sys/fs/cgroup/cgroup.controllers").read().split()
    wanted = [c for c in ("memory", "pids") if c in available]
    if wanted:  # what the sandbox may then enable below
        with open("/sys/fs/cgroup/cgroup.subtree_control", "w") as f:
            f.write(" ".join("+" + c for c in wanted))
    os.mkdir(base)
    os.mkdir(base + "/main")
    for path in (base, base + "/main"):
        for name in ("", "/cgroup.procs", "/cgroup.subtree_control", "/cgroup.threads"):
            os.chown(path + name, NOBODY, NOBODY)
    pid = os.fork()
    if pid == 0:
        with open(base + "/main/cgroup.procs", "w") as f:
            f.write("0")
        return
    status = os.waitpid(pid, 0)[1]
    for _ in range(100):
        leftover = [d for d, _, _ in os.walk(base, topdown=False)]
        for path in leftover:
            try:
                os.rmdir(path)
            except OSError:
                pass
        if not os.path.exists(base):
            break
        time.sleep(0.05)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


def drop_capabilities(*caps: int) -> None:
    """`caps` out of the bounding, ambient, inheritable, permitted and effective sets."""
    for cap in caps:
        check(libc.prctl(24, cap, 0, 0, 0), "PR_CAPBSET_DROP")
    check(libc.prctl(47, 4, 0, 0, 0), "PR_CAP_AMBIENT_CLEAR_ALL")
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)
    data = (ctypes.c_uint32 * 6)()
    check(libc.capget(header, data), "capget")
    for i in range(3):  # effective, permitted, inheritable (of capabilities 0-31)
        for cap in caps:
            data[i] &= ~(1 << cap) & 0xFFFFFFFF
    check(libc.capset(header, data), "capset")


def docker() -> None:
    seccomp({name: EPERM for name in ("unshare", "mount", "umount2", "setns", "pivot_root", "mount_setattr")}
            | {"clone3": ENOSYS}, clone_namespaces=True)
    drop_capabilities(CAP_SYS_ADMIN)


def main(argv: list[str]) -> None:
    if "--" not in argv or argv.index("--") not in (1, 3) or argv[1:2] not in (["--"], ["--home"]):
        sys.exit(__doc__)
    split = argv.index("--")
    condition, home, command = argv[0], argv[2] if split == 3 else None, argv[split + 1:]
    if not command:
        sys.exit(__doc__)
    if os.geteuid() != 0:
        sys.exit("confine.py needs root")
    if home:  # first: old-kernel refuses mount_setattr, the others drop root
        home_of_nobody(home)
    if condition == "submounts":
        submounts()
        become_nobody()
    elif condition == "old-kernel":
        submounts()
        seccomp({"mount_setattr": ENOSYS})
        become_nobody()
    elif condition == "userns-refused":
        nested_userns_without_userns()
        become_nobody()
    elif condition == "apparmor":
        seccomp({"mount": EPERM})
        become_nobody()
    elif condition == "docker":
        docker()
    elif condition == "root-one-uid":
        only_cgroup2()
        docker()
        drop_capabilities(CAP_SETGID, CAP_SETUID)
    elif condition == "root-admin-one-uid":
        only_cgroup2()
        drop_capabilities(CAP_SETGID, CAP_SETUID)
    elif condition == "no-landlock":
        nested_userns_without_userns()
        seccomp({name: ENOSYS for name in ("landlock_create_ruleset", "landlock_add_rule",
                                           "landlock_restrict_self")})
        become_nobody()
    elif condition == "cgroup2":
        only_cgroup2()
    elif condition == "delegated":
        only_cgroup2()
        delegate_to_nobody()
        become_nobody()
    else:
        sys.exit(f"unknown condition {condition!r}\n\n{__doc__}")
    os.environ["RLEF_SANDBOX_CONDITION"] = condition
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
