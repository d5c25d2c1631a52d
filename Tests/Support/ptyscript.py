#!/usr/bin/env python3
"""Runs one command on a new pseudo-terminal and plays a script against it, recording every byte.

    ptyscript.py OUT STEP... -- ARGV...

OUT gets the exact bytes the command wrote to its terminal; OUT.rc its exit status (decimal + newline,
128+N for a signal, as a shell says it); OUT.steps a log of what was done when (for the fixture's README).
Steps, run in order (every wait is bounded: a step that times out fails the recording):

    expect:REGEX        wait (30 s) until the output so far matches REGEX (Python syntax, on the bytes
                        decoded as UTF-8) after the previous match; its named groups ({id}, ...) are remembered for later steps
    expect@N:REGEX      the same, waiting up to N seconds
    send:TEXT           write TEXT to the terminal (\\r, \\n, \\x03 escapes), as typed keys (skipped once
                        the command has ended)
    signal:NAME         send signal NAME (SIGINT, SIGTERM, SIGHUP...) to the command's process, unless it
                        has ended (then noted and skipped)
    wait@N              wait up to N seconds for the command to end; not ending is not a failure
    run:SHELL           run SHELL with /bin/sh -c (after {name} substitution); its output goes to OUT.steps
    exit                wait (60 s) for the command to end (also done after the last step)

The command is the session leader of the terminal and its foreground process group, as a login shell's
command is, so that typed ^C reaches it through the line discipline.
"""

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time


def main():
    if "--" not in sys.argv:
        sys.exit(__doc__)
    split = sys.argv.index("--")
    out, steps, argv = sys.argv[1], sys.argv[2:split], sys.argv[split + 1 :]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    started = time.monotonic()
    buffer = bytearray()
    names = {}
    position = 0  # each expect looks past the previous match
    log = []
    status = None

    def note(text):
        log.append("%6.2f %s" % (time.monotonic() - started, text))

    def pump(timeout):
        nonlocal status
        ready, _, _ = select.select([fd], [], [], timeout)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: every process that had the terminal open is gone
                data = b""
            if data:
                buffer.extend(data)
                return True
        if status is None:
            done, raw = os.waitpid(pid, os.WNOHANG)
            if done:
                status = os.waitstatus_to_exitcode(raw)
                status = 128 - status if status < 0 else status
        return False

    def finish():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not pump(0.1) and status is not None:
                # Drain what is left: the terminal may still hold the last output.
                while pump(0.05):
                    pass
                return
        raise SystemExit("ptyscript: the command did not end within 60 s")

    try:
        for step in steps:
            kind, _, argument = step.partition(":")
            argument = argument.format(**names)
            if kind.startswith("expect"):
                bound = float(kind.partition("@")[2] or 30)
                note("expect " + argument)
                deadline = time.monotonic() + bound
                while True:
                    match = re.compile(argument).search(buffer.decode("utf-8", "replace"), position)
                    if match:
                        position = match.end()
                        names.update(match.groupdict())
                        note("matched " + repr(match.group(0)))
                        break
                    if time.monotonic() > deadline:
                        raise SystemExit("ptyscript: no %r within %g s; output: %r" % (argument, bound, bytes(buffer)))
                    pump(0.1)
            elif kind == "send":
                if status is None:
                    note("send " + argument)
                    os.write(fd, argument.encode().decode("unicode_escape").encode("latin-1"))
                else:
                    note("send %s skipped: the command has ended" % argument)
            elif kind == "signal":
                if status is None:
                    note("signal " + argument)
                    os.kill(pid, getattr(signal, argument))
                else:
                    note("signal %s skipped: the command has ended" % argument)
            elif kind.startswith("wait@"):
                deadline = time.monotonic() + float(kind.partition("@")[2])
                while status is None and time.monotonic() < deadline:
                    pump(0.05)
                note("waited: " + ("the command ended" if status is not None else "still running"))
            elif kind == "run":
                run = subprocess.run(["/bin/sh", "-c", argument], capture_output=True, text=True, timeout=60)
                note("run %s -> rc %d %s%s" % (argument, run.returncode, run.stdout, run.stderr))
            elif kind == "exit":
                finish()
            else:
                raise SystemExit("ptyscript: unknown step " + step)
        finish()
    finally:
        with open(out, "wb") as file:
            file.write(bytes(buffer))
        note("exit status %s" % status)
        with open(out + ".steps", "w") as file:
            file.write("\n".join(log) + "\n")
        if status is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    with open(out + ".rc", "w") as file:
        file.write("%d\n" % status)


if __name__ == "__main__":
    main()
