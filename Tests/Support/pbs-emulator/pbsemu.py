#!/usr/bin/env python3
"""pbsemu - an emulator of the OpenPBS / PBS Pro 23.06 client commands qsub, qstat and qdel.

Built from the outputs recorded in Tests/Fixtures/pbs (see README.md next to this file).
Jobs really run: qsub forks a detached "runner" per job (or per job array) that waits
until the job may start, runs it under a login-style bash in its own session, enforces
walltime, delivers the output files and records the exit status the way PBS does.

Python 3 standard library only.  State lives in ${PBS_EMU_HOME:-/tmp/qxub-pbsemu}.

    bin/qsub, bin/qstat, bin/qdel     thin wrappers around main()
    python3 pbsemu.py shutdown        kill every runner and running job of PBS_EMU_HOME
    python3 pbsemu.py reset           shutdown, then delete PBS_EMU_HOME
"""

import errno
import fcntl
import json
import os
import pwd
import re
import secrets
import select
import signal
import sys
import time

PBS_VERSION = "23.06.06"

# PBS error numbers (exit status of the commands is the number modulo 256).
PBSE_UNKJOBID = 15001      # -> 153
PBSE_BADATVAL = 15014      # -> 166
PBSE_UNKQUE = 15018        # -> 170
PBSE_UNKRESC = 15035       # -> 187
PBSE_HISTJOBID = 15139     # -> 35
PBSE_BADSTATE = 15016      # -> 168 (qdel of a job in state E)

QSTAT_USAGE = (
    "usage: \n"
    "qstat [-f] [-J] [-p] [-t] [-x] [-E] [-F format | -w] [-D delim] [ job_identifier... | destination... ]\n"
    "qstat [-a|-i|-r|-H|-T] [-J] [-t] [-u user] [-n] [-s] [-G|-M] [-1] [-w]\n"
    "\t[ job_identifier... | destination... ]\n"
    "qstat -Q [-f] [-F format] [-D delim] [ destination... ]\n"
    "qstat -q [-G|-M] [ destination... ]\n"
    "qstat -B [-f] [-F format] [-D delim] [ server_name... ]\n"
    "qstat --version\n"
)
# Not in the fixtures: the text of a public PBS Pro qsub (continuation indent unverified).
QSUB_USAGE = (
    "usage: qsub [-a date_time] [-A account_string] [-c interval]\n"
    "        [-C directive_prefix] [-e path] [-f ] [-h ] [-I [-X]] [-j oe|eo] [-J X-Y[:Z]]\n"
    "        [-k o|e|oe] [-l resource_list] [-m mail_options] [-M user_list]\n"
    "        [-N jobname] [-o path] [-p priority] [-P project] [-q queue] [-r y|n]\n"
    "        [-S path] [-u user_list] [-W otherattributes=value...]\n"
    "        [-v variable_list] [-V ] [-z] [script | -- command [arg1 ...]]\n"
    "       qsub --version\n"
)
# From src/cmds/qdel.c.
QDEL_USAGE = (
    "usage:\n"
    "\tqdel [-W force|suppress_email=X] [-x] job_identifier...\n"
    "\tqdel --version\n"
)

QSUB_OPTSTRING = "a:A:c:C:e:fGhIj:J:k:l:m:M:N:o:p:P:q:r:R:S:u:v:VW:Xz"
QSTAT_OPTSTRING = "ainpqrstwxu:fGHJMQEBW:T1F:D:"
QDEL_OPTSTRING = "W:x"

DEFAULT_QUEUES = ["normal", "express", "copyq", "gpuvolta", "hugemem"]


class Fail(Exception):
    """A command-level failure: message (already formatted, may be empty) and exit status."""

    def __init__(self, message, rc):
        super().__init__(message)
        self.message = message
        self.rc = rc


def unsupported(what):
    return Fail("pbsemu: unsupported option %s\n" % what, 2)


# --------------------------------------------------------------------------------------
# configuration and state
# --------------------------------------------------------------------------------------

class Config:
    def __init__(self):
        e = os.environ
        self.home = os.path.abspath(e.get("PBS_EMU_HOME") or "/tmp/qxub-pbsemu")
        self.server = e.get("PBS_EMU_SERVER") or "vm"
        self.host = e.get("PBS_EMU_HOST") or self.server
        self.ncpus = int(e.get("PBS_EMU_NCPUS") or "8")
        self.kill_delay = float(e.get("PBS_EMU_KILL_DELAY") or "10")
        self.session_id_after = float(e.get("PBS_EMU_SESSION_ID_AFTER") or "3")
        self.prerun = float(e.get("PBS_EMU_PRERUN") or "0")
        self.fix_json_batch = (e.get("PBS_EMU_FIX_JSON_BATCH") or "") not in ("", "0")
        self.login_profile = (e.get("PBS_EMU_LOGIN_PROFILE") or "1") != "0"
        self.seq_start = int(e.get("PBS_EMU_SEQ_START") or "1000")
        pw = pwd.getpwuid(os.getuid())
        self.user = pw.pw_name
        self.job_home = e.get("PBS_EMU_JOB_HOME") or pw.pw_dir or "/"
        self.login_shell = pw.pw_shell if pw.pw_shell and os.path.basename(pw.pw_shell) in (
            "bash", "sh", "dash", "zsh", "ksh") and os.access(pw.pw_shell, os.X_OK) else "/bin/bash"
        bindir = os.path.join(os.path.dirname(os.path.realpath(__file__)), "bin")
        # the PATH the mom gives the job before its login shell reads the login files
        self.job_path = e.get("PBS_EMU_JOB_PATH") or ("/usr/local/bin:/usr/bin:/bin:" + bindir)
        self.tmpdir_base = e.get("PBS_EMU_TMPDIR") or os.path.join(self.home, "tmp")
        extra = e.get("PBS_EMU_RESOURCES") or ""
        self.extra_resources = {}
        for item in re.split(r"[\s,]+", extra.strip()):
            if item:
                name, _, typ = item.partition(":")
                self.extra_resources[name] = typ or "string"

    def p(self, *parts):
        return os.path.join(self.home, *parts)

    def ensure(self):
        for d in ("jobs", "spool", "mom_priv/jobs", "aux", "running", "undelivered", "log", "runners"):
            os.makedirs(self.p(d), exist_ok=True)
        os.makedirs(self.tmpdir_base, exist_ok=True)

    def queues(self):
        qs = []
        qfile = self.p("queues")
        if os.path.exists(qfile):
            with open(qfile) as f:
                for line in f:
                    line = line.split("#", 1)[0].strip()
                    if line:
                        qs.extend(re.split(r"[\s,]+", line))
        else:
            qs = list(DEFAULT_QUEUES)
        for q in re.split(r"[\s,]+", os.environ.get("PBS_EMU_QUEUES") or ""):
            if q and q not in qs:
                qs.append(q)
        return qs

    def default_queue(self):
        qs = self.queues()
        return "normal" if "normal" in qs else (qs[0] if qs else "normal")

    def scheduling_off(self):
        return os.path.exists(self.p("scheduling_off"))

    def history_off(self):
        """job_history_enable = False: finished jobs are purged at once, qstat -x refuses."""
        return os.path.exists(self.p("job_history_off"))


CFG = None


class Lock:
    def __init__(self, shared=False):
        self.shared = shared

    def __enter__(self):
        self.fd = os.open(CFG.p("lock"), os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def rec_path(seq):
    return CFG.p("jobs", "%d.json" % seq)


def load_rec(seq):
    try:
        with open(rec_path(seq)) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def save_rec(rec):
    path = rec_path(rec["seq"])
    tmp = path + ".tmp%d" % os.getpid()
    with open(tmp, "w") as f:
        json.dump(rec, f)
    os.replace(tmp, path)


def all_seqs():
    out = []
    for name in os.listdir(CFG.p("jobs")):
        m = re.match(r"^(\d+)\.json$", name)
        if m:
            out.append(int(m.group(1)))
    return sorted(out)


def next_seq():
    path = CFG.p("seq")
    try:
        with open(path) as f:
            seq = int(f.read().strip() or CFG.seq_start)
    except FileNotFoundError:
        seq = CFG.seq_start
    while os.path.exists(rec_path(seq)):
        seq += 1
    nxt = seq + 1 if seq < 9999999 else 0
    with open(path + ".tmp", "w") as f:
        f.write("%d\n" % nxt)
    os.replace(path + ".tmp", path)
    return seq


def members(rec):
    """The runnable units of a record: the job itself, or the subjobs of an array."""
    if rec["kind"] == "array":
        return [rec["subjobs"][k] for k in sorted(rec["subjobs"], key=int)]
    return [rec]


def is_final(m):
    return m["state"] in ("F", "X")


# --------------------------------------------------------------------------------------
# small formatting helpers
# --------------------------------------------------------------------------------------

def fmt_ctime(t):
    return time.ctime(int(t))


def fmt_comment_time(t):
    return time.strftime("%a %b %d at %H:%M", time.localtime(int(t)))


def fmt_duration(secs):
    secs = int(max(0, secs))
    return "%02d:%02d:%02d" % (secs // 3600, (secs // 60) % 60, secs % 60)


def parse_jobid(s):
    """PBS job id -> (seq, bracket, server) or None when illegally formed.
    bracket: None, "" (array parent "[]") or the subjob index string."""
    m = re.match(r"^\s*(\d+)(?:\[(\d*)\])?(?:\.([^@\s]+))?(?:@(\S+))?\s*$", s)
    if not m:
        return None
    return int(m.group(1)), m.group(2), m.group(3)


def canon_id(seq, bracket, server=None):
    b = "" if bracket is None else "[%s]" % bracket
    return "%d%s.%s" % (seq, b, server or CFG.server)


def server_matches(suffix):
    if suffix is None:
        return True
    return suffix == CFG.server or suffix.startswith(CFG.server + ".")


def range_string(indices):
    """Compress sorted integer indices into PBS range syntax: 1-3,5,7-9."""
    if not indices:
        return "-"
    parts = []
    start = prev = indices[0]
    for i in indices[1:]:
        if i == prev + 1:
            prev = i
            continue
        parts.append(str(start) if start == prev else "%d-%d" % (start, prev))
        start = prev = i
    parts.append(str(start) if start == prev else "%d-%d" % (start, prev))
    return ",".join(parts)


# --------------------------------------------------------------------------------------
# getopt (glibc behaviour without argument permutation: qsub refuses permuted arguments)
# --------------------------------------------------------------------------------------

def getopt(prog, args, optstring):
    """Returns (list of (opt, arg), index of first operand).  Raises Fail on errors with the
    glibc messages.  Stops at the first operand or after '--' (index points at '--')."""
    takes = {}
    i = 0
    while i < len(optstring):
        c = optstring[i]
        if i + 1 < len(optstring) and optstring[i + 1] == ":":
            takes[c] = True
            i += 2
        else:
            takes[c] = False
            i += 1
    opts = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            return opts, i
        if not a.startswith("-") or a == "-":
            return opts, i
        j = 1
        while j < len(a):
            c = a[j]
            if c not in takes or c == ":":
                raise Fail("%s: invalid option -- '%s'\n" % (prog, c), -1)
            if takes[c]:
                if j + 1 < len(a):
                    opts.append((c, a[j + 1:]))
                elif i + 1 < len(args):
                    i += 1
                    opts.append((c, args[i]))
                else:
                    raise Fail("%s: option requires an argument -- '%s'\n" % (prog, c), -1)
                break
            opts.append((c, None))
            j += 1
        i += 1
    return opts, i


# --------------------------------------------------------------------------------------
# resources
# --------------------------------------------------------------------------------------

BUILTIN_RESOURCES = {
    "walltime": "time", "cput": "time", "pcput": "time", "soft_walltime": "time",
    "min_walltime": "time", "max_walltime": "time",
    "mem": "size", "vmem": "size", "pmem": "size", "pvmem": "size", "file": "size", "jobfs": "size",
    "ncpus": "long", "ngpus": "long", "mpiprocs": "long", "ompthreads": "long",
    "naccelerators": "long", "nice": "slong",
    "select": "select", "place": "place", "nodect": "readonly", "nodes": "unsupported",
    "arch": "string", "host": "string", "vnode": "string", "software": "string",
    "storage": "string", "accelerator_model": "string", "site": "string", "job_tags": "string",
    "wd": "bool", "accelerator": "bool",
}
# consumable host-level resources: summed from select chunks / folded into the default select
CHUNK_SUMMED = ["ncpus", "mem", "vmem", "ngpus", "mpiprocs", "naccelerators"]
CHUNK_DEFAULT_EXTRA = ["mem", "vmem", "ngpus", "mpiprocs", "ompthreads", "naccelerators"]


def resource_type(name):
    if name in CFG.extra_resources:
        return CFG.extra_resources[name]
    return BUILTIN_RESOURCES.get(name)


def parse_time_value(v):
    m = re.match(r"^(?:(?:(\d+):)?(\d+):)?(\d+)(?:\.(\d*))?$", v)
    if not m:
        return None
    h, mi, s, frac = m.groups()
    total = int(h or 0) * 3600 + int(mi or 0) * 60 + int(s)
    if frac and int(frac[0]) >= 5:
        total += 1
    return total


SIZE_SHIFT = {"": 0, "k": 10, "m": 20, "g": 30, "t": 40, "p": 50}


def parse_size_value(v):
    m = re.match(r"^(\d+)([kmgtpKMGTP]?)([bwBW]?)$", v)
    if not m:
        return None
    n, mult, unit = m.groups()
    return int(n), mult.lower(), (unit.lower() or "b")


def fmt_size(n, mult, unit):
    return "%d%s%s" % (n, mult, unit)


def size_bytes(parsed):
    n, mult, unit = parsed
    b = n << SIZE_SHIFT[mult]
    return b * 8 if unit == "w" else b


def normalize_resource(name, value):
    """Validate and normalise one resource value.  Returns the display string or raises Fail."""
    typ = resource_type(name)
    if typ is None:
        raise Fail("qsub: Unknown resource Resource_List.%s\n" % name, PBSE_UNKRESC)
    if typ in ("readonly", "unsupported"):
        raise unsupported("-l %s" % name)
    bad = Fail("qsub: Illegal attribute or resource value Resource_List.%s\n" % name, PBSE_BADATVAL)
    if typ == "time":
        secs = parse_time_value(value)
        if secs is None:
            raise bad
        return fmt_duration(secs)
    if typ == "size":
        p = parse_size_value(value)
        if p is None:
            raise bad
        return fmt_size(*p)
    if typ in ("long", "slong"):
        if not re.match(r"^[+]?\d+$" if typ == "long" else r"^[+-]?\d+$", value):
            raise bad
        return str(int(value))
    if typ == "bool":
        if value in ("", "true", "True", "TRUE", "t", "T", "y", "Y", "1"):
            return "True"
        if value in ("false", "False", "FALSE", "f", "F", "n", "N", "0"):
            return "False"
        raise bad
    if typ == "place":
        toks = value.split(":")
        for t in toks:
            if not (t in ("pack", "scatter", "free", "vscatter", "excl", "shared", "exclhost")
                    or re.match(r"^group=\w+$", t)):
                raise bad
        return value
    if typ == "select":
        parse_select(value)  # raises on error
        return value
    if value == "":
        raise bad
    return value


def parse_select(value):
    bad = Fail("qsub: Illegal attribute or resource value Resource_List.select\n", PBSE_BADATVAL)
    chunks = []
    if not value:
        raise bad
    for chunk in value.split("+"):
        parts = chunk.split(":")
        count = 1
        if parts and re.match(r"^\d+$", parts[0]):
            count = int(parts[0])
            parts = parts[1:]
            if count < 1:
                raise bad
        res = []
        for p in parts:
            name, eq, val = p.partition("=")
            if not eq or not re.match(r"^[A-Za-z_][\w-]*$", name):
                raise bad
            typ = resource_type(name)
            if typ is None or typ in ("select", "place", "readonly", "unsupported", "time"):
                raise bad
            try:
                val = normalize_resource(name, val)
            except Fail:
                raise bad
            res.append((name, val))
        if not res and count == 1 and not parts and not re.match(r"^\d+$", chunk):
            raise bad
        chunks.append((count, res))
    return chunks


def split_resource_list(s):
    """-l a=b,c="x,y",d -> [(a,b),(c,x,y),(d,None)]; raises Fail(-1) on syntax errors."""
    out = []
    i = 0
    n = len(s)
    if not s:
        raise Fail("", -1)
    while i < n:
        m = re.match(r"[A-Za-z_][\w-]*", s[i:])
        if not m:
            raise Fail("", -1)
        name = m.group(0)
        i += len(name)
        if i < n and s[i] == "=":
            i += 1
            val = []
            quote = None
            while i < n:
                c = s[i]
                if quote:
                    if c == quote:
                        quote = None
                    else:
                        val.append(c)
                elif c in "\"'":
                    quote = c
                elif c == ",":
                    break
                else:
                    val.append(c)
                i += 1
            if quote:
                raise Fail("", -1)
            out.append((name, "".join(val)))
        else:
            out.append((name, None))
        if i < n:
            if s[i] != ",":
                raise Fail("", -1)
            i += 1
            if i >= n:
                raise Fail("", -1)
    return out


# --------------------------------------------------------------------------------------
# environment variable lists (Variable_List)
# --------------------------------------------------------------------------------------

def esc_commas(v):
    return v.replace(",", "\\,")


def copy_env_value(pv, quote_flg):
    """qsub.c copy_env_value(): returns (escaped value, rest) or raises Fail."""
    out = []
    q_ch = None
    i = 0
    while i < len(pv):
        c = pv[i]
        if c in "\"'":
            if q_ch:
                if q_ch == c:
                    q_ch = None
                else:
                    out.append("\\" + c)
            elif quote_flg:
                out.append("\\" + c)
            else:
                q_ch = c
        elif c == "\\":
            out.append(c)
            if i + 1 >= len(pv) or pv[i + 1] != ",":
                out.append(c)
        elif c == ",":
            if q_ch or quote_flg:
                out.append("\\,")
            elif out and out[-1].endswith("\\"):
                out.append(c)
            else:
                return "".join(out), pv[i + 1:]
        else:
            out.append(c)
        i += 1
    if q_ch:
        raise Fail("qsub: cannot send environment with the job\n", 1)
    return "".join(out), ""


def comma_tokens(s):
    toks = []
    cur = []
    quote = None
    i = 0
    while i < len(s):
        c = s[i]
        if c in "\"'":
            if quote == c:
                quote = None
            elif quote is None:
                quote = c
            cur.append(c)
        elif c == "," and quote is None:
            toks.append("".join(cur))
            cur = []
        elif c == "\\" and i + 1 < len(s):
            cur.append(c + s[i + 1])
            i += 1
        else:
            cur.append(c)
        i += 1
    if cur:
        toks.append("".join(cur))
    return toks


def expand_v_list(value):
    """-v list -> [(name, escaped value)], following qsub's expand_varlist + set_job_env."""
    out = []
    for tok in comma_tokens(value):
        if tok == "":
            continue
        name, eq, val = tok.partition("=")
        if name.startswith("PBS_O_"):
            continue
        if not name or "=" in name:
            raise Fail("qsub: cannot send environment with the job\n", 1)
        if not eq:
            ev = os.environ.get(name)
            if ev is None:
                raise Fail("qsub: cannot send environment with the job\n", 1)
            esc, _ = copy_env_value(ev, True)
        else:
            esc, _ = copy_env_value(val, False)
        out.append((name, esc))
    return out


def unescape_env(v):
    out = []
    i = 0
    while i < len(v):
        if v[i] == "\\" and i + 1 < len(v):
            out.append(v[i + 1])
            i += 2
        else:
            out.append(v[i])
            i += 1
    return "".join(out)


def varlist_string(pairs):
    return ",".join("%s=%s" % (n, v) for n, v in pairs)


def workdir():
    pwd_env = os.environ.get("PWD")
    if pwd_env:
        try:
            a = os.stat(pwd_env)
            b = os.stat(".")
            if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino):
                return pwd_env
        except OSError:
            pass
    return os.getcwd()


# --------------------------------------------------------------------------------------
# qsub
# --------------------------------------------------------------------------------------

def make_argv(line):
    """qsub.c make_argv(): split a directive line honouring quotes and backslashes."""
    args = []
    buf = []
    have = False
    i = 0
    line = line.strip()
    while i < len(line):
        c = line[i]
        if c in "\"'":
            j = line.find(c, i + 1)
            if j < 0:
                raise Fail("qsub: unmatched %s\n" % c, 1)
            buf.append(line[i + 1:j])
            have = True
            i = j + 1
        elif c == "\\" and i + 1 < len(line):
            buf.append(line[i + 1])
            have = True
            i += 2
        elif c.isspace():
            if have or buf:
                args.append("".join(buf))
            buf = []
            have = False
            while i < len(line) and line[i].isspace():
                i += 1
        else:
            buf.append(c)
            have = True
            i += 1
    if have or buf:
        args.append("".join(buf))
    return args


class SubmitOptions:
    """Option values with the "command line wins over directives" precedence of qsub."""

    def __init__(self):
        self.level = {}
        self.val = {}
        self.resources = {}        # name -> (value, level, order)
        self.res_order = 0
        self.wattrs = {}           # -W key -> (value, level)
        self.attr_order = []       # order of first setting, for error precedence

    def set(self, key, value, level):
        if self.level.get(key, 0) <= level:
            self.level[key] = level
            self.val[key] = value
            if key not in self.attr_order:
                self.attr_order.append(key)

    def get(self, key, default=None):
        return self.val.get(key, default)

    def has(self, key):
        return key in self.val


def apply_opts(opts, o, level, prog_errors):
    """Apply parsed (opt, arg) pairs at precedence level (3 = command line, 2 = directive)."""
    for c, a in opts:
        if c in "aGRuX":
            raise unsupported("-" + c)
        if c == "I":
            o.set("interactive", True, level)
            continue
        if c == "A":
            o.set("Account_Name", a, level)
        elif c == "c":
            v = a.strip()
            if v == "u" or not re.match(r"^(n|s|c|w|u|[cw]=\d+|\d+)$", v):
                prog_errors.append("qsub: illegal -c value\n")
                continue
            o.set("Checkpoint", v, level)
        elif c == "C":
            o.set("prefix", a, level)
        elif c == "e":
            o.set("Error_Path", a, level)
        elif c == "f":
            pass
        elif c == "h":
            o.set("Hold_Types", "u", level)
        elif c == "j":
            o.set("Join_Path", a, level)
        elif c == "J":
            if "%" in a:
                raise unsupported("-J %s" % a)
            if o.get("Rerunable") == "n":
                prog_errors.append("qsub:  cannot submit non-rerunable Array Job\n")
                continue
            o.set("J", a, level)
        elif c == "k":
            o.set("Keep_Files", a, level)
        elif c == "l":
            try:
                items = split_resource_list(a)
            except Fail:
                prog_errors.append("qsub: illegal -l value\n")
                continue
            for name, val in items:
                cur = o.resources.get(name)
                if cur is None or cur[1] <= level:
                    o.res_order += 1
                    o.resources[name] = (val, level, cur[2] if cur else o.res_order)
            if "Resource_List" not in o.attr_order:
                o.attr_order.append("Resource_List")
        elif c == "m":
            o.set("Mail_Points", a.strip(), level)
        elif c == "M":
            o.set("Mail_Users", a, level)
        elif c == "N":
            o.set("Job_Name", a, level)
        elif c == "o":
            o.set("Output_Path", a, level)
        elif c == "p":
            o.set("Priority", a.strip(), level)
        elif c == "P":
            o.set("project", a, level)
        elif c == "q":
            o.set("queue", a, level)
        elif c == "r":
            if a not in ("y", "n"):
                prog_errors.append("qsub: illegal -r value\n")
                continue
            if a == "n" and o.has("J"):
                prog_errors.append("qsub:  cannot submit non-rerunable Array Job\n")
                continue
            o.set("Rerunable", a, level)
        elif c == "S":
            o.set("Shell_Path_List", a, level)
        elif c == "v":
            o.set("v", a, level)
        elif c == "V":
            o.set("V", True, level)
        elif c == "W":
            v = a.lstrip()
            if not v:
                prog_errors.append("qsub: illegal -W value\n")
                continue
            for item in comma_tokens(v):
                key, eq, val = item.partition("=")
                if not eq or not key:
                    prog_errors.append("qsub: illegal -W value\n")
                    break
                if val[:1] in "\"'" and val[-1:] == val[:1] and len(val) >= 2:
                    val = val[1:-1]
                if key not in ("depend", "umask", "block"):
                    raise unsupported("-W %s" % item)
                cur = o.wattrs.get(key)
                if cur is None or cur[1] <= level:
                    o.wattrs[key] = (val, level)
                if key not in o.attr_order:
                    o.attr_order.append(key)
        elif c == "z":
            o.set("z", True, level)


def read_script_directives(text, prefix, o):
    """Parse #PBS directives until the first executable line (qsub_sup.c get_script)."""
    for line in text.splitlines():
        stripped = line.lstrip()
        if prefix and stripped.startswith(prefix):
            rest = stripped[len(prefix):]
            args = make_argv(rest)
            errors = []
            try:
                opts, idx = getopt("qsub", args, QSUB_OPTSTRING)
                if idx != len(args):
                    raise Fail("", -1)
                apply_opts(opts, o, 2, errors)
            except Fail as f:
                if f.rc != -1:
                    raise
                errors.append(f.message)
            if errors:
                raise Fail("".join(e for e in errors if e) +
                           "qsub: directive error: " + "".join(x + " " for x in args) + "\n", 1)
            continue
        # isexecutable(): ':' or '#!' at column 0, blank lines and comments are not
        if line[:1] == ":" or line[:2] == "#!":
            continue
        if stripped == "" or stripped.startswith("#"):
            continue
        break


def xml_escape(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&apos;"))


def valid_job_name(n):
    return 0 < len(n) <= 236 and not re.search(r"[\s/\x00-\x1f\x7f]", n)


def resolve_path(spec, wd, default_name):
    """-o/-e value -> 'host:/abs/path' (relative to the submit dir; trailing '/' = dir)."""
    host = CFG.host
    path = spec
    m = re.match(r"^([^:/]+):(.*)$", spec)
    if m:
        host, path = m.group(1), m.group(2)
    if not path.startswith("/"):
        path = os.path.normpath(os.path.join(wd, path)) + ("/" if path.endswith("/") else "")
    if path.endswith("/"):
        path = path + default_name
    return "%s:%s" % (host, path)


def qsub_main(args):
    cfg = CFG
    if args == ["--version"]:
        sys.stdout.write("pbs_version = %s\n" % PBS_VERSION)
        return 0
    o = SubmitOptions()
    errors = []
    try:
        opts, idx = getopt("qsub", args, QSUB_OPTSTRING)
    except Fail as f:
        sys.stderr.write(f.message + QSUB_USAGE)
        return 2
    apply_opts(opts, o, 3, errors)
    operands = args[idx:]
    is_exec = False
    exec_argv = None
    script = None
    if operands and operands[0] == "--":
        if len(operands) < 2:
            errors.append("")
        else:
            is_exec = True
            exec_argv = operands[1:]
    elif operands:
        if len(operands) != 1:
            errors.append("")
        else:
            script = operands[0]
    if errors:
        sys.stderr.write("".join(errors) + QSUB_USAGE)
        return 2
    interactive = bool(o.get("interactive"))
    if interactive:
        if not is_exec:
            raise unsupported("-I without -- command (an interactive login shell)")
        if o.has("J"):
            raise unsupported("-I with -J")
        # qsub.c interactive_port(), before anything is submitted
        if not (os.isatty(0) and os.isatty(1)):
            sys.stderr.write("qsub:\tstandard input and output must be a terminal for\n"
                             "\tinteractive job submission\n")
            return 1
    if o.get("Mail_Points") and "j" in o.get("Mail_Points") and not o.has("J"):
        sys.stderr.write("qsub: mail option 'j' can not be used without array job\n")
        return 1

    wd = workdir()
    script_text = None
    default_name = None
    if not is_exec:
        if script is None or script == "-" or script == "":
            script_text = sys.stdin.read()
            default_name = "STDIN"
        else:
            try:
                st = os.stat(script)
            except OSError as e:
                sys.stderr.write("qsub: script file:: %s\n" % os.strerror(e.errno))
                return 1
            import stat as _stat
            if not _stat.S_ISREG(st.st_mode):
                sys.stderr.write("qsub: script not a file\n")
                return 1
            try:
                with open(script, "r", errors="surrogateescape") as f:
                    script_text = f.read()
            except OSError as e:
                sys.stderr.write("qsub: opening script file:: %s\n" % os.strerror(e.errno))
                return 8
            default_name = os.path.basename(script)
        prefix = o.get("prefix")
        if prefix is None:
            prefix = os.environ.get("PBS_DPREFIX", "#PBS")
        if prefix:
            read_script_directives(script_text, prefix, o)
        if o.get("Mail_Points") and "j" in o.get("Mail_Points") and not o.has("J"):
            sys.stderr.write("qsub: mail option 'j' can not be used without array job\n")
            return 1
    else:
        default_name = "STDIN"
    name = o.get("Job_Name", default_name)

    # ---- environment (Variable_List) -------------------------------------------------
    e = os.environ
    basic = [("PBS_O_HOME", esc_commas(e.get("HOME", "/")))]
    for var in ("LANG", "LOGNAME", "PATH", "MAIL", "SHELL", "TZ"):
        if var in e:
            basic.append(("PBS_O_" + var, esc_commas(e[var])))
    basic.append(("PBS_O_INTERACTIVE_AUTH_METHOD", "resvport"))
    basic.append(("PBS_O_INTERACTIVE_ENCRYPT_METHOD", ""))
    basic.append(("PBS_O_WORKDIR", esc_commas(wd)))
    basic.append(("PBS_O_SYSTEM", os.uname().sysname))
    varlist = list(basic)
    if o.has("v"):
        varlist += expand_v_list(o.get("v"))
    if o.get("V"):
        for k, v in e.items():
            if k.startswith("PBS_O_"):
                continue
            varlist.append((k, copy_env_value(v, True)[0]))

    # ---- client-side (ECL) and server-side validation, in attribute order -------------
    resources = {}
    try:
        for key in o.attr_order:
            if key == "Resource_List":
                for rname, (rval, _lvl, _ord) in sorted(o.resources.items(), key=lambda kv: kv[1][2]):
                    if resource_type(rname) == "bool" and rval is None:
                        rval = ""
                    if rval is None:
                        raise Fail("qsub: illegal -l value\n" + QSUB_USAGE, 2)
                    resources[rname] = normalize_resource(rname, rval)
            elif key == "Job_Name":
                pass
            elif key == "Join_Path":
                if o.get(key) not in ("oe", "eo", "n"):
                    raise Fail("qsub: illegal -j value\n" + QSUB_USAGE, 2)
            elif key == "Keep_Files":
                k = o.get(key)
                if not (k == "n" or (k and re.match(r"^[oed]+$", k) and len(set(k)) == len(k)
                                     and ("d" not in k or len(k) > 1))):
                    raise Fail("qsub: illegal -k value\n" + QSUB_USAGE, 2)
            elif key == "Mail_Points":
                mp = o.get(key)
                if not (mp == "n" or (mp and re.match(r"^[abej]+$", mp))):
                    raise Fail("qsub: illegal -m value\n" + QSUB_USAGE, 2)
            elif key == "Priority":
                pv = o.get(key)
                if not re.match(r"^[+-]?\d+$", pv) or not -1024 <= int(pv) <= 1023:
                    raise Fail("qsub: illegal -p value\n" + QSUB_USAGE, 2)
            elif key == "J":
                m = re.match(r"^(\d+)-(\d+)(?::(\d+))?$", o.get("J"))
                if not m or int(m.group(1)) >= int(m.group(2)) or (m.group(3) and int(m.group(3)) < 1):
                    raise Fail("qsub: illegal -J value\n" + QSUB_USAGE, 2)
            elif key == "umask":
                if not re.match(r"^[0-7]{1,4}$", o.wattrs["umask"][0]):
                    raise Fail("qsub: illegal -W value\n" + QSUB_USAGE, 2)
            elif key == "block":
                if o.wattrs["block"][0].lower() not in ("true", "false"):
                    raise Fail("qsub: illegal -W value\n" + QSUB_USAGE, 2)
        if not valid_job_name(name):
            raise Fail("qsub: illegal -N value\n" + QSUB_USAGE, 2)
        if "select" in resources:
            for r in CHUNK_SUMMED:
                if r in resources:
                    raise unsupported("-l %s together with -l select" % r)
        depend = None
        if "depend" in o.wattrs:
            depend = parse_depend(o.wattrs["depend"][0])
    except Fail as f:
        sys.stderr.write(f.message)
        return f.rc & 0xFF

    # ---- destination queue ------------------------------------------------------------
    qdest = o.get("queue", "")
    qname, _, qserver = qdest.partition("@")
    if qserver and not server_matches(qserver) and qserver != CFG.host:
        sys.stderr.write("pbsemu: unsupported option -q %s (other server)\n" % qdest)
        return 2
    if not qname:
        qname = cfg.default_queue()

    # ---- derived resources --------------------------------------------------------------
    if "select" in resources:
        chunks = parse_select(resources["select"])
        sums = {}
        nodect = 0
        for count, res in chunks:
            nodect += count
            d = dict(res)
            if "ncpus" not in d:
                d["ncpus"] = "1"
            for r in CHUNK_SUMMED:
                if r in d:
                    if r in ("mem", "vmem"):
                        p = parse_size_value(d[r])
                        prev = sums.get(r)
                        sums[r] = size_add(prev, p, count)
                    else:
                        sums[r] = sums.get(r, 0) + count * int(d[r])
        for r, v in sums.items():
            resources[r] = fmt_size(*v) if r in ("mem", "vmem") else str(v)
        resources["nodect"] = str(nodect)
        resources.setdefault("place", "free")
    else:
        resources.setdefault("ncpus", "1")
        sel = "1:ncpus=%s" % resources["ncpus"]
        for r, (v, _l, _o) in sorted(o.resources.items(), key=lambda kv: kv[1][2]):
            if r in CHUNK_DEFAULT_EXTRA:
                sel += ":%s=%s" % (r, resources[r])
        resources["select"] = sel
        resources["nodect"] = "1"
        resources.setdefault("place", "pack")

    # ---- create the job -----------------------------------------------------------------
    now = int(time.time())
    with Lock():
        # dependencies must name known jobs
        if depend:
            for typ, ids in depend:
                for (dseq, dbr) in ids:
                    drec = load_rec(dseq)
                    if drec is None or find_member(drec, dbr) is None:
                        sys.stderr.write("qsub: Unknown Job Id %s\n" % canon_id(dseq, dbr))
                        return PBSE_UNKJOBID & 0xFF
        seq = next_seq()
        if qname not in cfg.queues():
            # the server rejects it after allocating the id (ids are not contiguous)
            sys.stderr.write("qsub: Unknown queue\n")
            return PBSE_UNKQUE & 0xFF
        is_array = o.has("J")
        jobid = canon_id(seq, "" if is_array else None)
        varlist_full = varlist + [("PBS_O_QUEUE", qname), ("PBS_O_HOST", CFG.host)]
        if is_array:
            oname = "%s.o%d.^array_index^" % (name, seq)
            ename = "%s.e%d.^array_index^" % (name, seq)
        else:
            oname = "%s.o%d" % (name, seq)
            ename = "%s.e%d" % (name, seq)
        out_path = resolve_path(o.get("Output_Path"), wd, oname) if o.has("Output_Path") else \
            "%s:%s/%s" % (CFG.host, wd.rstrip("/") if wd != "/" else "", oname)
        err_path = resolve_path(o.get("Error_Path"), wd, ename) if o.has("Error_Path") else \
            "%s:%s/%s" % (CFG.host, wd.rstrip("/") if wd != "/" else "", ename)
        hold = o.get("Hold_Types", "n")
        rec = {
            "seq": seq, "id": jobid, "kind": "array" if is_array else "job",
            "name": name, "owner": "%s@%s" % (cfg.user, CFG.host), "user": cfg.user,
            "queue": qname, "server": CFG.server, "host": CFG.host,
            "Account_Name": o.get("Account_Name"),
            "Checkpoint": o.get("Checkpoint", "u"),
            "Hold_Types": hold,
            "Join_Path": o.get("Join_Path", "n"),
            "Keep_Files": o.get("Keep_Files", "n"),
            "Mail_Points": o.get("Mail_Points", "a"),
            "Mail_Users": o.get("Mail_Users"),
            "Priority": str(int(o.get("Priority", "0"))),
            # interactive jobs are never rerunable (pbs-real/interactive-sighup-qstat)
            "Rerunable": "False" if o.get("Rerunable") == "n" or interactive else "True",
            "Shell_Path_List": o.get("Shell_Path_List"),
            "umask": str(int(o.wattrs["umask"][0])) if "umask" in o.wattrs else None,
            "umask_octal": o.wattrs["umask"][0] if "umask" in o.wattrs else None,
            "depend": depend, "project": o.get("project", "_pbs_project_default"),
            "Submit_arguments": list(args),
            "executable": exec_argv[0] if is_exec else None,
            "argument_list": "".join("<jsdl-hpcpa:Argument>%s</jsdl-hpcpa:Argument>" % xml_escape(a)
                                     for a in exec_argv[1:]) if is_exec and len(exec_argv) > 1 else None,
            "exec_argv": exec_argv,
            "resources": resources,
            "variable_list": varlist_full,
            "Output_Path": out_path, "Error_Path": err_path,
            "workdir": wd,
            "ctime": now, "qtime": now, "mtime": now,
            "etime": now if hold == "n" and not depend else None,
            "state": "H" if hold != "n" else "Q", "substate": 20 if hold != "n" else 10,
            "comment": None,
            "block": "block" in o.wattrs and o.wattrs["block"][0].lower() == "true",
            # qsub -I: this qsub runs the command on its own terminal once the runner starts the job
            "interactive": [os.getpid(), proc_starttime(os.getpid())] if interactive else None,
        }
        if depend:
            rec["dep_hold"] = True
            rec["state"] = "H"
            rec["substate"] = 22
            rec["Hold_Types"] = "s" if hold == "n" else hold + "s"
        if is_array:
            m = re.match(r"^(\d+)-(\d+)(?::(\d+))?$", o.get("J"))
            lo, hi, step = int(m.group(1)), int(m.group(2)), int(m.group(3) or 1)
            rec["array_indices_submitted"] = o.get("J")
            rec["subjobs"] = {}
            for i in range(lo, hi + 1, step):
                rec["subjobs"][str(i)] = new_subjob(rec, i)
        save_rec(rec)
        script_file = cfg.p("mom_priv", "jobs", "%d.script" % seq)
        if not is_exec:
            with open(script_file, "w", errors="surrogateescape") as f:
                f.write(script_text)
    sys.stdout.flush()
    sys.stderr.flush()
    spawn_runner(seq)
    if interactive:
        return interactive_session(seq, jobid)
    if not o.get("z"):
        sys.stdout.write(jobid + "\n")
        sys.stdout.flush()
    if rec["block"]:
        return block_wait(seq)
    return 0


def size_add(prev, p, count):
    """Sum of sizes (count * p added to prev), in the smallest unit involved."""
    if prev is None:
        return (p[0] * count, p[1], p[2])
    shift = min(SIZE_SHIFT[prev[1]], SIZE_SHIFT[p[1]])
    total = (size_bytes(prev) + size_bytes(p) * count) >> shift
    mult = [k for k, v in SIZE_SHIFT.items() if v == shift][0]
    return (total, mult, "b")


def new_subjob(parent, index):
    seq = parent["seq"]
    return {
        "seq": seq, "id": canon_id(seq, str(index)), "kind": "subjob", "index": index,
        "state": "Q", "substate": 10, "comment": None,
        "ctime": parent["ctime"], "qtime": parent["qtime"], "mtime": parent["mtime"],
        "etime": parent["etime"],
    }


def parse_depend(value):
    out = []
    for part in value.split(","):
        typ, _, rest = part.partition(":")
        if typ not in ("after", "afterok", "afternotok", "afterany"):
            raise unsupported("-W depend=%s" % value)
        ids = []
        for jid in rest.split(":"):
            p = parse_jobid(jid)
            if p is None or not rest:
                raise Fail("qsub: illegal -W value\n" + QSUB_USAGE, 2)
            seq, br, srv = p
            if not server_matches(srv):
                raise unsupported("-W depend=%s (other server)" % value)
            ids.append((seq, br))
        out.append((typ, ids))
    return out


def depend_string(depend):
    return ",".join("%s:%s" % (typ, ":".join("%s@%s" % (canon_id(s, b), CFG.server) for s, b in ids))
                    for typ, ids in depend)


def find_member(rec, bracket):
    """rec + bracket from a job id -> the job/parent/subjob dict, or None."""
    if bracket is None:
        return rec if rec["kind"] == "job" else None
    if rec["kind"] != "array":
        return None
    if bracket == "":
        return rec
    return rec["subjobs"].get(str(int(bracket))) if bracket.isdigit() else None


def block_wait(seq):
    while True:
        with Lock(shared=True):
            rec = load_rec(seq)
        if rec is None:
            return 0
        if rec["state"] == "F":
            es = rec.get("exit_status")
            return (es if es is not None else 0) & 0xFF
        time.sleep(0.2)


# --------------------------------------------------------------------------------------
# the runner: a detached process per job that plays scheduler + mom
# --------------------------------------------------------------------------------------

def spawn_runner(seq):
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)
        return
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        devnull = os.open(os.devnull, os.O_RDWR)
        logfd = os.open(CFG.p("log", "runner.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(devnull, 0)
        os.dup2(logfd, 1)
        os.dup2(logfd, 2)
        os.closerange(3, 1024)
        sys.stdout = os.fdopen(1, "w", buffering=1)
        sys.stderr = os.fdopen(2, "w", buffering=1)
        Runner(seq).run()
    except BaseException:
        import traceback
        try:
            traceback.print_exc()
        except Exception:
            pass
    finally:
        os._exit(0)


def proc_starttime(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
        return data.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def session_pids(sid):
    out = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return out
    for n in names:
        if not n.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % n) as f:
                data = f.read()
        except OSError:
            continue
        fields = data.rsplit(")", 1)[1].split()
        try:
            if int(fields[3]) == sid:
                out.append((int(n), fields))
        except (IndexError, ValueError):
            continue
    return out


def kill_session(sid, sig):
    try:
        os.killpg(sid, sig)
    except OSError:
        pass
    for pid, _ in session_pids(sid):
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def used_cpus():
    cpus = set()
    for n in os.listdir(CFG.p("running")):
        try:
            with open(CFG.p("running", n)) as f:
                cpus.update(json.load(f)["cpus"])
        except (OSError, ValueError, KeyError):
            continue
    return cpus


def marker_name(mid):
    return mid.replace("[", "_").replace("]", "_")


class Child:
    def __init__(self, pid, key, start, out_target, err_target, spool_out, spool_err):
        self.pid = pid
        self.key = key
        self.start = start
        self.out_target = out_target
        self.err_target = err_target
        self.spool_out = spool_out
        self.spool_err = spool_err
        self.next_sample = start + 1.0
        self.peak_mem = 0
        self.peak_vmem = 0
        self.cput = 0.0


class Runner:
    def __init__(self, seq):
        self.seq = seq
        self.children = {}   # pid -> Child
        self.clk = os.sysconf("SC_CLK_TCK")
        self.page_kb = os.sysconf("SC_PAGE_SIZE") // 1024

    def member_key(self, m):
        return m["id"]

    def run(self):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with Lock():
            rec = load_rec(self.seq)
            if rec is None:
                return
            rec["runner"] = [os.getpid(), proc_starttime(os.getpid())]
            save_rec(rec)
        with open(CFG.p("runners", "%d" % self.seq), "w") as f:
            f.write("%d %s\n" % (os.getpid(), proc_starttime(os.getpid())))
        try:
            while True:
                done = self.step()
                if done:
                    return
                time.sleep(0.1 if self.children else 0.2)
        finally:
            try:
                os.unlink(CFG.p("runners", "%d" % self.seq))
            except OSError:
                pass

    # one scheduling/monitoring pass; returns True when the runner may exit
    def step(self):
        now = time.time()
        finished = []
        with Lock():
            rec = load_rec(self.seq)
            if rec is None:
                for ch in self.children.values():
                    kill_session(ch.pid, signal.SIGKILL)
                return True
            changed = False
            by_id = {m["id"]: m for m in members(rec)}
            # reap
            for pid in list(self.children):
                try:
                    wpid, status, ru = os.wait4(pid, os.WNOHANG)
                except ChildProcessError:
                    wpid, status, ru = pid, 0, None
                if wpid == 0:
                    continue
                ch = self.children.pop(pid)
                m = by_id[ch.key]
                self.sample(ch, m, final=True)
                if ru is not None:
                    ch.cput = max(ch.cput, ru.ru_utime + ru.ru_stime)
                self.on_exit(rec, m, ch, status, now)
                finished.append((m["id"], ch))
                changed = True
            # monitor running ones
            for ch in self.children.values():
                m = by_id[ch.key]
                if now >= ch.next_sample:
                    self.sample(ch, m)
                    ch.next_sample = now + 1.0
                    changed = True
                if CFG.prerun and m.get("substate") == 41 and now - ch.start >= CFG.prerun:
                    m["substate"] = 42
                    m["mtime"] = int(now)
                    changed = True
                wl = rec["resources"].get("walltime")
                if wl is not None and not m.get("walltime_killed"):
                    limit = parse_time_value(wl)
                    used = int(now - ch.start)
                    if used > limit:
                        self.append_err(ch, "=>> PBS: job killed: walltime %d exceeded limit %d\n"
                                        % (used, limit))
                        m["walltime_killed"] = True
                        kill_session(ch.pid, signal.SIGKILL)
                        changed = True
                dreq = m.get("delete")
                if dreq:
                    if not dreq.get("sent"):
                        kill_session(ch.pid, signal.SIGKILL if dreq.get("force") else signal.SIGTERM)
                        dreq["sent"] = now
                        changed = True
                    elif not dreq.get("killed") and now - dreq["sent"] >= CFG.kill_delay:
                        kill_session(ch.pid, signal.SIGKILL)
                        dreq["killed"] = True
                        changed = True
            # dependencies
            if rec.get("dep_hold"):
                verdict = self.depend_verdict(rec)
                if verdict == "ok":
                    rec["dep_hold"] = False
                    rec["Hold_Types"] = rec["Hold_Types"].replace("s", "") or "n"
                    if rec["Hold_Types"] == "n":
                        for m in members(rec):
                            if m["state"] == "H":
                                m["state"], m["substate"] = "Q", 10
                                m["etime"] = m["mtime"] = int(now)
                        if rec["kind"] == "array":
                            rec["state"], rec["substate"] = "Q", 10
                            rec["etime"] = rec["mtime"] = int(now)
                    changed = True
                elif verdict == "never":
                    rec["dep_hold"] = False
                    for m in members(rec):
                        if not is_final(m):
                            finalize_deleted(m, now)
                    if rec["kind"] == "array":
                        finalize_deleted(rec, now)
                    changed = True
            # start what may start
            if not CFG.scheduling_off() and not rec.get("dep_hold") and rec["Hold_Types"] == "n":
                for m in members(rec):
                    if m["state"] != "Q" or m.get("delete"):
                        continue
                    if rec["kind"] == "array" and rec.get("delete"):
                        continue
                    if self.try_start(rec, m, now):
                        changed = True
                    else:
                        changed = True
                        break
            if changed:
                save_rec(rec)
        # deliver output files outside the lock
        for mid, ch in finished:
            deliver(rec, mid, ch)
        if finished:
            with Lock():
                rec = load_rec(self.seq)
                if rec is None:
                    return True
                for mid, ch in finished:
                    m = find_by_id(rec, mid)
                    t = int(time.time())
                    if m["state"] == "E":
                        sub, tail = m.pop("end")
                        m["substate"] = sub
                        m["comment"] = "%s %s" % (m["comment"], tail)
                        m["obittime"] = t
                        m["stageout_status"] = 1
                        m["history_timestamp"] = t
                        m["mtime"] = t
                        m["state"] = "F"
                        purge_if_no_history(m)
                    # else: qdel -W force already ended it while it was exiting (delete_member)
                    try:
                        os.unlink(CFG.p("running", marker_name(mid)))
                    except OSError:
                        pass
                maybe_finish_array(rec, time.time())
                save_rec(rec)
        if not self.children:
            with Lock(shared=True):
                rec = load_rec(self.seq)
            if rec is None:
                return True
            if all(is_final(m) for m in members(rec)) and (rec["kind"] != "array" or rec["state"] == "F"):
                return True
        return False

    def depend_verdict(self, rec):
        for typ, ids in rec["depend"]:
            for dseq, dbr in ids:
                drec = load_rec(dseq)
                d = find_member(drec, dbr) if drec else None
                if d is None:
                    return "never"
                done = d["state"] == "F"
                es = d.get("exit_status")
                if typ == "after":
                    if d.get("stime") is None and not done:
                        return "wait"
                    if done and d.get("stime") is None:
                        return "never"
                elif typ == "afterany":
                    if not done:
                        return "wait"
                elif typ == "afterok":
                    if not done:
                        return "wait"
                    if es != 0:
                        return "never"
                elif typ == "afternotok":
                    if not done:
                        return "wait"
                    if es == 0 or es is None:
                        return "never"
        return "ok"

    def try_start(self, rec, m, now):
        need = int(rec["resources"].get("ncpus", "1"))
        total = CFG.ncpus
        used = used_cpus()
        free = [c for c in range(total) if c not in used]
        if need > total:
            m["comment"] = "Can Never Run: Insufficient amount of resource: ncpus (R: %d A: %d T: %d)" % (
                need, total, total)
            return False
        if need > len(free):
            m["comment"] = "Not Running: Insufficient amount of resource: ncpus (R: %d A: %d T: %d)" % (
                need, len(free), total)
            return False
        chunk_list = parse_select(rec["resources"]["select"])
        hosts, vnodes, cpus = [], [], []
        pool = list(free)
        for count, res in chunk_list:
            d = dict(res)
            n = int(d.get("ncpus", "1"))
            for _ in range(count):
                take = pool[:n] if n > 0 else []
                pool = pool[n:]
                cpus.extend(take)
                idx = take[0] if take else (cpus[-1] if cpus else 0)
                hosts.append("%s/%d%s" % (CFG.host, idx, "*%d" % n if n > 1 else ""))
                parts = ["ncpus=%d" % n]
                for rname, rval in res:
                    if rname == "ncpus":
                        continue
                    if rname in ("mem", "vmem"):
                        parts.append("%s=%dkb" % (rname, size_bytes(parse_size_value(rval)) // 1024))
                    elif rname in CHUNK_SUMMED:
                        parts.append("%s=%s" % (rname, rval))
                vnodes.append("(%s:%s)" % (CFG.host, ":".join(parts)))
        with open(CFG.p("running", marker_name(m["id"])), "w") as f:
            json.dump({"cpus": cpus, "id": m["id"]}, f)
        m["exec_host"] = "+".join(hosts)
        m["exec_vnode"] = "+".join(vnodes)
        m["state"] = "R"
        m["substate"] = 41 if CFG.prerun else 42
        m["stime"] = int(now)
        m["mtime"] = int(now)
        m["run_count"] = m.get("run_count", 0) + 1
        m["comment"] = "Job run at %s on %s" % (fmt_comment_time(now), m["exec_vnode"])
        m["used"] = {"cput": 0, "mem": 0, "vmem": 0, "cpupercent": 0}
        if rec["kind"] == "array" and rec["state"] != "B":
            rec["state"] = "B"
            rec["substate"] = 153
            rec["stime"] = int(now)
            rec["mtime"] = int(now)
            rec["comment"] = "Job Array Began at %s" % fmt_comment_time(now)
        if rec.get("interactive"):
            pid, start = rec["interactive"]
            if proc_starttime(pid) == start:
                # the qsub that waits for it runs the command on its terminal (interactive_session)
                m["interactive_ready"] = True
            else:
                # the mom cannot reach a qsub that is gone: the job is thrown away (a best guess at what the
                # server records; the real job simply vanished)
                finalize_deleted(m, now)
                try:
                    os.unlink(CFG.p("running", marker_name(m["id"])))
                except OSError:
                    pass
            return True
        try:
            ch = self.launch(rec, m, now)
        except Exception:
            import traceback
            traceback.print_exc()
            # like a mom that cannot start the job: JOB_EXEC_FAIL1
            m.update({"state": "F", "substate": 93, "exit_status": -1, "obittime": int(now),
                      "history_timestamp": int(now), "mtime": int(now),
                      "comment": "Job run at %s on %s and failed" % (fmt_comment_time(now), m["exec_vnode"])})
            try:
                os.unlink(CFG.p("running", marker_name(m["id"])))
            except OSError:
                pass
            maybe_finish_array(rec, now)
            return True
        m["session_id"] = ch.pid
        self.children[ch.pid] = ch
        return True

    def stream_targets(self, rec, m):
        """(stdout path, stderr path, spool?) following -k / -j."""
        keep = rec["Keep_Files"]
        join = rec["Join_Path"]
        out_final = local_part(member_path(rec, m, "Output_Path"))
        err_final = local_part(member_path(rec, m, "Error_Path"))
        sfx = ".%d" % m["index"] if m["kind"] == "subjob" else ""
        home = CFG.job_home
        if "d" in keep:
            o = out_final if "o" in keep else None
            e = err_final if "e" in keep else None
            if o and os.path.isdir(o):
                o = os.path.join(o, "%s.o%d%s" % (rec["name"], rec["seq"], sfx))
            if e and os.path.isdir(e):
                e = os.path.join(e, "%s.e%d%s" % (rec["name"], rec["seq"], sfx))
        else:
            o = os.path.join(home, "%s.o%d%s" % (rec["name"], rec["seq"], sfx)) if "o" in keep else None
            e = os.path.join(home, "%s.e%d%s" % (rec["name"], rec["seq"], sfx)) if "e" in keep else None
        spool_o = spool_e = None
        if o is None:
            o = spool_o = CFG.p("spool", "%s.OU" % m["id"])
        if e is None:
            e = spool_e = CFG.p("spool", "%s.ER" % m["id"])
        if join == "oe":
            e = o
            spool_e = None
        elif join == "eo":
            o = e
            spool_o = None
        return o, e, spool_o, spool_e

    def launch(self, rec, m, now):
        um = int(rec["umask_octal"], 8) if rec.get("umask_octal") else 0o077
        mode = 0o666 & ~um
        out_t, err_t, spool_o, spool_e = self.stream_targets(rec, m)
        jobid = m["id"]
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND

        def open_target(path, spool_suffix):
            """-> (path, fd, spooled?); a direct-write target that cannot be opened is spooled."""
            try:
                return path, os.open(path, flags, mode), False
            except OSError:
                sp = CFG.p("spool", "%s.%s" % (jobid, spool_suffix))
                return sp, os.open(sp, flags, mode), True

        join = rec["Join_Path"]
        if join == "oe":
            out_t, fd_out, sp = open_target(out_t, "OU")
            spool_o = out_t if sp else spool_o
            err_t, fd_err = out_t, fd_out
        elif join == "eo":
            err_t, fd_err, sp = open_target(err_t, "ER")
            spool_e = err_t if sp else spool_e
            out_t, fd_out = err_t, fd_err
        else:
            out_t, fd_out, sp = open_target(out_t, "OU")
            spool_o = out_t if sp else spool_o
            err_t, fd_err, sp = open_target(err_t, "ER")
            spool_e = err_t if sp else spool_e
        env, shell = job_environment(rec, m)
        script_path = None
        if not rec.get("exec_argv"):
            script_path = CFG.p("mom_priv", "jobs", "%s.SC" % jobid)
            with open(CFG.p("mom_priv", "jobs", "%d.script" % rec["seq"]), errors="surrogateescape") as src, \
                    open(script_path, "w", errors="surrogateescape") as dst:
                dst.write(src.read())
            os.chmod(script_path, 0o700)
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.setsid()
                for sig in (signal.SIGPIPE, signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT,
                            signal.SIGXFSZ, signal.SIGCHLD, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU):
                    signal.signal(sig, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_SETMASK, [])
                os.umask(um)
                os.dup2(rfd, 0)
                os.dup2(fd_out, 1)
                os.dup2(fd_err, 2)
                os.closerange(3, 1024)
                try:
                    os.chdir(CFG.job_home)
                except OSError:
                    os.chdir("/")
                if rec.get("exec_argv"):
                    argv = rec["exec_argv"]
                    try:
                        os.execvpe(argv[0], argv, env)
                    except OSError as e:
                        os.write(2, ("pbsemu: %s: %s\n" % (argv[0], os.strerror(e.errno))).encode())
                        os._exit(127)
                base = os.path.basename(shell)
                if base == "bash":
                    argv = ["-bash"] if CFG.login_profile else ["-bash", "--noprofile", "--norc"]
                elif CFG.login_profile:
                    argv = ["-" + base]
                else:
                    argv = [base]
                os.execve(shell, argv, env)
            except BaseException:
                os._exit(127)
        os.close(rfd)
        if script_path:
            os.write(wfd, (script_path + "\n").encode())
        os.close(wfd)
        os.close(fd_out)
        if fd_err != fd_out:
            os.close(fd_err)
        return Child(pid, m["id"], now, out_t, err_t, spool_o, spool_e)

    def append_err(self, ch, text):
        try:
            with open(ch.err_target, "a") as f:
                f.write(text)
        except OSError:
            pass

    def sample(self, ch, m, final=False):
        rss = vsz = 0
        cpu = 0.0
        procs = session_pids(ch.pid) if not final else []
        for _pid, fields in procs:
            try:
                cpu += (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / self.clk
                vsz += int(fields[20]) // 1024
                rss += int(fields[21]) * self.page_kb
            except (IndexError, ValueError):
                continue
        if procs:
            ch.peak_mem = max(ch.peak_mem, rss)
            ch.peak_vmem = max(ch.peak_vmem, vsz)
            ch.cput = max(ch.cput, cpu)
        elapsed = max(time.time() - ch.start, 0.001)
        m["used"] = {
            "cput": int(ch.cput), "mem": ch.peak_mem, "vmem": ch.peak_vmem,
            "cpupercent": int(ch.cput * 100 / elapsed) if elapsed >= 1 else 0,
        }
        if not final and m.get("substate") == 42:
            m["mtime"] = int(time.time())

    def on_exit(self, rec, m, ch, status, now):
        if os.WIFSIGNALED(status):
            es = 256 + os.WTERMSIG(status)
        else:
            es = os.WEXITSTATUS(status)
        # like the mom: whatever is left of the session goes when the top process ends
        kill_session(ch.pid, signal.SIGKILL)
        m["used"]["walltime"] = int(now - ch.start)
        if m.get("walltime_killed"):
            es = -29
            sub = 93
            tail = "and exceeded resource walltime"
        elif m.get("delete"):
            sub = 91
            tail = "and terminated by %s" % m["delete"].get("by", rec["owner"])
        else:
            sub = 92 if es == 0 else 93
            tail = "and finished" if es == 0 else "and failed"
        m["exit_status"] = es
        # E, substate 51 (stageout) while the output is delivered: Exit_status is set, the comment has no
        # end yet, no obittime/Stageout_status/history_timestamp (pbs-real/qstat-f-exiting)
        m["state"] = "E"
        m["substate"] = 51
        m["end"] = [sub, tail]
        m["mtime"] = int(now)
        m["comment"] = "Job run at %s on %s" % (fmt_comment_time(m["stime"]), m["exec_vnode"])
        m["session_kept"] = (now - ch.start) >= CFG.session_id_after
        tmpdir = os.path.join(CFG.tmpdir_base, "pbs.%s" % m["id"])
        rm_tree(tmpdir)
        for p in (CFG.p("aux", m["id"]), CFG.p("mom_priv", "jobs", "%s.SC" % m["id"])):
            try:
                os.unlink(p)
            except OSError:
                pass


def job_environment(rec, m):
    """The job's environment as the mom sets it (and its TMPDIR and node file, created here), and its shell."""
    jobid = m["id"]
    tmpdir = os.path.join(CFG.tmpdir_base, "pbs.%s" % jobid)
    os.makedirs(tmpdir, exist_ok=True)
    nodefile = CFG.p("aux", jobid)
    res = rec["resources"]
    chunks = parse_select(res["select"])
    lines = []
    first_ncpus = None
    first_omp = None
    for count, rr in chunks:
        d = dict(rr)
        n = int(d.get("ncpus", "1"))
        if first_ncpus is None:
            first_ncpus = n
            first_omp = d.get("ompthreads")
        mp = int(d.get("mpiprocs", "1" if n > 0 else "0"))
        for _ in range(count):
            lines.extend([CFG.host] * mp)
    with open(nodefile, "w") as f:
        f.write("".join(l + "\n" for l in lines))
    env = {}
    for n, v in rec["variable_list"]:
        env[n] = unescape_env(v)
    shell = (rec.get("Shell_Path_List") or "").split(",")[0].split("@")[0] or CFG.login_shell
    env.update({
        "HOME": CFG.job_home, "LOGNAME": CFG.user, "USER": CFG.user, "SHELL": shell,
        "PATH": CFG.job_path,
        "PBS_ENVIRONMENT": "PBS_BATCH", "ENVIRONMENT": "BATCH",
        "PBS_JOBCOOKIE": secrets.token_hex(16).upper(),
        "PBS_JOBDIR": CFG.job_home, "PBS_JOBID": jobid, "PBS_JOBNAME": rec["name"],
        "PBS_MOMPORT": "15003", "PBS_NODEFILE": nodefile, "PBS_NODENUM": "0",
        "PBS_QUEUE": rec["queue"], "PBS_TASKNUM": "1", "TMPDIR": tmpdir,
        "NCPUS": str(first_ncpus if first_ncpus is not None else 1),
        "OMP_NUM_THREADS": str(first_omp or (first_ncpus if first_ncpus is not None else 1)),
    })
    if m["kind"] == "subjob":
        env["PBS_ARRAY_INDEX"] = str(m["index"])
        env["PBS_ARRAY_ID"] = rec["id"]
    if rec.get("interactive"):
        env["PBS_ENVIRONMENT"] = "PBS_INTERACTIVE"
    return env, shell


def rm_tree(path):
    import shutil
    shutil.rmtree(path, ignore_errors=True)


def find_by_id(rec, mid):
    for m in members(rec):
        if m["id"] == mid:
            return m
    return rec if rec["id"] == mid else None


def local_part(path_attr):
    host, _, path = path_attr.partition(":")
    return path


def member_path(rec, m, attr):
    p = rec[attr]
    if m["kind"] == "subjob":
        p = p.replace("^array_index^", str(m["index"]))
    return p


def deliver(rec, mid, ch):
    """Copy spooled stdout/stderr to their destinations (mode from the job umask)."""
    m = find_by_id(rec, mid)
    um = int(rec["umask_octal"], 8) if rec.get("umask_octal") else 0o077
    mode = 0o666 & ~um
    sfx = ".%d" % m["index"] if m["kind"] == "subjob" else ""
    pairs = []
    if ch.spool_out:
        pairs.append((ch.spool_out, local_part(member_path(rec, m, "Output_Path")),
                      "%s.o%d%s" % (rec["name"], rec["seq"], sfx)))
    if ch.spool_err:
        pairs.append((ch.spool_err, local_part(member_path(rec, m, "Error_Path")),
                      "%s.e%d%s" % (rec["name"], rec["seq"], sfx)))
    for src, dst, defname in pairs:
        if os.path.isdir(dst):
            dst = os.path.join(dst, defname)
        try:
            with open(src, "rb") as f:
                data = f.read()
        except OSError:
            continue
        try:
            fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        except OSError:
            try:
                with open(CFG.p("undelivered", os.path.basename(src)), "wb") as f:
                    f.write(data)
            except OSError:
                pass
        try:
            os.unlink(src)
        except OSError:
            pass


def finalize_deleted(m, now):
    """A job/subjob deleted before it ran: F, substate 91, no Exit_status, no files."""
    m["state"] = "F"
    m["substate"] = 91
    m["mtime"] = int(now)
    m["history_timestamp"] = int(now)
    m["deleted"] = True
    purge_if_no_history(m)


def purge_if_no_history(m):
    """With history off the server forgets a job as it finishes (it stays forgotten if history comes back)."""
    if CFG.history_off():
        m["purged"] = True


def gone(rec, m):
    """A finished job the server no longer knows: purged, or history is off now."""
    if display_state(rec, m) != "F":
        return False
    return CFG.history_off() or bool(m.get("purged") or rec.get("purged"))


def maybe_finish_array(rec, now):
    if rec["kind"] != "array" or rec["state"] == "F":
        return
    subs = members(rec)
    if not all(s["state"] == "F" for s in subs):
        return
    began = rec.get("stime") is not None
    ran = [s for s in subs if s.get("exit_status") is not None and not s.get("delete")]
    rec["state"] = "F"
    rec["mtime"] = int(now)
    rec["history_timestamp"] = int(now)
    if began:
        rec["obittime"] = int(now)
        rec["stageout_status"] = 1
        rec["comment"] = "Job Array Began at %s and %s" % (
            fmt_comment_time(rec["stime"]), "terminated" if rec.get("delete") else "finished")
    purge_if_no_history(rec)
    if rec.get("delete") or (not ran and all(s.get("deleted") for s in subs)):
        rec["substate"] = 91
        if ran:
            rec["exit_status"] = array_exit(ran)
    else:
        rec["exit_status"] = array_exit(ran)
        rec["substate"] = 92 if rec["exit_status"] == 0 else 93


def array_exit(ran):
    codes = [s["exit_status"] for s in ran]
    if any(c < 0 for c in codes):
        return 2
    if any(c != 0 for c in codes):
        return 1
    return 0


# --------------------------------------------------------------------------------------
# attribute lists (what the server would send for a stat request)
# --------------------------------------------------------------------------------------

def display_state(rec, m):
    """State letter as qstat shows it (subjobs finished while the parent lives are X)."""
    if m["kind"] == "subjob" and m["state"] == "F" and rec["state"] != "F":
        return "X"
    return m["state"]


def attr_list(rec, m, now):
    """Ordered (name, resource, value) triples, in the order of the server's job attributes."""
    A = []

    def add(name, value, res=None):
        if value is not None:
            A.append((name, res, str(value)))

    kind = m["kind"] if m is not rec else rec["kind"]
    is_parent = kind == "array"
    is_sub = kind == "subjob"
    ran = m.get("stime") is not None and not is_parent
    prerun = m.get("state") == "R" and m.get("substate") == 41
    add("Job_Name", rec["name"])
    add("Job_Owner", rec["owner"])
    if ran and not prerun and m.get("used") is not None:
        u = m["used"]
        wall = u.get("walltime")
        if wall is None:
            wall = int(now - m["stime"])
        add("resources_used", u.get("cpupercent", 0), "cpupercent")
        add("resources_used", fmt_duration(u.get("cput", 0)), "cput")
        add("resources_used", "%dkb" % u.get("mem", 0), "mem")
        add("resources_used", rec["resources"].get("ncpus", "1"), "ncpus")
        add("resources_used", "%dkb" % u.get("vmem", 0), "vmem")
        add("resources_used", fmt_duration(wall), "walltime")
    add("job_state", display_state(rec, m))
    add("queue", rec["queue"])
    add("server", rec["server"])
    add("Account_Name", rec.get("Account_Name"))
    if not is_sub:
        add("Checkpoint", rec["Checkpoint"])
    add("ctime", fmt_ctime(m["ctime"]))
    if rec.get("depend") and not is_sub:
        add("depend", depend_string(rec["depend"]))
    add("Error_Path", member_path(rec, m, "Error_Path") if is_sub else rec["Error_Path"])
    if ran:
        add("exec_host", m.get("exec_host"))
        add("exec_vnode", m.get("exec_vnode"))
    if not is_sub:
        add("Hold_Types", rec["Hold_Types"])
    if rec.get("interactive"):
        add("interactive", "True")
    add("Join_Path", rec["Join_Path"])
    add("Keep_Files", rec["Keep_Files"])
    add("Mail_Points", rec["Mail_Points"])
    add("Mail_Users", rec.get("Mail_Users"))
    add("mtime", fmt_ctime(m["mtime"]))
    add("Output_Path", member_path(rec, m, "Output_Path") if is_sub else rec["Output_Path"])
    add("Priority", rec["Priority"])
    add("qtime", fmt_ctime(m["qtime"]))
    add("Rerunable", rec["Rerunable"])
    for r in sorted(rec["resources"]):
        add("Resource_List", rec["resources"][r], r)
    if m.get("stime") is not None:
        add("stime", fmt_ctime(m["stime"]))
    if m.get("obittime") is not None:
        add("obittime", fmt_ctime(m["obittime"]))
    if ran and not prerun and m.get("session_id") is not None:
        # an exiting job's session is over: E shows it only when F will (pbs-real/qstat-f-exiting)
        if m["state"] == "R" or m.get("session_kept"):
            add("session_id", m["session_id"])
    add("Shell_Path_List", rec.get("Shell_Path_List"))
    if ran and not prerun:
        add("jobdir", CFG.job_home)
    add("substate", m["substate"])
    add("Variable_List", varlist_string(rec["variable_list"]))
    add("comment", m.get("comment"))
    if m.get("etime") is not None:
        add("etime", fmt_ctime(m["etime"]))
    add("umask", rec.get("umask"))
    if ran:
        add("run_count", m.get("run_count"))
    if m["state"] in ("F",) or (is_sub and m["state"] == "F"):
        if m.get("stageout_status"):
            add("Stageout_status", m["stageout_status"])
    if m["state"] in ("E", "F") and m.get("exit_status") is not None:
        add("Exit_status", m["exit_status"])
    if not is_sub:
        add("Submit_arguments", " ".join(rec["Submit_arguments"]))
    # subjobs of a `qsub -J ... -- prog args` carry them too (pbs-real/qstat-f-array-subjob-exiting)
    if rec.get("executable"):
        add("executable", "<jsdl-hpcpa:Executable>%s</jsdl-hpcpa:Executable>" % rec["executable"])
    add("argument_list", rec.get("argument_list"))
    if is_parent:
        add("array", "True")
        add("array_state_count", array_state_count(rec))
        add("array_indices_submitted", rec["array_indices_submitted"])
        remaining = [s["index"] for s in members(rec) if s["state"] in ("Q", "H")]
        add("array_indices_remaining", range_string(remaining) if rec["state"] != "F" else "-")
    if is_sub:
        add("array_id", rec["id"])
        add("array_index", m["index"])
    if m["state"] == "F" and m.get("history_timestamp") is not None:
        add("history_timestamp", m["history_timestamp"])
    add("project", rec["project"])
    add("Submit_Host", rec["host"])
    return A


def array_state_count(rec):
    if rec["state"] == "F":
        return "Queued:0 Running:0 Exiting:0 Expired:0"
    q = r = e = x = 0
    for s in members(rec):
        if s["state"] in ("Q", "H"):
            q += 1
        elif s["state"] == "R":
            r += 1
        elif s["state"] == "E":
            e += 1
        else:
            x += 1
    return "Queued:%d Running:%d Exiting:%d Expired:%d" % (q, r, e, x)


# --------------------------------------------------------------------------------------
# output formats
# --------------------------------------------------------------------------------------

def prt_attr_text(name, resource, value):
    """qstat.c prt_attr(), default format: wrap at 78 columns, TAB continuation."""
    out = ["    ", name]
    start = len(name) + 7
    if resource:
        start += len(resource) + 1
        out.append("." + resource)
    out.append(" = ")
    toks = [t for t in value.split(",") if t != ""]    # strtok semantics
    first = True
    for ti, tok in enumerate(toks):
        if len(tok) + start < 78:
            out.append(tok)
            start += len(tok)
        else:
            if not first:
                out.append("\n\t")
                start = 9
            for ch in tok:
                out.append(ch)
                start += 1
                if start > 78:
                    start = 8
                    out.append("\n\t")
        if ti + 1 < len(toks):
            first = False
            out.append(",")
    return "".join(out)


def render_text_full(jid, attrs):
    lines = ["Job Id: %s\n" % jid]
    for name, res, val in attrs:
        lines.append(prt_attr_text(name, res, val) + "\n")
    lines.append("\n")
    return "".join(lines)


def render_dsv(jid, attrs, delim):
    parts = ["Job Id: %s" % jid]
    for name, res, val in attrs:
        v = val.replace(delim, "\\" + delim) if delim else val
        v = v.replace("\n", "\\n").replace("\f", "\\f")
        parts.append("%s%s=%s" % (name, "." + res if res else "", v))
    return delim.join(parts) + "\n"


_NUM_RE = re.compile(r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)")


def cjson_parse_value(s):
    """cJSON_ParseWithOpts(value, NULL, require_null_terminated=1); None when it fails."""
    i = 0
    while i < len(s) and ord(s[i]) <= 32:
        i += 1
    rest = s[i:]
    if not rest:
        return None
    val = None
    consumed = 0
    for lit, v in (("null", ("null",)), ("true", True), ("false", False)):
        if rest.startswith(lit):
            val, consumed = v, len(lit)
            break
    else:
        c = rest[0]
        if c == "-" or c.isdigit():
            j = 0
            while j < len(rest) and rest[j] in "0123456789+-.eE":
                j += 1
            m = _NUM_RE.match(rest[:j])
            if not m or m.end() == 0:
                return None
            val, consumed = float(m.group(0)), m.end()
        elif c in "\"[{":
            dec = json.JSONDecoder(parse_constant=lambda x: (_ for _ in ()).throw(ValueError(x)))
            try:
                val, consumed = dec.raw_decode(rest)
            except ValueError:
                return None
        else:
            return None
    tail = rest[consumed:]
    if tail.strip(" \t\n\r\x0b\x0c") != "" and any(ord(ch) > 32 for ch in tail):
        return None
    return ("ok", val)


def json_value(s):
    p = cjson_parse_value(s)
    if p is None:
        return s
    return p[1]


def cjson_number(d):
    if isinstance(d, bool):
        return "true" if d else "false"
    if isinstance(d, int):
        d = float(d)
    if d != d or d in (float("inf"), float("-inf")):
        return "null"
    vi = int(d) if -2147483648 <= d <= 2147483647 else (2147483647 if d > 0 else -2147483648)
    if d == float(vi):
        return "%d" % vi
    out = "%1.15g" % d
    if float(out) != d:
        out = "%1.17g" % d
    return out


def cjson_string(s):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif o < 32:
            out.append("\\u%04x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def cjson_print(v, depth=0):
    """cJSON_Print(): formatted output with TAB indentation."""
    if isinstance(v, dict):
        out = ["{\n"]
        items = list(v.items())
        for i, (k, x) in enumerate(items):
            out.append("\t" * (depth + 1))
            out.append(cjson_string(k))
            out.append(":\t")
            out.append(cjson_print(x, depth + 1))
            if i + 1 < len(items):
                out.append(",")
            out.append("\n")
        out.append("\t" * depth + "}")
        return "".join(out)
    if isinstance(v, list):
        return "[" + ", ".join(cjson_print(x, depth + 1) for x in v) + "]"
    if isinstance(v, tuple):   # the null literal
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return cjson_number(v)
    if v is None:
        return "null"
    return cjson_string(v)


def json_job_object(attrs):
    obj = {}
    for name, res, val in attrs:
        if name == "Variable_List":
            vl = {}
            i = 0
            n = len(val)
            while i < n:
                key = []
                vv = None
                while i < n and val[i] != ",":
                    c = val[i]
                    if c == "\\" and i + 1 < n and val[i + 1] == ",":
                        i += 1
                        c = ","
                    if vv is None and c == "=":
                        vv = []
                        i += 1
                        continue
                    (vv if vv is not None else key).append(c)
                    i += 1
                vl["".join(key)] = json_value("".join(vv)) if vv is not None else ""
                if i < n:
                    i += 1
            obj[name] = vl
        elif res:
            sub = obj.get(name)
            if not isinstance(sub, dict):
                sub = obj[name] = {}
            sub[res] = json_value(val)
        else:
            obj[name] = json_value(val)
    return obj


def short_line(jid, attrs, wide):
    a = {}
    for name, res, val in attrs:
        a[(name, res)] = val
    jid = ".".join(jid.split(".")[:2])
    name = a.get(("Job_Name", None), "")
    owner = a.get(("Job_Owner", None), "").split("@")[0]
    timeu = a.get(("resources_used", "cput"), "0")
    state = a.get(("job_state", None), "")
    queue = a.get(("queue", None), "").split("@")[0]
    if wide:
        idw, nmw, usw, qw = 30, 15, 15, 15
    else:
        idw, nmw, usw, qw = 17, 16, 16, 16
    if len(jid) > idw:
        jid = jid[:idw - 1] + "*"
    if len(name) >= nmw:
        name = name[:nmw - 1] + "*"
    if len(owner) > usw:
        owner = owner[:usw - 1] + "*"
    if len(timeu) > 8:
        timeu = timeu[:7] + "*"
    if len(queue) > qw:
        queue = queue[:qw - 1] + "*"
    return "%-*s %-*s %-*s  %8s %1s %-*s\n" % (idw, jid, nmw, name, usw, owner, timeu, state[:1], qw, queue)


def short_header(wide):
    if wide:
        return ("Job id                         Name            User             Time Use S Queue\n"
                "-----------------------------  --------------- ---------------  -------- - ---------------\n")
    return ("Job id            Name             User              Time Use S Queue\n"
            "----------------  ---------------- ----------------  -------- - -----\n")


# --------------------------------------------------------------------------------------
# qstat
# --------------------------------------------------------------------------------------

def qstat_main(args):
    if args == ["--version"]:
        sys.stdout.write("pbs_version = %s\n" % PBS_VERSION)
        return 0
    conflict = "qstat: conflicting options.\n"
    errflg = 0
    err_text = []
    f_opt = x_opt = t_opt = wide = J_opt = False
    fmt = "default"
    dsv_delim = "|"
    try:
        opts, idx = getopt_permuting("qstat", args, QSTAT_OPTSTRING)
    except Fail as f:
        sys.stderr.write(f.message + QSTAT_USAGE)
        return 2
    operands = idx
    for c, a in opts:
        if c in "ainpqrsuGHMQBWT1E":
            sys.stderr.write(unsupported("-" + c).message)
            return 2
        if c == "f":
            f_opt = True
        elif c == "x":
            x_opt = True
        elif c == "t":
            t_opt = True
        elif c == "w":
            wide = True
        elif c == "J":
            J_opt = True
        elif c == "D":
            if fmt == "dsv":
                dsv_delim = a
            else:
                errflg += 1
        elif c == "F":
            low = a.lower()
            if low in ("default", "dsv", "json"):
                fmt = low
            else:
                errflg += 1
    if not (fmt == "default" or f_opt):
        err_text.append(conflict)
        errflg += 1
    if wide and fmt != "default":
        err_text.append("qstat: option w cannot be used with -F\n")
        errflg += 1
    if errflg:
        sys.stderr.write("".join(err_text) + QSTAT_USAGE)
        return 2

    now = time.time()
    calls = []       # list of (ok, [(jid, attrs)]) in operand order
    any_failed = 0
    errs = []
    if x_opt and CFG.history_off():
        # the client asks the server first: nothing on stdout (JSON: the header only), rc 0
        for op in operands or [""]:
            errs.append("qstat: PBS is not configured to maintain job history %s\n" % op)
        operands = None
    with Lock(shared=True):
        if operands == []:
            calls.append(stat_all(x_opt, t_opt, J_opt, None, now))
        for op in operands or []:
            if op[:1].isdigit() or (op[:1] == " " and op.strip()[:1].isdigit()):
                p = parse_jobid(op)
                if p is None:
                    errs.append("qstat: illegally formed job identifier: %s\n" % op)
                    any_failed = 1
                    calls.append(None)
                    continue
                seq, br, srv = p
                cid = canon_id(seq, br, srv if not server_matches(srv) else None)
                rec = load_rec(seq) if server_matches(srv) else None
                m = find_member(rec, br) if rec else None
                if m is None or gone(rec, m):
                    errs.append("qstat: Unknown Job Id %s\n" % cid)
                    any_failed = PBSE_UNKJOBID
                    calls.append(None)
                    continue
                if display_state(rec, m) == "F" and not x_opt:
                    errs.append("qstat: %s Job has finished, use -x or -H to obtain historical job "
                                "information\n" % cid)
                    any_failed = PBSE_HISTJOBID
                    calls.append(None)
                    continue
                out = [(m["id"], attr_list(rec, m, now))]
                if m is rec and rec["kind"] == "array" and t_opt:
                    for s in members(rec):
                        if display_state(rec, s) == "F" and not x_opt:
                            continue
                        out.append((s["id"], attr_list(rec, s, now)))
                calls.append(out)
            else:
                qname, _, srv = op.partition("@")
                if srv and not server_matches(srv) and srv != CFG.host:
                    sys.stderr.write(unsupported("destination %s (other server)" % op).message)
                    return 2
                if qname and qname not in CFG.queues():
                    errs.append("qstat: Unknown queue %s\n" % qname)
                    any_failed = PBSE_UNKQUE
                    calls.append(None)
                    continue
                calls.append(stat_all(x_opt, t_opt, J_opt, qname or None, now))
    # render
    out = []
    if fmt == "json":
        root = {"timestamp": int(now), "pbs_version": PBS_VERSION, "pbs_server": CFG.server}
        jobs = None
        for res in calls:
            if not res:
                continue
            if jobs is None:
                jobs = root["Jobs"] = {}
                for jid, attrs in res:
                    jobs[jid] = json_job_object(attrs)
            elif CFG.fix_json_batch:
                for jid, attrs in res:
                    jobs[jid] = json_job_object(attrs)
            # else: openpbs#2672 - later operands are dropped
        out.append(cjson_print(root) + "\n")
    else:
        for ci, res in enumerate(calls):
            if not res:
                continue
            if not f_opt and ci == 0:
                out.append(short_header(wide))
            for jid, attrs in res:
                if not f_opt:
                    out.append(short_line(jid, attrs, wide))
                elif fmt == "dsv":
                    out.append(render_dsv(jid, attrs, dsv_delim))
                else:
                    out.append(render_text_full(jid, attrs))
    sys.stdout.write("".join(out))
    sys.stdout.flush()
    sys.stderr.write("".join(errs))
    return any_failed & 0xFF


def getopt_permuting(prog, args, optstring):
    """glibc getopt with permutation (qstat accepts options after operands)."""
    opts = []
    operands = []
    rest = list(args)
    while rest:
        o, i = getopt(prog, rest, optstring)
        opts.extend(o)
        rest = rest[i:]
        if not rest:
            break
        if rest[0] == "--":
            operands.extend(rest[1:])
            break
        operands.append(rest[0])
        rest = rest[1:]
    return opts, operands


def stat_all(x_opt, t_opt, J_opt, queue, now):
    out = []
    for seq in all_seqs():
        rec = load_rec(seq)
        if rec is None:
            continue
        if queue and rec["queue"] != queue:
            continue
        if J_opt and rec["kind"] != "array":
            continue
        if rec["state"] == "F" and (not x_opt or gone(rec, rec)):
            continue
        out.append((rec["id"], attr_list(rec, rec, now)))
        if rec["kind"] == "array" and t_opt:
            for s in members(rec):
                if display_state(rec, s) == "F" and not x_opt:
                    continue
                out.append((s["id"], attr_list(rec, s, now)))
    return out


# --------------------------------------------------------------------------------------
# qdel
# --------------------------------------------------------------------------------------

def qdel_main(args):
    if args == ["--version"]:
        sys.stdout.write("pbs_version = %s\n" % PBS_VERSION)
        return 0
    force = deletehist = False
    errflg = 0
    try:
        opts, idx = getopt("qdel", args, QDEL_OPTSTRING)
    except Fail as f:
        sys.stderr.write(f.message + QDEL_USAGE)
        return 2
    for c, a in opts:
        if c == "W":
            if a == "":
                sys.stderr.write("qdel: illegal -W value\n")
                errflg += 1
            elif a == "force":
                force = True
            elif re.match(r"^suppress_email=\d*$", a) or a.isdigit():
                pass
            else:
                sys.stderr.write("qdel: illegal -W value\n")
                errflg += 1
        elif c == "x":
            deletehist = True
    ids = args[idx:]
    if ids and ids[0] == "--":
        ids = ids[1:]
    if errflg or not ids:
        sys.stderr.write(QDEL_USAGE)
        return 2
    any_failed = 0
    valid = []
    for jid in ids:
        p = parse_jobid(jid)
        if p is None:
            sys.stderr.write("qdel: illegally formed job identifier: %s\n" % jid)
            any_failed = 1
            continue
        valid.append(p)
    if not valid:
        return 1
    local_failed = 0
    now = time.time()
    with Lock():
        for seq, br, srv in valid:
            cid = canon_id(seq, br, srv if not server_matches(srv) else None)
            rec = load_rec(seq) if server_matches(srv) else None
            m = find_member(rec, br) if rec else None
            if m is None or gone(rec, m):
                sys.stderr.write("qdel: Unknown Job Id %s\n" % cid)
                local_failed = PBSE_UNKJOBID
                continue
            if m["state"] == "E" and not force:
                # the output is being delivered (pbs-real/qdel-exiting, qdel-array-subjob-exiting)
                sys.stderr.write("qdel: Request invalid for state of job %s\n" % cid)
                local_failed = PBSE_BADSTATE
                continue
            if m is rec and rec["kind"] == "array":
                if rec["state"] == "F":
                    if deletehist:
                        os.unlink(rec_path(seq))
                        continue
                    sys.stderr.write("qdel: Job has finished %s\n" % cid)
                    local_failed = PBSE_HISTJOBID
                    continue
                rec["delete"] = {"time": now, "force": force, "by": "%s@%s" % (CFG.user, CFG.host)}
                for s in members(rec):
                    delete_member(rec, s, now, force)
                maybe_finish_array(rec, now)
                save_rec(rec)
                continue
            if m["state"] == "F":
                if deletehist and m is rec:
                    os.unlink(rec_path(seq))
                    continue
                if deletehist:
                    continue
                sys.stderr.write("qdel: Job has finished %s\n" % cid)
                local_failed = PBSE_HISTJOBID
                continue
            delete_member(rec, m, now, force)
            maybe_finish_array(rec, now)
            save_rec(rec)
    if local_failed:
        any_failed = local_failed
    return any_failed & 0xFF


def delete_member(rec, m, now, force):
    if m["state"] in ("Q", "H", "W"):
        finalize_deleted(m, now)
    elif m["state"] == "E":
        # qdel of an array parent leaves exiting subjobs alone; qdel -W force ends an exiting job at once
        # (F 91, Exit_status kept, no obittime/Stageout_status; pbs-real/qstat-xf-exiting-after-force).
        # The delivery still happens.
        if force and m.get("end"):
            m.pop("end")
            m["state"], m["substate"] = "F", 91
            m["comment"] = "%s and terminated" % m["comment"]
            m["mtime"] = m["history_timestamp"] = int(now)
            purge_if_no_history(m)
    elif m["state"] == "R":
        if m.get("delete"):
            if force and not m["delete"].get("force"):
                m["delete"]["force"] = True
                kill_session(m["session_id"], signal.SIGKILL)
            return
        m["delete"] = {"time": now, "force": force, "by": "%s@%s" % (CFG.user, CFG.host), "sent": now}
        if m.get("session_id"):
            kill_session(m["session_id"], signal.SIGKILL if force else signal.SIGTERM)


# --------------------------------------------------------------------------------------
# qsub -I: the waiting qsub, its question on SIGINT/SIGTERM, and the command on its terminal
# (pbs-real/interactive-*.tty; OpenPBS src/cmds/qsub_sup.c interactive(), catchint(), bailout())
# --------------------------------------------------------------------------------------

def interactive_getchar(timeout):
    """One byte of stdin: '' at end of input, None after `timeout` seconds (qsub's alarm(60))."""
    ready, _, _ = select.select([0], [], [], timeout)
    if not ready:
        return None
    try:
        data = os.read(0, 1)
    except OSError:
        return ""
    return data.decode("latin-1")


def interactive_bailout(seq, jobid):
    """qsub's bailout(): say so, delete the job as qdel does, exit 0."""
    sys.stdout.write("Job %s is being deleted\n" % jobid)
    sys.stdout.flush()
    with Lock():
        rec = load_rec(seq)
        m = find_by_id(rec, jobid) if rec else None
        if m is not None and not is_final(m):
            delete_member(rec, m, time.time(), False)
            save_rec(rec)
    return 0


def interactive_ask():
    """catchint(): True to delete the job, False to go on waiting; None when nobody answered in 60 s."""
    sys.stdout.write("Do you wish to terminate the job and exit (y|[n])? ")
    sys.stdout.flush()
    limit = float(os.environ.get("PBS_EMU_INTERACTIVE_TIMEOUT") or "60")
    while True:
        c = interactive_getchar(limit)
        if c is None:
            return None
        if c in ("n", "N", "\n"):
            break
        if c in ("y", "Y", ""):
            return True
        sys.stdout.write("yes or no please\n")
        sys.stdout.flush()
        while c not in ("\n", "", None):
            c = interactive_getchar(limit)
    while c not in ("\n", "", None):
        c = interactive_getchar(limit)
    return False


def interactive_session(seq, jobid):
    sys.stdout.write("qsub: waiting for job %s to start\n" % jobid)
    sys.stdout.flush()
    interrupted = []
    signal.signal(signal.SIGINT, lambda *_: interrupted.append(1))
    signal.signal(signal.SIGTERM, lambda *_: interrupted.append(1))

    def no_suspend(*_):
        sys.stdout.write("Sorry, you cannot suspend qsub until the job is started\n")
        sys.stdout.flush()
    signal.signal(signal.SIGTSTP, no_suspend)
    # qsub asks the server every 30 s whether its job still exists
    check_every = float(os.environ.get("PBS_EMU_INTERACTIVE_CHECK") or "30")
    last_check = time.time()
    while True:
        if interrupted:
            del interrupted[:]
            answer = interactive_ask()
            if answer is None:
                sys.stdout.write("Timeout -- deleting job\n")
                return interactive_bailout(seq, jobid)
            if answer:
                return interactive_bailout(seq, jobid)
        with Lock(shared=True):
            rec = load_rec(seq)
        m = find_by_id(rec, jobid) if rec else None
        if m is not None and m.get("interactive_ready") and m["state"] == "R" and not m.get("delete"):
            break
        if time.time() - last_check >= check_every:
            last_check = time.time()
            if m is None or is_final(m) or gone(rec, m):
                sys.stderr.write("qsub: job %s apparently deleted\n" % jobid)
                return 1
        time.sleep(0.1)
    sys.stdout.write("qsub: job %s ready\n\n" % jobid)
    sys.stdout.flush()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGTSTP):
        signal.signal(sig, signal.SIG_DFL)
    status = interactive_run(seq, rec, m)
    interactive_finish(seq, jobid, status)
    sys.stdout.write("\nqsub: job %s completed\n" % jobid)
    sys.stdout.flush()
    return 0


def interactive_run(seq, rec, m):
    """The command, in its own process group in the terminal's foreground (as on the job's own terminal: a
    typed ^C reaches the command, not qsub); its wait status. A qdel ends it as the runner ends a batch job."""
    env, _shell = job_environment(rec, m)
    um = int(rec["umask_octal"], 8) if rec.get("umask_octal") else 0o077
    tty = os.isatty(0)
    argv = rec["exec_argv"]
    pid = os.fork()
    if pid == 0:
        try:
            os.setpgid(0, 0)
            if tty:
                signal.signal(signal.SIGTTOU, signal.SIG_IGN)
                os.tcsetpgrp(0, os.getpgrp())
            for sig in (signal.SIGPIPE, signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT,
                        signal.SIGXFSZ, signal.SIGCHLD, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU):
                signal.signal(sig, signal.SIG_DFL)
            os.umask(um)
            try:
                os.chdir(CFG.job_home)
            except OSError:
                os.chdir("/")
            try:
                os.execvpe(argv[0], argv, env)
            except OSError as e:
                os.write(2, ("pbsemu: %s: %s\n" % (argv[0], os.strerror(e.errno))).encode())
            os._exit(127)
        except BaseException:
            os._exit(127)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass
    if tty:
        signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        try:
            os.tcsetpgrp(0, pid)
        except OSError:
            pass
    sent = None
    while True:
        wpid, status = os.waitpid(pid, os.WNOHANG)
        if wpid:
            break
        with Lock(shared=True):
            now_rec = load_rec(seq)
        now_m = find_by_id(now_rec, m["id"]) if now_rec else None
        dreq = now_m.get("delete") if now_m else None
        if dreq:
            force = dreq.get("force")
            if sent is None or force or time.time() - sent >= CFG.kill_delay:
                try:
                    os.killpg(pid, signal.SIGKILL if (force or sent is not None) else signal.SIGTERM)
                except OSError:
                    pass
                sent = sent or time.time()
        time.sleep(0.05)
    if tty:
        try:
            os.tcsetpgrp(0, os.getpgrp())
        except OSError:
            pass
    return status


def interactive_finish(seq, jobid, status):
    now = time.time()
    with Lock():
        rec = load_rec(seq)
        m = find_by_id(rec, jobid) if rec else None
        if m is not None:
            es = 256 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            if m.get("delete"):
                sub, tail = 91, "and terminated by %s" % m["delete"].get("by", rec["owner"])
            else:
                sub, tail = (92, "and finished") if es == 0 else (93, "and failed")
            m["used"]["walltime"] = int(now - m["stime"])
            m.update({"state": "F", "substate": sub, "exit_status": es, "obittime": int(now),
                      "history_timestamp": int(now), "mtime": int(now),
                      "comment": "Job run at %s on %s %s" % (fmt_comment_time(m["stime"]), m["exec_vnode"], tail)})
            purge_if_no_history(m)
            save_rec(rec)
    for p in (CFG.p("running", marker_name(jobid)), CFG.p("aux", jobid)):
        try:
            os.unlink(p)
        except OSError:
            pass
    rm_tree(os.path.join(CFG.tmpdir_base, "pbs.%s" % jobid))


# --------------------------------------------------------------------------------------
# qrls (user holds only)
# --------------------------------------------------------------------------------------

def qrls_main(args):
    try:
        opts, idx = getopt("qrls", args, "h:")
    except Fail as f:
        sys.stderr.write(f.message + "usage: qrls [-h hold_list] job_identifier...\n")
        return 2
    for c, a in opts:
        if a != "u":
            raise unsupported("qrls -h %s" % a)
    rc = 0
    now = int(time.time())
    for operand in args[idx:]:
        parsed = parse_jobid(operand)
        with Lock():
            rec = load_rec(parsed[0]) if parsed else None
            if rec is None or gone(rec, rec):
                sys.stderr.write("qrls: Unknown Job Id %s\n" % operand)
                rc = PBSE_UNKJOBID & 0xFF
                continue
            rec["Hold_Types"] = rec["Hold_Types"].replace("u", "") or "n"
            if rec["Hold_Types"] == "n":
                for m in members(rec) + ([rec] if rec["kind"] == "array" else []):
                    if m["state"] == "H":
                        m["state"], m["substate"] = "Q", 10
                        m["etime"] = m["mtime"] = now
            save_rec(rec)
    return rc


# --------------------------------------------------------------------------------------
# maintenance
# --------------------------------------------------------------------------------------

def shutdown():
    """Kill the runners and running jobs of this PBS_EMU_HOME (only processes it started)."""
    if not os.path.isdir(CFG.home):
        return
    for name in os.listdir(CFG.p("runners")) if os.path.isdir(CFG.p("runners")) else []:
        try:
            with open(CFG.p("runners", name)) as f:
                pid_s, start = f.read().split()
            pid = int(pid_s)
        except (OSError, ValueError):
            continue
        if proc_starttime(pid) == start:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.unlink(CFG.p("runners", name))
        except OSError:
            pass
    if os.path.isdir(CFG.p("jobs")):
        for seq in all_seqs():
            rec = load_rec(seq)
            if not rec:
                continue
            for m in members(rec):
                if m["state"] in ("R", "E") and m.get("session_id"):
                    for pid, fields in session_pids(m["session_id"]):
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except OSError:
                            pass


def maint_main(argv):
    if not argv or argv[0] not in ("shutdown", "reset"):
        sys.stderr.write("usage: pbsemu.py shutdown|reset\n")
        return 2
    shutdown()
    if argv[0] == "reset":
        rm_tree(CFG.home)
    return 0


def main(prog, args):
    global CFG
    CFG = Config()
    try:
        CFG.ensure()
    except OSError as e:
        sys.stderr.write("pbsemu: cannot use PBS_EMU_HOME %s: %s\n" % (CFG.home, e.strerror))
        return 2
    try:
        if prog == "qsub":
            return qsub_main(args)
        if prog == "qstat":
            return qstat_main(args)
        if prog == "qdel":
            return qdel_main(args)
        if prog == "qrls":
            return qrls_main(args)
        if prog == "pbsemu":
            return maint_main(args)
    except Fail as f:
        sys.stderr.write(f.message)
        return f.rc & 0xFF if f.rc >= 0 else 2
    except BrokenPipeError:
        return 141
    sys.stderr.write("pbsemu: unknown command %s\n" % prog)
    return 2


if __name__ == "__main__":
    sys.dont_write_bytecode = True
    sys.exit(main("pbsemu", sys.argv[1:]))
