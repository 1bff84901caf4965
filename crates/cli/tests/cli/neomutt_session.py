"""neomutt, a terminal program we did not write, in a pseudo-terminal: it opens the mailbox its
configuration names, and once SUBJECT shows on its index screen, `q` quits it.

Usage: neomutt_session.py MUTTRC SUBJECT. Prints JSON: "seen" (whether SUBJECT was on the
screen), "exit" (neomutt's exit status, or null if it had to be killed) and "screen" (the end of
what it drew, escape sequences removed, for a failure message).
"""

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time

ESCAPES = re.compile(rb"\x1b(\[[0-9;?]*[ -/]*[@-~]|[()][0-9A-Za-z]|[=>78MDEHc])")


def main(muttrc, subject):
    pid, fd = pty.fork()
    if pid == 0:
        # 40 rows of 200 columns: the whole subject fits on the index line.
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))
        os.environ["TERM"] = "xterm"
        # -n: no system configuration; -F: only the test's.
        debug = os.environ.get("NEOMUTT_DEBUG_LOG")
        extra = ["-d", "5", "-l", debug] if debug else []
        os.execvp("neomutt", ["neomutt", "-n", "-F", muttrc] + extra)
    drawn = b""
    seen = False
    quit_sent = None
    status = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            drawn += chunk
        done, code = os.waitpid(pid, os.WNOHANG)
        if done:
            status = os.waitstatus_to_exitcode(code)
            break
        plain = ESCAPES.sub(b"", drawn)
        if b"(r)eject" in plain[-400:] and not plain.endswith(b"o"):
            # The certificate question (if the configured trust did not settle it): once.
            os.write(fd, b"o")
            drawn += b"o"
        if not seen and subject.encode() in plain:
            seen = True
            quit_sent = time.monotonic()
            os.write(fd, b"q")
        elif quit_sent and time.monotonic() - quit_sent > 5:
            # A question after `q` (none is expected): answer yes once.
            os.write(fd, b"y")
            quit_sent = time.monotonic()
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    screen = ESCAPES.sub(b"", drawn).decode("utf-8", "replace")
    print(json.dumps({"seen": seen, "exit": status, "screen": screen[-3000:]}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
