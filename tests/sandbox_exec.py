"""Exec a command under the unit's memory and system-call restrictions, as far
as they can be had without systemd: used by tests/test_systemd_unit.py.

    python sandbox_exec.py [--seccomp] COMMAND ARGS...

Always: no_new_privs and PR_SET_MDWE (Linux >= 6.3), the kernel's own
MemoryDenyWriteExecute=: no mapping may be writable and executable, nor become
executable later. With --seccomp (needs the libseccomp Python binding and
systemd-analyze): an allow list of @system-service minus @privileged and
@resources as `systemd-analyze syscall-filter` expands them, EPERM for the rest
(SystemCallFilter=, SystemCallErrorNumber=EPERM), socket() only for AF_UNIX,
AF_INET and AF_INET6 (RestrictAddressFamilies=), native architecture only.
Exits 3 when the kernel offers no PR_SET_MDWE, 4 when --seccomp cannot be had.
"""
from __future__ import annotations

import ctypes
import errno
import os
import subprocess
import sys

PR_SET_NO_NEW_PRIVS, PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 38, 65, 1
GROUPS_ALLOWED, GROUPS_DENIED = ["@system-service"], ["@privileged", "@resources"]
FAMILIES = (1, 2, 10)  # AF_UNIX, AF_INET, AF_INET6


def expand(group: str, seen: set[str] | None = None) -> set[str]:
    seen = set() if seen is None else seen
    text = subprocess.run(["systemd-analyze", "syscall-filter", group], capture_output=True, text=True,
                          check=True).stdout
    names: set[str] = set()
    for line in text.splitlines()[1:]:
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        if name.startswith("@"):
            if name not in seen:
                seen.add(name)
                names |= expand(name, seen)
        else:
            names.add(name)
    return names


def load_seccomp() -> None:
    import seccomp  # the libseccomp binding (Debian: python3-seccomp)

    allowed = set().union(*map(expand, GROUPS_ALLOWED)) - set().union(*map(expand, GROUPS_DENIED))
    flt = seccomp.SyscallFilter(defaction=seccomp.ERRNO(errno.EPERM))
    for name in sorted(allowed - {"socket"}):
        try:
            flt.add_rule(seccomp.ALLOW, name)
        except (RuntimeError, ValueError, OSError):
            pass  # a name this libseccomp does not know: not callable here either
    for family in FAMILIES:
        flt.add_rule(seccomp.ALLOW, "socket", seccomp.Arg(0, seccomp.EQ, family))
    flt.load()


def main(argv: list[str]) -> None:
    use_seccomp = argv[:1] == ["--seccomp"]
    command = argv[1:] if use_seccomp else argv
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        sys.exit(3)
    if use_seccomp:
        try:
            load_seccomp()
        except (ImportError, OSError, subprocess.CalledProcessError):
            sys.exit(4)
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
