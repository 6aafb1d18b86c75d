#!/bin/sh
# The sandbox on this machine, checked in every mode it can take: run as root from
# the repository root, with a python3 that has pytest (nothing else of the project).
#
#   sh tests/device_sandbox.sh            # ~2 minutes on 2 busy cores; PYTHON=... for another python3
#
# 1. The machine: kernel, cgroup hierarchies, Landlock ABI.
# 2. Three test runs, at once on 8 cores or more (each under `timeout`): tests/test_sandbox.py and
#    tests/test_sandbox_hostile.py as root; tests/test_sandbox_modes.py, which runs
#    the hostile suite under each condition of tests/confine.py, for the conditions
#    that stay root (Docker's defaults, cgroup2 alone); and for those as the user
#    nobody (submounts, user namespaces refused, AppArmor-like, a delegated cgroup,
#    nothing isolates), one after the other: runs as the same user at once, without
#    a pids cgroup, would share one RLIMIT_NPROC.
# 3. tests/sandbox_report.py here (root), and as nobody in a delegated cgroup, under
#    Docker's defaults, with user namespaces refused, and as root that cannot take another
#    uid (where pids.max alone bounds a fork bomb): the mode and what it claims, and for
#    cgroup v2 what memory.max, pids.max, memory.events and cgroup.kill did.
set -u
cd "$(dirname "$0")/.." || exit 1
PY=${PYTHON:-python3}
export PYTHONDONTWRITEBYTECODE=1 PYTEST_DISABLE_PLUGIN_AUTOLOAD=1
LOGS=$(mktemp -d /tmp/rlef-device-XXXXXX)
chmod 755 "$LOGS"

echo "== machine: $(uname -sr), $($PY -V 2>&1), $(nproc) cores, uid $(id -u)"
echo "   /sys/fs/cgroup: $(stat -f -c %T /sys/fs/cgroup)$(test -f /sys/fs/cgroup/cgroup.controllers && echo ", controllers: $(cat /sys/fs/cgroup/cgroup.controllers), subtree_control: $(cat /sys/fs/cgroup/cgroup.subtree_control)")"
echo "   this process: $(tr '\n' ' ' < /proc/self/cgroup); landlock ABI: $($PY -c 'import ctypes; print(ctypes.CDLL(None).syscall(444, None, 0, 1))')"
echo "   user.max_user_namespaces: $(cat /proc/sys/user/max_user_namespaces); submounts under /usr: $(awk '$5 ~ "^/usr/" {print $5}' /proc/self/mountinfo | tr '\n' ' ')"

PYTEST="$PY -m pytest -q -p no:cacheprovider -o addopts= -rfEs"
run() {  # LOG ARGS...: at once where there are cores enough, else one after the other
    log="$LOGS/$1.log"
    shift
    if [ "$(nproc)" -ge 8 ]; then timeout 240 $PYTEST "$@" > "$log" 2>&1 &
    else timeout 240 $PYTEST "$@" > "$log" 2>&1; fi
}
run root tests/test_sandbox.py tests/test_sandbox_hostile.py tests/test_sandbox_cgroups.py
run modes-root -s tests/test_sandbox_modes.py -k "docker or as_root"
run modes-nobody -s tests/test_sandbox_modes.py -k "not docker and not as_root"
wait

for run in root modes-root modes-nobody; do
    echo "== $run: $(tail -n 1 "$LOGS/$run.log")"
    grep -E "^(FAILED|ERROR|SKIPPED)" "$LOGS/$run.log" | cut -c1-300
    if grep -qE "^(FAILED|ERROR)" "$LOGS/$run.log"; then  # what went wrong, not only where
        grep -E "^E |Error|error:" "$LOGS/$run.log" | sort | uniq -c | sort -rn | head -8 | cut -c1-300
    fi
    grep -oE "[a-z0-9-]+: \['[0-9].*" "$LOGS/$run.log" | cut -c1-600
done

echo "== sandbox_report.py (mode, claims, cgroup v2 evidence)"
mkdir -p "$LOGS/repo/tests"  # a copy the user nobody can read, wherever this checkout is
cp sandbox.py "$LOGS/repo/" && cp tests/confine.py tests/sandbox_report.py "$LOGS/repo/tests/"
chmod -R a+rX "$LOGS/repo"
timeout 60 $PY "$LOGS/repo/tests/sandbox_report.py" root
for condition in delegated docker userns-refused root-one-uid root-admin-one-uid; do
    (cd "$LOGS/repo" && timeout 60 $PY tests/confine.py "$condition" -- $PY tests/sandbox_report.py "$condition")
done
[ -n "${OUT:-}" ] && cp "$LOGS"/*.log "$OUT"/ 2>/dev/null  # the device tool brings $OUT back
echo "== logs in $LOGS"
