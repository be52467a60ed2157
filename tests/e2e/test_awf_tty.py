"""The caller's terminal: a command that turns echo off and sets exclusive
mode (TIOCEXCL) on the terminal awf gave it as stdin/stdout/stderr does not
leave it so. Whatever way the command ends (exit, SIGKILL of itself, awf's
SIGTERM passed on), the terminal has its termios back and is not exclusive.
Its output, stopped by the command, is restarted (before awf prints its
summary there), and its window size is the one it had."""

import fcntl
import os
import pty
import signal
import struct
import subprocess
import termios
import time

import pytest

from harness.util import token
from harness.world import GID, UID, require_awf, stop, wait_for, world  # noqa: F401 (fixture)

require_awf()

TIOCGEXCL = getattr(termios, "TIOCGEXCL", 0x80045440)  # _IOR('T', 0x40, int)

# The command's attacks on its terminal (then it marks that they were done).
ECHO_OFF = "stty -echo -icanon"
EXCLUSIVE = "python3 -c 'import fcntl, termios; fcntl.ioctl(0, termios.TIOCEXCL)'"
MANGLE = f"{ECHO_OFF} && {EXCLUSIVE} && echo mangled > {{mark}}; "


def exclusive(fd):
    return struct.unpack("i", fcntl.ioctl(fd, TIOCGEXCL, struct.pack("i", 0)))[0]


def drain(master):
    """What the command wrote to the terminal so far (without blocking)."""
    out = b""
    os.set_blocking(master, False)
    try:
        while True:
            chunk = os.read(master, 4096)
            if not chunk:
                break
            out += chunk
    except OSError:
        pass
    return out


def user_pty(w):
    """A pty pair; rootless, its terminal is the test user's, as a login's is
    (awf reopens its terminal: a root-owned one it could not)."""
    master, slave = pty.openpty()
    if w.rootless:
        os.chown(os.ttyname(slave), UID, GID)
    return master, slave


def run_on_pty(w, script, signal_awf=None, pty_pair=None):
    """awf with a pty as its stdin, stdout and stderr; the pty's slave after
    awf has exited, and awf's exit status."""
    master, slave = pty_pair or user_pty(w)
    argv, _ = w.awf_argv(["sh", "-c", script], log=False)
    try:
        before = termios.tcgetattr(slave)
        assert before[3] & termios.ECHO and exclusive(slave) == 0
        p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=w.base_env(),
                             cwd=w.home)
        try:
            if signal_awf is not None:
                ready = signal_awf
                assert wait_for(lambda: os.path.exists(ready), timeout=30), \
                    (stop(p), drain(master))
                time.sleep(0.1)
                p.send_signal(signal.SIGTERM)
            rc = p.wait(60)
        finally:
            stop(p)
        return master, slave, before, rc
    except BaseException:
        os.close(master)
        os.close(slave)
        raise


@pytest.mark.parametrize("attack", [ECHO_OFF, EXCLUSIVE], ids=["echo-off", "tiocexcl"])
@pytest.mark.parametrize("ending,status", [
    ("exit 5", 5),
    ("kill -KILL $$", 128 + signal.SIGKILL),
], ids=["exit", "sigkill"])
def test_command_mangling_the_callers_terminal_is_undone(world, attack, ending, status):
    mark = os.path.join(world.home, "mangled-" + token())
    master, slave, before, rc = run_on_pty(world, f"{attack} && echo done > {mark}; {ending}")
    try:
        out = drain(master)
        assert rc == status, out
        assert os.path.exists(mark), out  # the attack did happen inside
        after = termios.tcgetattr(slave)
        assert after[3] & termios.ECHO and after[3] & termios.ICANON, out
        assert after == before, out
        assert exclusive(slave) == 0, out
    finally:
        os.close(master)
        os.close(slave)


def test_terminal_restored_when_awf_is_stopped_by_sigterm(world):
    """SIGTERM to awf reaches the command, which dies of it; the terminal is
    put back before awf exits 128+15."""
    mark = os.path.join(world.home, "mangled-" + token())
    script = MANGLE.format(mark=mark) + "exec sleep 30"
    master, slave, before, rc = run_on_pty(world, script, signal_awf=mark)
    try:
        out = drain(master)
        assert rc == 128 + signal.SIGTERM, out
        assert termios.tcgetattr(slave) == before, out
        assert exclusive(slave) == 0, out
    finally:
        os.close(master)
        os.close(slave)


def winsize(fd):
    return struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))[:2]


def run_stopping_output(w, script, status, timeout, args=()):
    """awf on a pty running a script that stops the terminal's output:
    awf exits with `status` within `timeout` (an awf blocked on the stopped
    terminal fails here, never hangs the suite), and afterwards a write to
    the terminal does not block. What awf wrote there."""
    master, slave = user_pty(w)
    argv, _ = w.awf_argv(["sh", "-c", script], args=args, log=False)
    p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=w.base_env(),
                         cwd=w.home, start_new_session=True)
    try:
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            stop(p)
            rc = None
        out = drain(master)
        assert rc == status, out
        # A fresh non-blocking descriptor: a stopped terminal says EAGAIN.
        fd = os.open(os.ttyname(slave), os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            assert os.write(fd, b"still alive\n") == 12
        finally:
            os.close(fd)
        return out
    finally:
        stop(p)
        os.close(master)
        os.close(slave)


def test_command_stopping_terminal_output_is_undone(world):
    """The command stops the terminal's output (tcflow TCOOFF), makes a
    denied request (so awf has a summary to print) and exits: awf does not
    hang on its own summary, which reaches the terminal, and a later write to
    the terminal does not block."""
    t = token()
    stop_output = "python3 -c 'import termios; termios.tcflow(1, termios.TCOOFF)'"
    curl = " ".join(world.curl_args(f"http://stopped-{t}.other.test/", "-o", "/dev/null"))
    out = run_stopping_output(world, f"{stop_output} && {curl}; exit 5", 5, 30)
    assert f"stopped-{t}.other.test".encode() in out, out


def test_command_changing_the_window_size_is_undone(world):
    master, slave = user_pty(world)
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
    mark = os.path.join(world.home, "resized-" + token())
    _, _, _, rc = run_on_pty(world, f"stty rows 2 cols 3 && stty size > {mark}; exit 4",
                             pty_pair=(master, slave))
    try:
        out = drain(master)
        assert rc == 4, out
        assert open(mark).read().split() == ["2", "3"], out  # it did change inside
        assert winsize(slave) == (33, 111), out
    finally:
        os.close(master)
        os.close(slave)


def test_command_stopping_terminal_output_cannot_stall_agent_timeout(world):
    """Output stopped, then the command outstays --agent-timeout: awf's own
    message about it must not block awf (its loop would never send the
    SIGKILL), so awf still ends the command and exits 124."""
    stop_output = "python3 -c 'import termios; termios.tcflow(2, termios.TCOOFF)'"
    # 3 s, then SIGTERM (ignored), then SIGKILL 10 s later
    run_stopping_output(world, f"{stop_output} && trap '' TERM && sleep 60", 124, 40,
                        args=["--agent-timeout", "0.05"])


TIOCGETD = getattr(termios, "TIOCGETD", 0x5424)
TIOCSETD = getattr(termios, "TIOCSETD", 0x5423)
N_NULL = 27  # a discipline that drops everything: the terminal is dead
SET_LDISC = (
    "python3 -c 'import errno, fcntl, struct, sys\n"
    "try:\n"
    f"    fcntl.ioctl(0, {TIOCSETD}, struct.pack(\"i\", {N_NULL})); r = \"changed\"\n"
    "except OSError as e:\n"
    "    r = errno.errorcode[e.errno]\n"
    "open(sys.argv[1], \"w\").write(r)' {mark}")


def ldisc(fd):
    return struct.unpack("i", fcntl.ioctl(fd, TIOCGETD, struct.pack("i", -1)))[0]


def test_command_cannot_change_the_callers_line_discipline(world):
    """TIOCSETD on the caller's terminal (n_null leaves it dead after the
    run; with dev.tty.ldisc_autoload=1 naming a discipline loads a kernel
    module): refused with EPERM by the seccomp filter, the terminal keeps
    N_TTY."""
    mark = os.path.join(world.home, "ldisc-" + token())
    master, slave, before, rc = run_on_pty(world, SET_LDISC.format(mark=mark))
    try:
        out = drain(master)
        assert rc == 0, out
        with open(mark) as f:
            assert f.read() == "EPERM", out
        assert ldisc(slave) == 0, out  # N_TTY
    finally:
        os.close(master)
        os.close(slave)
