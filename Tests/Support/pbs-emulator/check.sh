#!/usr/bin/env bash
# Self-check of the PBS emulator against the recorded OpenPBS outputs.
#
#   Tests/Support/pbs-emulator/check.sh            # exit 0 = emulator matches the fixtures
#   PBS_FIXTURES=/path/to/fixtures/pbs check.sh    # default: Tests/Fixtures/pbs in the repository
#   PBS_FIXTURES_REAL=/path/to/pbs-real check.sh  # default: Tests/Fixtures/pbs-real (recorded by record.sh)
#   KEEP=1 check.sh                                # keep the temp dir (printed) for inspection
#
# Replays the fixture scenarios (see the fixtures' README) against the emulator in a private
# PBS_EMU_HOME and a clean environment like the recording's (env -i HOME USER LOGNAME SHELL
# LANG PATH), then compares:
#   - error messages, stdout and exit statuses byte for byte (job ids mapped to ours);
#   - qstat records (text, dsv, json, short table): the same attributes in the same order and
#     the same value formats; values that naturally differ (times, ids, paths, hosts, pids,
#     session ids, resources_used numbers) are compared by shape, everything else exactly;
#   - the JSON layout line by line (indentation, keys, value types, commas);
#   - the emulator's text wrapper and JSON printer against every fixture byte for byte;
#   - output file names, modes and contents, and the job environment.
# On a mismatch it prints a unified diff per failed comparison and exits 1.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PBSEMU_DIR="$HERE"
export PBS_FIXTURES="${PBS_FIXTURES:-$(cd "$HERE/../.." && pwd)/Fixtures/pbs}"
export PBS_FIXTURES_REAL="${PBS_FIXTURES_REAL:-$(cd "$HERE/../.." && pwd)/Fixtures/pbs-real}"
exec python3 - "$@" <<'PY'
import difflib, json, os, pwd, re, shutil, signal, stat, subprocess, sys, tempfile, time

sys.dont_write_bytecode = True
EMU = os.environ["PBSEMU_DIR"]
FIX = os.environ["PBS_FIXTURES"]
FIXR = os.environ["PBS_FIXTURES_REAL"]
BIN = os.path.join(EMU, "bin")
sys.path.insert(0, EMU)
import pbsemu  # noqa: E402

T0 = time.time()
T = tempfile.mkdtemp(prefix="pbsemu-check.")
EH = os.path.join(T, "emu")
W = os.path.join(T, "a1")
W2 = os.path.join(T, "fx-real")   # the pbs-real scenarios' submit dir (~/fx-real in that recording)
CWD = [W]
H = os.path.join(T, "home")
for d in (EH, W, W2, H):
    os.makedirs(d)
U = pwd.getpwuid(os.getuid()).pw_name
BASE_ENV = {
    "HOME": H, "USER": U, "LOGNAME": U, "SHELL": "/bin/bash", "LANG": "C.UTF-8",
    "PATH": BIN + ":/usr/local/bin:/usr/bin:/bin", "PWD": W,
    "PBS_EMU_HOME": EH, "PBS_EMU_SERVER": "vm", "PBS_EMU_JOB_HOME": H,
}
FAILS = []
NCHECK = 0


def fail(name, expected, actual, note=""):
    FAILS.append(name)
    sys.stdout.write("FAIL %s %s\n" % (name, note))
    if not isinstance(expected, str):
        expected = "\n".join(map(str, expected)) + "\n"
    if not isinstance(actual, str):
        actual = "\n".join(map(str, actual)) + "\n"
    sys.stdout.writelines(difflib.unified_diff(
        expected.splitlines(True), actual.splitlines(True), "expected (fixture)", "actual (emulator)"))
    if not actual.endswith("\n") or not expected.endswith("\n"):
        sys.stdout.write("\n")


def check(name, expected, actual, note=""):
    global NCHECK
    NCHECK += 1
    if expected != actual:
        fail(name, expected, actual, note)
        return False
    return True


def run(*cmd, env=None, stdin=None):
    e = dict(BASE_ENV)
    if env:
        e.update(env)
    p = subprocess.run(list(cmd), cwd=CWD[0], env=e, input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    return p.returncode, p.stdout.decode("utf-8", "surrogateescape"), p.stderr.decode("utf-8", "surrogateescape")


def fx(name, d=None):
    with open(os.path.join(d or FIX, name), encoding="utf-8", errors="surrogateescape") as f:
        return f.read()


def fx_rc(name, d=None):
    p = os.path.join(d or FIX, name)
    return int(open(p).read()) if os.path.exists(p) else 0


def fx_err(name, d=None):
    p = os.path.join(d or FIX, name)
    return open(p).read() if os.path.exists(p) else ""


# ----------------------------------------------------------------------------------------
# mapping fixture values onto this run
# ----------------------------------------------------------------------------------------
FSEQ = {"queued": 127, "ok": 128, "walltime": 131, "exit3": 132, "sig9": 133, "running": 134,
        "held": 135, "array": 136, "env": 137, "sig9exec": 138}
SEQ = {}   # scenario -> our seq


def seqmap_all():
    return [(FSEQ[k], SEQ[k]) for k in SEQ if k in FSEQ]


def map_fixture(s, seqmap=None):
    # pbs-real: the build cache's bin, the work dir, the home and the user of that recording
    s = re.sub(r"/var/cache/qxub-openpbs/[0-9a-f]+/bin", BIN, s)
    s = (s.replace("/var/lib/qxub-openpbs-home/qxubpbs/fx-real", W2).replace("/var/lib/qxub-openpbs-home/qxubpbs", H)
         .replace("qxubpbs", U))
    for f, e in (seqmap if seqmap is not None else seqmap_all()):
        s = re.sub(r"(?<!\d)%d(?!\d)" % f, str(e), s)
    return (s.replace("/opt/pbs/23.06/bin", BIN).replace("/scratch/a1", W)
            .replace("/home/pbstest", H).replace("pbstest", U))


CTIME = r"[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}"
SHAPES = {
    "ctime": CTIME, "mtime": CTIME, "qtime": CTIME, "stime": CTIME, "etime": CTIME, "obittime": CTIME,
    "history_timestamp": r"\d+", "session_id": r"\d+", "timestamp": r"\d+",
    "resources_used.cpupercent": r"\d+", "resources_used.cput": r"\d\d+:\d\d:\d\d",
    "resources_used.walltime": r"\d\d+:\d\d:\d\d", "resources_used.mem": r"\d+kb",
    "resources_used.vmem": r"\d+kb", "exec_host": r"vm/\d+",
}
COMMENT_TIME = re.compile(r"[A-Z][a-z]{2} [A-Z][a-z]{2} \d\d at \d\d:\d\d")


def norm(key, value):
    """Value -> comparable token: a shape for values that naturally differ, else the value."""
    if key in SHAPES:
        ok = re.fullmatch(SHAPES[key], str(value)) is not None
        return "<%s:%s>" % (key, "ok" if ok else "BAD " + repr(value))
    if key == "comment":
        return COMMENT_TIME.sub("<T>", value)
    return value


# ----------------------------------------------------------------------------------------
# parsers
# ----------------------------------------------------------------------------------------
def parse_text_full(text):
    """qstat -f text -> [(jobid, [(name, value)])]; continuation lines start with one TAB."""
    recs = []
    lines = []
    for line in text.split("\n"):
        if line.startswith("\t") and lines:
            lines[-1] += line[1:]
        else:
            lines.append(line)
    cur = None
    for line in lines:
        if line.startswith("Job Id: "):
            cur = (line[len("Job Id: "):], [])
            recs.append(cur)
        elif line.startswith("    ") and cur is not None:
            name, _, val = line[4:].partition(" = ")
            cur[1].append((name, val))
        elif line == "":
            continue
        else:
            cur[1].append(("<garbage>", line))
    return recs


def parse_dsv(text):
    recs = []
    for line in text.splitlines():
        fields = re.split(r"(?<!\\)\|", line)
        jid = fields[0][len("Job Id: "):]
        attrs = []
        for f in fields[1:]:
            n, _, v = f.partition("=")
            attrs.append((n, v))
        recs.append((jid, attrs))
    return recs


def flatten_json_job(obj):
    out = []
    for k, v in obj.items():
        if isinstance(v, dict):
            for k2, v2 in v.items():
                out.append(("%s.%s" % (k, k2), v2))
        else:
            out.append((k, v))
    return out


def json_types(obj):
    return [(k, type(v).__name__) for k, v in flatten_json_job(obj)]


def json_layout(text):
    """Each line -> (indent, key, kind, trailing comma) to compare the cJSON layout."""
    out = []
    for line in text.split("\n"):
        m = re.match(r'^(\t*)"((?:[^"\\]|\\.)*)":\t(.*?)(,?)$', line)
        if m:
            ind, key, val, comma = m.groups()
            kind = "{" if val == "{" else ("str" if val.startswith('"') else "num")
            out.append("%d %s %s %s" % (len(ind), re.sub(r"\d+", "N", key) if key[:1].isdigit() else key,
                                        kind, comma))
        else:
            out.append(re.sub(r"\d+", "N", line))
    return out


def expected_value(n, v, seqmap):
    # times are compared by shape: map ids only where they can appear (a 2-digit id may look like a minute)
    if n in SHAPES or n == "comment":
        return map_fixture(norm(n, v), seqmap)
    return norm(n, map_fixture(v, seqmap))


def expected_attrs(attrs, seqmap):
    return [(n, expected_value(n, v, seqmap)) for n, v in attrs]


def actual_attrs(attrs):
    return [(n, norm(n, v)) for n, v in attrs]


def varlist_keys(v):
    return [p.split("=", 1)[0] for p in re.split(r"(?<!\\),", v)]


def cmp_records(name, exp_recs, act_recs, seqmap):
    """Compare [(jobid, [(name, value)])] lists (text or dsv)."""
    ok = check(name + " job ids", [map_fixture(j, seqmap) for j, _ in exp_recs], [j for j, _ in act_recs])
    for (ej, ea), (aj, aa) in zip(exp_recs, act_recs):
        e = ["%s = %s" % kv for kv in expected_attrs(ea, seqmap)]
        a = ["%s = %s" % kv for kv in actual_attrs(aa)]
        ok = check("%s [%s]" % (name, aj), e, a) and ok
    return ok


def cmp_json(name, exp_text, act_text, seqmap):
    global NCHECK
    try:
        act = json.loads(act_text)
    except ValueError as e:
        fail(name + " (not JSON)", exp_text, act_text, str(e))
        return
    exp = json.loads(exp_text)
    check(name + " top-level keys", list(exp.keys()), list(act.keys()))
    check(name + " header", [exp["pbs_version"], exp["pbs_server"], type(exp["timestamp"]).__name__],
          [act.get("pbs_version"), act.get("pbs_server"), type(act.get("timestamp")).__name__])
    ej = exp.get("Jobs", {})
    aj = act.get("Jobs", {})
    check(name + " job ids", [map_fixture(k, seqmap) for k in ej], list(aj))
    for (ek, ev), (ak, av) in zip(ej.items(), aj.items()):
        e = ["%s = %r" % (k, expected_value(k, v, seqmap) if isinstance(v, str) else norm(k, v))
             for k, v in flatten_json_job(ev)]
        a = ["%s = %r" % (k, norm(k, v)) for k, v in flatten_json_job(av)]
        check("%s [%s]" % (name, ak), e, a)
        check("%s [%s] value types" % (name, ak), json_types(ev), json_types(av))
    check(name + " layout", json_layout(exp_text), json_layout(act_text))


def cmp_short(name, exp_text, act_text, seqmap):
    el = exp_text.splitlines()
    al = act_text.splitlines()
    check(name + " header", el[:2], al[:2])

    def fields(l):
        return [l[0:17].rstrip(), l[18:34].rstrip(), l[35:51].rstrip(), l[53:61], l[62:63], l[64:].rstrip(),
                "len=%d" % len(l)]
    e = [fields(l) for l in el[2:]]
    a = [fields(l) for l in al[2:]]
    e = [[map_fixture(f[0], seqmap), f[1], map_fixture(f[2], seqmap),
          "<dur>" if re.fullmatch(r"\d\d:\d\d:\d\d", f[3]) else f[3]] + f[4:] for f in e]
    a = [[f[0], f[1], f[2], "<dur>" if re.fullmatch(r"\d\d:\d\d:\d\d", f[3]) else f[3]] + f[4:] for f in a]
    check(name + " rows", [" | ".join(r) for r in e], [" | ".join(r) for r in a])


def cmp_exact_triplet(name, fixname, rc, out, err, seqmap=None, stdout_fix=None, d=None):
    """fixtures NAME.stdout/.stderr/.rc (or NAME + .stderr/.rc side files)."""
    d = d or FIX
    if os.path.exists(os.path.join(d, fixname + ".rc")) and os.path.exists(os.path.join(d, fixname + ".stdout")):
        exp_out, exp_err, exp_rc = fx(fixname + ".stdout", d), fx(fixname + ".stderr", d), fx_rc(fixname + ".rc", d)
    else:
        exp_out, exp_err, exp_rc = fx(fixname, d), fx_err(fixname + ".stderr", d), fx_rc(fixname + ".rc", d)
    check(name + " rc", exp_rc, rc)
    check(name + " stderr", map_fixture(exp_err, seqmap), err)
    if stdout_fix is None:
        check(name + " stdout", map_fixture(exp_out, seqmap), out)
    return exp_out


# ----------------------------------------------------------------------------------------
# 0. the emulator's renderers against the fixtures, byte for byte
# ----------------------------------------------------------------------------------------
def selftest_renderers():
    for fn in sorted(os.listdir(FIX)):
        path = os.path.join(FIX, fn)
        if fn.endswith(".json") and os.path.getsize(path) > 0:
            text = fx(fn)
            obj = json.loads(text)
            check("cJSON printer reproduces %s" % fn, text, pbsemu.cjson_print(obj) + "\n")
            for jid, job in obj.get("Jobs", {}).items():
                for k, v in flatten_json_job(job):
                    if isinstance(v, (int, str)) and k.split(".")[0] != "Variable_List":
                        got = pbsemu.json_value(str(v))
                        check("cJSON value typing %s %s" % (fn, k), pbsemu.cjson_print(v),
                              pbsemu.cjson_print(got))
        elif (fn.endswith(".txt") and fn.startswith("qstat-") and "-f" in fn and "dsv" not in fn
              and os.path.getsize(path) > 0):
            text = fx(fn)
            out = []
            for jid, attrs in parse_text_full(text):
                triples = []
                for n, v in attrs:
                    name, dot, res = n.partition(".")
                    triples.append((name, res or None, v))
                out.append(pbsemu.render_text_full(jid, triples))
            check("text wrapper reproduces %s" % fn, text, "".join(out))


# ----------------------------------------------------------------------------------------
# scenario helpers
# ----------------------------------------------------------------------------------------
SCRIPTS = {
    "ok.pbs": "#PBS -N fx-ok\n#PBS -l walltime=00:05:00\n#PBS -j oe\n#PBS -o %s/fx-ok.log\necho hello; exit 0\n" % W,
    "exit3.pbs": "#PBS -N fx-exit3\n#PBS -l walltime=00:05:00\n#PBS -o fx-exit3.out\n#PBS -e fx-exit3.err\n"
                 "echo about to fail; echo to stderr >&2; exit 3\n",
    "sig9.pbs": "#PBS -N fx-sig9\n#PBS -l walltime=00:05:00\necho killing myself; kill -9 $$\n",
    "walltime.pbs": "#PBS -N fx-walltime\n#PBS -l walltime=00:00:03\n#PBS -j oe\necho sleeping past the limit; sleep 30\n",
    "running.pbs": "#PBS -N fx-running\n#PBS -l walltime=00:05:00\n#PBS -j oe\nsleep 60\n",
    "held.pbs": "#PBS -N fx-held\n#PBS -l walltime=00:05:00\nsleep 5\n",
    "queued.pbs": "#PBS -N fx-queued\n#PBS -l walltime=00:05:00\n#PBS -j oe\nsleep 1\n",
    "array.pbs": "#PBS -N fx-array\n#PBS -J 1-3\n#PBS -l walltime=00:05:00\n#PBS -j oe\necho subjob $PBS_ARRAY_INDEX; sleep 2\n",
    "env.pbs": "#PBS -N fx-env\n#PBS -l walltime=00:05:00\nenv | sort\n",
    "badwall.pbs": "#PBS -N fx-badwall\n#PBS -l walltime=1:xx:00\necho never\n",
}


def write_scripts():
    for name, body in SCRIPTS.items():
        with open(os.path.join(W, name), "w") as f:
            f.write("#!/bin/bash\n" + body)


def qsub(key, *args, env=None):
    rc, out, err = run("qsub", *args, env=env)
    if rc != 0 or not re.fullmatch(r"\d+(\[\])?\.vm\n", out):
        fail("qsub %s" % key, "rc 0, an id", "rc %d\nstdout %r\nstderr %r" % (rc, out, err))
        raise SystemExit(finish())
    SEQ[key] = int(out.split(".")[0].split("[")[0])
    return out.strip()


def jid(key, bracket=None):
    b = "" if bracket is None else "[%s]" % bracket
    return "%d%s.vm" % (SEQ[key], b)


def state_of(key, bracket=None):
    rc, out, err = run("qstat", "-xf", "-F", "json", jid(key, bracket))
    if rc != 0:
        return None, None
    j = json.loads(out)["Jobs"][jid(key, bracket)]
    return j["job_state"], j["substate"]


def wait_for(keys_states, timeout=30):
    end = time.time() + timeout
    pending = list(keys_states)
    while pending and time.time() < end:
        pending = [(k, b, s) for k, b, s in pending if state_of(k, b) != s]
        if pending:
            time.sleep(0.2)
    for k, b, s in pending:
        fail("wait for %s -> %s" % (jid(k, b), s), repr(s), repr(state_of(k, b)))
    if pending:
        raise SystemExit(finish())


CLEANED = []


def cleanup():
    if CLEANED:
        return
    CLEANED.append(True)
    try:
        subprocess.run(["python3", os.path.join(EMU, "pbsemu.py"), "shutdown"], env=dict(BASE_ENV),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    except Exception:
        pass
    if os.environ.get("KEEP"):
        print("kept %s" % T)
    else:
        shutil.rmtree(T, ignore_errors=True)


def finish():
    cleanup()
    dt = time.time() - T0
    if FAILS:
        print("check.sh: %d of %d comparisons FAILED in %.1f s" % (len(FAILS), NCHECK, dt))
        return 1
    print("check.sh: all %d comparisons passed in %.1f s" % (NCHECK, dt))
    return 0


# ----------------------------------------------------------------------------------------
# pbs-real: recordings of the OpenPBS in Tests/Support/openpbs.sh (Tests/Fixtures/pbs-real/README.md)
# ----------------------------------------------------------------------------------------
def selftest_renderers_real():
    for fn in sorted(os.listdir(FIXR)):
        if not fn.endswith(".stdout"):
            continue
        text = fx(fn, FIXR)
        if text.startswith("{"):
            check("cJSON printer reproduces pbs-real/%s" % fn, text, pbsemu.cjson_print(json.loads(text)) + "\n")
        elif text.startswith("Job Id: ") and "-f" in fn:
            out = []
            for jid_, attrs in parse_text_full(text):
                out.append(pbsemu.render_text_full(jid_, [(n.partition(".")[0], n.partition(".")[2] or None, v)
                                                          for n, v in attrs]))
            check("text wrapper reproduces pbs-real/%s" % fn, text, "".join(out))


def real_ids():
    out = {}
    for line in fx("ids.txt", FIXR).splitlines():
        k, _, v = line.partition("=")
        out[k] = int(v.split(".")[0].split("[")[0])
    return out


def state_f(key, bracket=None):
    """(job_state, substate) from qstat -f -F json (works with history off); None once the job is gone."""
    rc, out, err = run("qstat", "-f", "-F", "json", jid(key, bracket))
    if rc != 0:
        return None
    j = json.loads(out).get("Jobs", {}).get(jid(key, bracket))
    return (j["job_state"], j["substate"]) if j else None


def wait_until(name, pred, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.2)
    fail("wait for " + name, "true", "false (timed out)")
    raise SystemExit(finish())


def real_triplet(fixname, args, sm):
    rc, out, err = run(*args)
    cmp_exact_triplet("pbs-real/" + fixname, fixname, rc, out, err, sm, d=FIXR)
    return rc, out, err


def real_record(fixname, args, sm, json_=False, short=False):
    """rc and stderr exactly, stdout as a qstat record (text, JSON or the short table)."""
    rc, out, err = run(*args)
    cmp_exact_triplet("pbs-real/" + fixname, fixname, rc, out, err, sm, stdout_fix=True, d=FIXR)
    exp = fx(fixname + ".stdout", FIXR)
    if json_:
        cmp_json("pbs-real/" + fixname, exp, out, sm)
    elif short:
        cmp_short("pbs-real/" + fixname, exp, out, sm)
    else:
        cmp_records("pbs-real/" + fixname, parse_text_full(exp), parse_text_full(out), sm)


def content_of(path):
    return open(path).read() if os.path.exists(path) else "<missing>"


def real_scenarios():
    selftest_renderers_real()
    R = real_ids()
    W = CWD[0] = W2
    for name, body in (("running.pbs", "#PBS -N fx-running\n#PBS -l walltime=00:05:00\n#PBS -j oe\nsleep 60\n"),
                       ("ok.pbs", "#PBS -N fx-ok\n#PBS -l walltime=00:05:00\n#PBS -j oe\n#PBS -o fx-ok.log\n"
                                    "echo hello\nexit 0\n"),
                       ("walltime.pbs", "#PBS -N fx-walltime\n#PBS -l walltime=00:00:03\n#PBS -j oe\n"
                                          "echo sleeping past the limit\nsleep 30\n")):
        with open(os.path.join(W, name), "w") as f:
            f.write(body)

    # --- (a) history off --------------------------------------------------------------------------
    open(os.path.join(EH, "job_history_off"), "w").close()
    qsub("hoff_running", "running.pbs")
    qsub("hoff_walltime", "walltime.pbs")
    qsub("hoff_ok", "ok.pbs")
    sm = [(R[k], SEQ[k]) for k in ("hoff_running", "hoff_walltime", "hoff_ok")]
    wait_until("hoff_running R 42", lambda: state_f("hoff_running") == ("R", 42))
    time.sleep(1.2)
    r = ["qstat", "-f", jid("hoff_running")]
    real_record("hoff-qstat-f-running", r, sm)
    real_record("hoff-qstat-f-json-running", ["qstat", "-f", "-F", "json", jid("hoff_running")], sm, json_=True)
    real_triplet("hoff-qstat-xf-running", ["qstat", "-xf", jid("hoff_running")], sm)
    real_record("hoff-qstat-xf-json-running", ["qstat", "-xf", "-F", "json", jid("hoff_running")], sm, json_=True)
    real_triplet("hoff-qstat-x-running", ["qstat", "-x", jid("hoff_running")], sm)
    real_triplet("hoff-qstat-x-noargs", ["qstat", "-x"], sm)
    wait_until("hoff_ok gone", lambda: state_f("hoff_ok") is None and os.path.exists(os.path.join(W, "fx-ok.log")))
    real_triplet("hoff-qstat-finished", ["qstat", jid("hoff_ok")], sm)
    real_triplet("hoff-qstat-f-finished", ["qstat", "-f", jid("hoff_ok")], sm)
    real_triplet("hoff-qstat-xf-finished", ["qstat", "-xf", jid("hoff_ok")], sm)
    real_record("hoff-qstat-xf-json-finished", ["qstat", "-xf", "-F", "json", jid("hoff_ok")], sm, json_=True)
    real_record("hoff-qstat-f-running-finished", ["qstat", "-f", jid("hoff_running"), jid("hoff_ok")], sm)
    real_record("hoff-qstat-f-json-finished-running", ["qstat", "-f", "-F", "json", jid("hoff_ok"),
                                                       jid("hoff_running")], sm, json_=True)
    real_triplet("hoff-qdel-finished", ["qdel", jid("hoff_ok")], sm)
    check("pbs-real/hoff-joboutput-ok.log.txt", fx("hoff-joboutput-ok.log.txt", FIXR),
          content_of(os.path.join(W, "fx-ok.log")))
    real_triplet("hoff-qdel-running", ["qdel", jid("hoff_running")], sm)
    wait_until("hoff_running gone", lambda: state_f("hoff_running") is None)
    real_triplet("hoff-qstat-f-qdeled", ["qstat", "-f", jid("hoff_running")], sm)
    wo = os.path.join(W, "fx-walltime.o%d" % SEQ["hoff_walltime"])
    wait_until("hoff_walltime gone", lambda: state_f("hoff_walltime") is None and os.path.exists(wo), timeout=40)
    shape = r"=>> PBS: job killed: walltime \d+ exceeded limit 3"
    ewt = fx("hoff-joboutput-walltime.txt", FIXR).splitlines()
    wt = content_of(wo).splitlines()
    check("pbs-real/hoff-joboutput-walltime.txt", [ewt[0], True, True, len(ewt)],
          [wt[0] if wt else None, bool(re.fullmatch(shape, ewt[1])), bool(wt[1:] and re.fullmatch(shape, wt[1])),
           len(wt)])
    real_triplet("hoff-qstat-f-walltime-gone", ["qstat", "-f", jid("hoff_walltime")], sm)
    os.unlink(os.path.join(EH, "job_history_off"))

    # --- (b) a job held in E by a FIFO output path ---------------------------------------------------
    fifo = os.path.join(W, "fifo-exiting")
    os.mkfifo(fifo)
    qsub("exiting", "-N", "fx-exiting", "-j", "oe", "-o", fifo, "-l", "walltime=00:05:00", "--",
         "/bin/sh", "-c", "echo exiting job output")
    sm = [(R["exiting"], SEQ["exiting"])]
    wait_until("exiting E 51", lambda: state_f("exiting") == ("E", 51))
    real_record("qstat-f-exiting", ["qstat", "-f", jid("exiting")], sm)
    real_triplet("qdel-exiting", ["qdel", jid("exiting")], sm)
    real_record("qstat-f-exiting-after-qdel", ["qstat", "-f", jid("exiting")], sm)
    real_triplet("qdel-force-exiting", ["qdel", "-W", "force", jid("exiting")], sm)
    real_record("qstat-xf-exiting-after-force", ["qstat", "-xf", jid("exiting")], sm)
    p = subprocess.run(["timeout", "10", "cat", fifo], stdout=subprocess.PIPE)
    check("pbs-real/joboutput-exiting-fifo.txt", fx("joboutput-exiting-fifo.txt", FIXR), p.stdout.decode())
    time.sleep(1)
    real_record("qstat-xf-exiting-end", ["qstat", "-xf", jid("exiting")], sm)

    fifo = os.path.join(W, "fifo-array")
    os.mkfifo(fifo)
    qsub("array_exiting", "-N", "fx-arrexit", "-J", "1-2", "-j", "oe", "-o", fifo, "-l", "walltime=00:05:00",
         "--", "/bin/sh", "-c", "echo subjob $PBS_ARRAY_INDEX")
    sm = [(R["array_exiting"], SEQ["array_exiting"])]
    wait_until("array subjobs E 51", lambda: state_f("array_exiting", "1") == ("E", 51)
               and state_f("array_exiting", "2") == ("E", 51))
    real_record("qstat-t-array-exiting", ["qstat", "-t", jid("array_exiting", "")], sm, short=True)
    real_record("qstat-f-array-subjob-exiting", ["qstat", "-f", jid("array_exiting", "1")], sm)
    real_triplet("qdel-array-subjob-exiting", ["qdel", jid("array_exiting", "1")], sm)
    real_triplet("qdel-array-parent-exiting", ["qdel", jid("array_exiting", "")], sm)
    real_record("qstat-xt-array-after-qdel", ["qstat", "-xt", jid("array_exiting", "")], sm, short=True)
    got = ""
    for _ in range(2):
        got += subprocess.run(["timeout", "10", "cat", fifo], stdout=subprocess.PIPE).stdout.decode()
    check("pbs-real/joboutput-array-fifo.txt (lines in any order)",
          sorted(fx("joboutput-array-fifo.txt", FIXR).splitlines()), sorted(got.splitlines()))
    wait_until("array F", lambda: state_of("array_exiting", "")[0] == "F")
    real_record("qstat-xft-array-end", ["qstat", "-xf", "-t", jid("array_exiting", "")], sm)

    # --- (c) the job's PATH comes from the login files ----------------------------------------------
    with open(os.path.join(H, ".bash_profile"), "w") as f:
        f.write(fx("login-bash_profile.txt", FIXR))
    with open(os.path.join(H, ".qxub-pbs-env"), "w") as f:
        f.write(map_fixture(fx("login-qxub-pbs-env.txt", FIXR)))
    with open(os.path.join(W, "env.pbs"), "w") as f:
        f.write("#PBS -N fx-env\n#PBS -l walltime=00:05:00\nenv | sort\n")
    submitter = "/opt/submitter/bin:" + BASE_ENV["PATH"]
    qsub("env_r", "env.pbs", env={"PATH": submitter})
    sm = [(R["env"], SEQ["env_r"])]
    eo = os.path.join(W, "fx-env.o%d" % SEQ["env_r"])
    wait_until("env job F", lambda: state_of("env_r") == ("F", 92) and os.path.exists(eo))
    exp = dict(l.split("=", 1) for l in fx("job-env-login-path.txt", FIXR).splitlines())
    got = dict(l.split("=", 1) for l in content_of(eo).splitlines() if "=" in l)
    # what a login shell on this machine adds by itself (/etc/profile.d) is the machine's, not PBS's
    base = subprocess.run(["env", "-i", "HOME=" + T, "PATH=/usr/bin:/bin", "bash", "-l", "-c", "env"],
                          stdout=subprocess.PIPE).stdout.decode()
    machine = {l.split("=", 1)[0] for l in base.splitlines() if "=" in l} - {"HOME", "PATH", "PWD", "SHLVL", "_"}
    check("pbs-real/job-env-login-path.txt variables", sorted(exp), sorted(set(got) - machine))
    keys = ["PATH", "PBS_O_PATH", "PBS_CONF_FILE", "HOME", "PWD", "PBS_O_WORKDIR", "PBS_JOBID", "PBS_JOBNAME",
            "SHLVL", "_", "NCPUS", "PBS_ENVIRONMENT"]
    check("pbs-real/job-env-login-path.txt values (the login PATH, not the submitter's)",
          ["%s=%s" % (k, map_fixture(exp[k], sm)) for k in keys], ["%s=%s" % (k, got.get(k)) for k in keys])
    check("pbs-real/job-env-login-path.e.txt", fx("job-env-login-path.e.txt", FIXR),
          content_of(os.path.join(W, "fx-env.e%d" % SEQ["env_r"])))
    real_record("qstat-xf-env", ["qstat", "-xf", jid("env_r")], sm)


def interactive_scenarios():
    """pbs-real/interactive-*.tty (record-interactive.sh) replayed on a pseudo-terminal with the same steps:
    the terminal's bytes and qsub's exit status must match exactly (the job id mapped). qsub's 30 s check and
    60 s question are shortened (PBS_EMU_INTERACTIVE_CHECK/TIMEOUT); the messages are the same."""
    d = os.path.join(H, "fx-interactive")  # ~/fx-interactive, as recorded
    os.makedirs(d)
    for name in ("exit3", "ctrlc"):
        shutil.copy(os.path.join(FIXR, "interactive-%s.sh.txt" % name), os.path.join(d, name + ".sh"))
    real = {}
    for line in fx("interactive-ids.txt", FIXR).splitlines():
        k, _, v = line.partition("=")
        real[k] = v
    waiting = r"expect:qsub: waiting for job (?P<id>\S+) to start\r\n"
    question = r"expect:\(y\|\[n\]\)\? "
    scenarios = [
        ("exit3", [waiting, r"expect:completed\r\n"], [], "exit3"),
        ("held", [waiting, "run:qrls {id}", r"expect:completed\r\n"], ["-h"], "exit3"),
        ("sigint-yes", [waiting, "wait@1", "signal:SIGINT", question, r"send:y\r"], ["-h"], "exit3"),
        ("sigterm-no", [waiting, "wait@1", "signal:SIGTERM", question, r"send:n\r", r"expect:\r\n", "run:qrls {id}",
                        r"expect:completed\r\n"], ["-h"], "exit3"),
        ("ctrlc-eof", [waiting, "wait@1", r"send:\x03", question, r"send:\x04"], ["-h"], "exit3"),
        ("sighup", [waiting, "wait@1", "signal:SIGHUP"], ["-h"], "exit3"),
        ("qdel-waiting", [waiting, "run:qdel {id}", "expect@45:apparently deleted"], ["-h"], "exit3"),
        ("sigint-timeout", [waiting, "wait@1", "signal:SIGINT", question, "expect@75:deleting job"], ["-h"], "exit3"),
        ("ctrlc-running", [waiting, r"expect:\nready\r\n", r"send:\x03", r"expect:completed\r\n"], [], "ctrlc"),
    ]
    env = dict(BASE_ENV)
    env.update({"TERM": "xterm", "PBS_EMU_INTERACTIVE_CHECK": "1", "PBS_EMU_INTERACTIVE_TIMEOUT": "1", "PWD": d})
    # The recording's server kept no job history (its qstat of a deleted job says Unknown Job Id).
    open(os.path.join(EH, "job_history_off"), "w").close()
    ours = {}
    for name, steps, extra, script in scenarios:
        out = os.path.join(T, "tty-" + name)
        cmd = ["python3", os.path.join(EMU, "..", "ptyscript.py"), out] + steps + [
            "--", "qsub", "-I", "-N", "fx-ix"] + extra + ["--", "/bin/bash", os.path.join(d, script + ".sh")]
        p = subprocess.run(cmd, cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=180)
        got = open(out, "rb").read().decode("utf-8", "surrogateescape")
        m = re.search(r"waiting for job (\S+) to start", got)
        ours[name] = m.group(1) if m else "?"
        key = "interactive-" + name
        with open(os.path.join(FIXR, key + ".tty"), "rb") as f:  # "\r\n" kept: no universal newlines
            exp = f.read().decode("utf-8", "surrogateescape").replace(real[key], ours[name])
        check(key + ".tty", exp, got, p.stdout.decode("utf-8", "replace"))
        rc = open(out + ".rc").read() if os.path.exists(out + ".rc") else "(none)"
        check(key + ".tty.rc", fx(key + ".tty.rc", FIXR), rc)
    for name in ("sigint-yes", "ctrlc-eof", "sigint-timeout"):
        key = "interactive-%s-qstat" % name
        rc, out, err = run("qstat", "-f", ours[name])
        check(key, (fx_rc(key + ".rc", FIXR), fx(key + ".stdout", FIXR),
                    fx(key + ".stderr", FIXR).replace(real["interactive-" + name], ours[name])), (rc, out, err))
    rc, out, err = run("qsub", "-I", "-N", "fx-ix", "--", "/bin/bash", os.path.join(d, "exit3.sh"))
    check("interactive-notty", (fx_rc("interactive-notty.rc", FIXR), fx("interactive-notty.stdout", FIXR),
                                fx("interactive-notty.stderr", FIXR)), (rc, out, err))
    # SIGHUP killed qsub and left its job held (and qdel still deletes it)
    rc, out, err = run("qstat", "-f", ours["sighup"])
    seq = int(ours["sighup"].split(".")[0])
    sm = [(int(real["interactive-sighup"].split(".")[0]), seq)]
    cmp_records("interactive-sighup-qstat", parse_text_full(fx("interactive-sighup-qstat.stdout", FIXR)),
                parse_text_full(out), sm)
    rc, out, err = run("qdel", ours["sighup"])
    check("interactive-sighup-qdel", (fx_rc("interactive-sighup-qdel.rc", FIXR), ""), (rc, out + err))
    os.unlink(os.path.join(EH, "job_history_off"))


# ----------------------------------------------------------------------------------------
# the scenarios
# ----------------------------------------------------------------------------------------
def main():
    selftest_renderers()
    write_scripts()

    # --- scheduling off: Q state, held job, and a job that stays in substate 41 --------------
    open(os.path.join(EH, "scheduling_off"), "w").close()
    qsub("queued", "queued.pbs")
    qsub("held", "-h", "held.pbs")
    qsub("run41", "running.pbs", env={"PBS_EMU_PRERUN": "60"})
    time.sleep(0.5)
    check("scheduling_off keeps the job queued", ("Q", 10), state_of("queued"))
    sm = [(127, SEQ["queued"])]
    rc, out, err = run("qstat", "-f", jid("queued"))
    check("qstat -f queued rc/stderr", (0, ""), (rc, err))
    cmp_records("qstat-f-queued.txt", parse_text_full(fx("qstat-f-queued.txt")), parse_text_full(out), sm)
    rc, out, err = run("qstat", "-f", "-F", "json", jid("queued"))
    cmp_json("qstat-f-queued.json", fx("qstat-f-queued.json"), out, sm)
    sm = [(135, SEQ["held"])]
    rc, out, err = run("qstat", "-f", jid("held"))
    cmp_records("qstat-f-held.txt", parse_text_full(fx("qstat-f-held.txt")), parse_text_full(out), sm)
    rc, out, err = run("qstat", "-f", "-F", "json", jid("held"))
    cmp_json("qstat-f-held.json", fx("qstat-f-held.json"), out, sm)
    os.unlink(os.path.join(EH, "scheduling_off"))

    # --- submissions ------------------------------------------------------------------------------
    rc, out, err = run("qsub", "ok.pbs")
    check("qsub-ok rc", fx_rc("qsub-ok.rc"), rc)
    check("qsub-ok stderr", fx("qsub-ok.stderr"), err)
    check("qsub-ok stdout shape", True, re.fullmatch(r"\d+\.vm\n", out) is not None and
          re.fullmatch(r"\d+\.vm\n", fx("qsub-ok.stdout")) is not None, repr(out))
    SEQ["ok"] = int(out.split(".")[0])
    qsub("walltime", "walltime.pbs")
    qsub("exit3", "exit3.pbs")
    qsub("sig9", "sig9.pbs")
    qsub("running", "running.pbs")
    qsub("array", "array.pbs")
    qsub("env", "env.pbs")
    qsub("sig9exec", "-N", "fx-sig9exec", "-l", "walltime=00:05:00", "--", "/bin/bash", "-c", "kill -9 $$")

    # --- rejected submissions ---------------------------------------------------------------------
    for fixname, args in (("qsub-badqueue", ["-q", "nosuch", "ok.pbs"]),
                          ("qsub-badresource", ["-l", "nosuch=1", "ok.pbs"]),
                          ("qsub-badwalltime", ["-l", "walltime=abc", "ok.pbs"]),
                          ("qsub-badwalltime-directive", ["badwall.pbs"]),
                          ("qsub-nosuchfile", ["nosuch.pbs"])):
        rc, out, err = run("qsub", *args)
        cmp_exact_triplet(fixname, fixname, rc, out, err)

    # --- running jobs -----------------------------------------------------------------------------
    wait_for([("running", None, ("R", 42)), ("run41", None, ("R", 41))])
    global T_RUNNING
    T_RUNNING = time.time()
    time.sleep(1.2)   # one resources_used sample
    fr = parse_text_full(fx("qstat-f-with-unknown.txt"))
    sm = [(134, SEQ["run41"])]
    rc, out, err = run("qstat", "-f", jid("run41"))
    cmp_records("qstat-f-running.txt (substate 41)", parse_text_full(fx("qstat-f-running.txt")),
                parse_text_full(out), sm)
    rc, out, err = run("qstat", "-f", "-F", "json", jid("run41"))
    cmp_json("qstat-f-running.json (substate 41)", fx("qstat-f-running.json"), out, sm)
    sm = [(134, SEQ["running"]), (135, SEQ["held"])]
    rc, out, err = run("qstat", "-f", jid("running"))
    cmp_records("qstat-f-with-unknown.txt first record (substate 42)", fr[:1], parse_text_full(out), sm)
    rc, out, err = run("qstat", "-f", jid("running"), "99999.vm", jid("held"))
    cmp_records("qstat-f-with-unknown.txt", fr, parse_text_full(out), sm)
    cmp_exact_triplet("qstat-f-with-unknown.txt", "qstat-f-with-unknown.txt", rc, out, err, sm, stdout_fix=True)
    rc, out, err = run("qstat", "-f", "-F", "json", jid("running"), "99999.vm", jid("held"))
    cmp_json("qstat-f-json-with-unknown.json", fx("qstat-f-json-with-unknown.json"), out, sm)
    cmp_exact_triplet("qstat-f-json-with-unknown.json", "qstat-f-json-with-unknown.json", rc, out, err, sm,
                      stdout_fix=True)

    # --- finished jobs ----------------------------------------------------------------------------
    wait_for([("ok", None, ("F", 92)), ("exit3", None, ("F", 93)), ("sig9", None, ("F", 93)),
              ("sig9exec", None, ("F", 93)), ("env", None, ("F", 92)), ("queued", None, ("F", 92)),
              ("array", "", ("F", 92))])
    for fixbase, key, bracket, fseq in (("qstat-xf-exit0", "ok", None, 128), ("qstat-xf-exit3", "exit3", None, 132),
                                        ("qstat-xf-signal9", "sig9", None, 133),
                                        ("qstat-xf-signal9-exec", "sig9exec", None, 138),
                                        ("qstat-xf-array-parent", "array", "", 136),
                                        ("qstat-xf-array-subjob2", "array", "2", 136)):
        sm = [(fseq, SEQ[key])]
        rc, out, err = run("qstat", "-xf", jid(key, bracket))
        check(fixbase + ".txt rc/stderr", (0, ""), (rc, err))
        cmp_records(fixbase + ".txt", parse_text_full(fx(fixbase + ".txt")), parse_text_full(out), sm)
        rc, out, err = run("qstat", "-xf", "-F", "json", jid(key, bracket))
        cmp_json(fixbase + ".json", fx(fixbase + ".json"), out, sm)
    sm = [(136, SEQ["array"])]
    rc, out, err = run("qstat", "-xf", "-t", jid("array", ""))
    cmp_records("qstat-xf-t-array.txt", parse_text_full(fx("qstat-xf-t-array.txt")), parse_text_full(out), sm)
    rc, out, err = run("qstat", "-xf", "-t", "-F", "json", jid("array", ""))
    cmp_json("qstat-xf-t-array.json", fx("qstat-xf-t-array.json"), out, sm)
    rc, out, err = run("qstat", "-x", "-t", jid("array", ""))
    cmp_short("qstat-x-t-array.txt", fx("qstat-x-t-array.txt"), out, sm)

    ok_sm = [(128, SEQ["ok"])]
    for fixname, args in (("qstat-finished-no-x", [jid("ok")]), ("qstat-f-finished-no-x", ["-f", jid("ok")])):
        rc, out, err = run("qstat", *args)
        cmp_exact_triplet(fixname, fixname, rc, out, err, ok_sm)
    for fixname, args in (("qstat-unknown", ["99999.vm"]), ("qstat-f-unknown", ["-f", "99999.vm"]),
                          ("qstat-xf-unknown", ["-xf", "99999.vm"])):
        rc, out, err = run("qstat", *args)
        cmp_exact_triplet(fixname, fixname, rc, out, err)

    sm = [(128, SEQ["ok"]), (134, SEQ["running"])]
    rc, out, err = run("qstat", "-f", "-F", "json", jid("ok"), jid("running"))
    cmp_json("qstat-f-json-finished-no-x.json", fx("qstat-f-json-finished-no-x.json"), out, sm)
    cmp_exact_triplet("qstat-f-json-finished-no-x.json", "qstat-f-json-finished-no-x.json", rc, out, err, sm,
                      stdout_fix=True)
    rc, out, err = run("qstat", "-xf", "-F", "json", jid("ok"), "99999.vm", jid("running"))
    cmp_json("qstat-xf-json-with-finished-and-unknown.json", fx("qstat-xf-json-with-finished-and-unknown.json"),
             out, sm)
    cmp_exact_triplet("qstat-xf-json-with-finished-and-unknown.json",
                      "qstat-xf-json-with-finished-and-unknown.json", rc, out, err, sm, stdout_fix=True)

    b3 = [(128, SEQ["ok"]), (132, SEQ["exit3"]), (133, SEQ["sig9"])]
    rc, out, err = run("qstat", "-xf", jid("ok"), jid("exit3"), jid("sig9"))
    check("qstat-xf-batched3 rc/stderr", (0, ""), (rc, err))
    cmp_records("qstat-xf-batched3.txt", parse_text_full(fx("qstat-xf-batched3.txt")), parse_text_full(out), b3)
    rc, out, err = run("qstat", "-xf", "-F", "dsv", jid("ok"), jid("exit3"), jid("sig9"))
    check("qstat-xf-dsv-batched3 rc/stderr", (0, ""), (rc, err))
    cmp_records("qstat-xf-dsv-batched3.txt", parse_dsv(fx("qstat-xf-dsv-batched3.txt")), parse_dsv(out), b3)
    rc, out, err = run("qstat", "-xf", "-F", "json", jid("ok"), jid("exit3"), jid("sig9"))
    check("qstat-xf-json-batched3 rc/stderr", (0, ""), (rc, err))
    cmp_json("qstat-xf-json-batched3.json (openpbs#2672)", fx("qstat-xf-json-batched3.json"), out, b3)
    rc, out, err = run("qstat", "-xf", "-F", "json", jid("exit3"), jid("sig9"), jid("ok"))
    cmp_json("qstat-xf-json-batched3-reordered.json", fx("qstat-xf-json-batched3-reordered.json"), out, b3)
    rc, out, err = run("qstat", "-xf", "-F", "json", jid("ok"), jid("exit3"), jid("sig9"),
                       env={"PBS_EMU_FIX_JSON_BATCH": "1"})
    check("PBS_EMU_FIX_JSON_BATCH=1 returns every job", [jid("ok"), jid("exit3"), jid("sig9")],
          list(json.loads(out).get("Jobs", {})))
    rc, out, err = run("qstat", "-x", "-F", "json", jid("ok"), jid("exit3"), jid("sig9"))
    cmp_exact_triplet("qstat-x-json-no-f.txt", "qstat-x-json-no-f.txt", rc, out, err)
    sm = [(128, SEQ["ok"]), (132, SEQ["exit3"]), (134, SEQ["running"])]
    rc, out, err = run("qstat", "-x", jid("ok"), jid("exit3"), jid("running"))
    check("qstat-x-batched3 rc/stderr", (0, ""), (rc, err))
    cmp_short("qstat-x-batched3.txt", fx("qstat-x-batched3.txt"), out, sm)

    # --- qdel ---------------------------------------------------------------------------------------
    # the recorded qdel'd job had run long enough to report its session_id (PBS_EMU_SESSION_ID_AFTER)
    while time.time() - T_RUNNING < 3.5:
        time.sleep(0.1)
    for fixname, args, sm in (("qdel-finished", [jid("ok")], ok_sm), ("qdel-unknown", ["99999.vm"], []),
                              ("qdel-bad-id", ["notanid"], []),
                              ("qdel-running", [jid("running")], []), ("qdel-held", [jid("held")], [])):
        rc, out, err = run("qdel", *args)
        cmp_exact_triplet(fixname, fixname, rc, out, err, sm)
    run("qdel", jid("run41"))
    wait_for([("running", None, ("F", 91)), ("held", None, ("F", 91)), ("walltime", None, ("F", 93)),
              ("run41", None, ("F", 91))])
    for fixbase, key, fseq in (("qstat-xf-qdel-running", "running", 134), ("qstat-xf-qdel-held", "held", 135),
                               ("qstat-xf-walltime", "walltime", 131)):
        sm = [(fseq, SEQ[key])]
        rc, out, err = run("qstat", "-xf", jid(key))
        cmp_records(fixbase + ".txt", parse_text_full(fx(fixbase + ".txt")), parse_text_full(out), sm)
        rc, out, err = run("qstat", "-xf", "-F", "json", jid(key))
        cmp_json(fixbase + ".json", fx(fixbase + ".json"), out, sm)

    # --- output files -------------------------------------------------------------------------------
    s = SEQ
    files = sorted(f for f in os.listdir(W) if not f.endswith(".pbs"))
    expect = sorted(["fx-ok.log", "fx-exit3.out", "fx-exit3.err", "fx-sig9.o%d" % s["sig9"],
                     "fx-sig9.e%d" % s["sig9"], "fx-walltime.o%d" % s["walltime"],
                     "fx-running.o%d" % s["running"], "fx-running.o%d" % s["run41"], "fx-queued.o%d" % s["queued"],
                     "fx-array.o%d.1" % s["array"], "fx-array.o%d.2" % s["array"], "fx-array.o%d.3" % s["array"],
                     "fx-env.o%d" % s["env"], "fx-env.e%d" % s["env"],
                     "fx-sig9exec.o%d" % s["sig9exec"], "fx-sig9exec.e%d" % s["sig9exec"]])
    check("output files in the submit dir (README table)", expect, files)
    check("output file modes are 0600", ["0o600"] * len(files),
          [oct(stat.S_IMODE(os.stat(os.path.join(W, f)).st_mode)) for f in files])

    def content(f):
        p = os.path.join(W, f)
        return open(p).read() if os.path.exists(p) else "<missing>"
    check("fx-ok.log", "hello\n", content("fx-ok.log"))
    check("fx-exit3.out / .err", ("about to fail\n", "to stderr\n"), (content("fx-exit3.out"), content("fx-exit3.err")))
    check("fx-running.o (qdel'd, empty)", "", content("fx-running.o%d" % s["running"]))
    check("fx-array.o.N", ["subjob 1\n", "subjob 2\n", "subjob 3\n"],
          [content("fx-array.o%d.%d" % (s["array"], i)) for i in (1, 2, 3)])
    check("joboutput-sig9.o133.txt", fx("joboutput-sig9.o133.txt"), content("fx-sig9.o%d" % s["sig9"]))
    pat = r"-bash: line 1: +\d+ Killed +(\S+)\.SC\n"
    e9 = content("fx-sig9.e%d" % s["sig9"])
    check("joboutput-sig9.e133.txt shape", (True, "133.vm"),
          (re.fullmatch(pat, e9) is not None, os.path.basename(re.fullmatch(pat, fx("joboutput-sig9.e133.txt")).group(1))),
          repr(e9))
    check("joboutput-sig9.e133.txt script name", "%d.vm" % s["sig9"],
          os.path.basename((re.fullmatch(pat, e9) or re.match("(.*)", "")).group(1) or ""))
    wt = content("fx-walltime.o%d" % s["walltime"]).splitlines()
    ewt = fx("joboutput-walltime.o131.txt").splitlines()
    shape = r"=>> PBS: job killed: walltime \d+ exceeded limit 3"
    check("joboutput-walltime.o131.txt", [ewt[0], True, 2], [wt[0] if wt else None,
                                                               bool(wt[1:] and re.fullmatch(shape, wt[1])), len(wt)])
    check("fx-sig9exec.o / .e", ("", ""), (content("fx-sig9exec.o%d" % s["sig9exec"]),
                                           content("fx-sig9exec.e%d" % s["sig9exec"])))

    # --- job environment (job-env.txt) ---------------------------------------------------------------
    envtxt = content("fx-env.o%d" % s["env"])
    got = dict(l.split("=", 1) for l in envtxt.splitlines() if "=" in l)
    exp = dict(l.split("=", 1) for l in fx("job-env.txt").splitlines())
    not_emulated = {"MANPATH"}   # set by PBS's profile.d script, not by the mom
    check("job-env.txt variables", sorted(set(exp) - not_emulated), sorted(got))
    same = ["ENVIRONMENT", "NCPUS", "OMP_NUM_THREADS", "PBS_ENVIRONMENT", "PBS_JOBNAME", "PBS_MOMPORT",
            "PBS_NODENUM", "PBS_O_HOST", "PBS_O_INTERACTIVE_AUTH_METHOD", "PBS_O_INTERACTIVE_ENCRYPT_METHOD",
            "PBS_O_LANG", "PBS_O_QUEUE", "PBS_O_SHELL", "PBS_O_SYSTEM", "PBS_QUEUE", "PBS_TASKNUM", "SHELL",
            "SHLVL", "_", "PBS_JOBID", "PBS_O_WORKDIR", "PBS_O_HOME", "PBS_O_LOGNAME", "LOGNAME", "USER",
            "HOME", "PWD", "PBS_JOBDIR", "PBS_O_PATH"]
    em = [(137, s["env"])]
    check("job-env.txt values", ["%s=%s" % (k, map_fixture(exp[k], em)) for k in same],
          ["%s=%s" % (k, got.get(k)) for k in same])
    check("job-env.txt shapes", [True, True, True],
          [re.fullmatch(r"[0-9A-F]{32}", got.get("PBS_JOBCOOKIE", "")) is not None,
           got.get("TMPDIR", "").endswith("/pbs.%d.vm" % s["env"]),
           got.get("PBS_NODEFILE", "").endswith("/%d.vm" % s["env"])])

    # --- the runners must not have logged anything (tracebacks) -------------------------------------
    log = os.path.join(EH, "log", "runner.log")
    check("runner.log is empty", "", open(log).read() if os.path.exists(log) else "")

    # --- loud failure for what is not emulated ---------------------------------------------------------
    for cmd in (["qstat", "-a"], ["qsub", "-I", "ok.pbs"], ["qsub", "-W", "sandbox=PRIVATE", "ok.pbs"]):
        rc, out, err = run(*cmd)
        check("unsupported: %s" % " ".join(cmd), (2, True), (rc, err.startswith("pbsemu: unsupported option ")), err)
    real_scenarios()
    interactive_scenarios()
    log = os.path.join(EH, "log", "runner.log")
    check("runner.log is empty after the pbs-real scenarios", "", open(log).read() if os.path.exists(log) else "")
    return finish()


def _terminate(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


signal.signal(signal.SIGTERM, _terminate)
signal.signal(signal.SIGHUP, _terminate)
try:
    sys.exit(main())
except SystemExit:
    raise
except BaseException:
    import traceback
    traceback.print_exc()
    FAILS.append("exception")
    finish()
    sys.exit(2)
finally:
    cleanup()
PY
