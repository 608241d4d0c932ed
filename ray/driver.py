# Wharf's driver for a Ray-backed compute cluster.
#
# Submitted by the Wharf server as one long-lived Ray job per cluster. It
# long-polls the server for step attempts, runs each as a Ray task, and
# reports back. Every report is sent again until the server acknowledges
# it, so a server that restarts while tasks run finds them and follows
# them. The driver holds the compute's credential; a task holds only its
# job's token, and the step's command sees neither the credential nor the
# driver's environment.
#
# Task options: options_of() turns an assignment's "options" into
# ray.remote options (num_cpus, num_gpus, memory, resources);
# a placement group, when an assignment names one, is made here and its
# ranks' tasks scheduled in it (see Distributed), or, for an MPI step,
# mpirun's task and Open MPI's daemons' (see MPIRun).

import concurrent.futures
import fcntl
import hashlib
import io
import json
import os
import platform
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request

import ray

URL = os.environ["WHARF_URL"].rstrip("/")
BASE = os.environ["WHARF_COMPUTE_PATH"]
DRIVER = os.environ["WHARF_DRIVER"]
# The one-time code this driver trades for the compute's token (register):
# the Ray job's runtime_env is readable from the dashboard, so it carries a
# code that is spent before a step could read it, never the token.
CODE = os.environ.pop("WHARF_DRIVER_CODE")
TOKEN = None
# Set empty in every task's environment, so that no worker process (and
# so no step) inherits the code from the job's runtime_env.
HIDDEN = {"WHARF_DRIVER_CODE": ""}


class Gone(Exception):
    """The server says the request will never succeed (the attempt or job
    is over, or this driver was replaced)."""


class NotStarted(Exception):
    """The step could not be set up on the node (its program or its
    environment); the message says why, and the step never ran."""


def request(method, path, token, data=None, timeout=90, content_type="application/json", length=None):
    """Opens a request to the server; the caller reads and closes the
    answer. An error status raises Gone when sending again cannot help."""
    req = urllib.request.Request(URL + path, data=data, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", content_type)
    if length is not None:
        req.add_header("Content-Length", str(length))
    try:
        return urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        text = e.read().decode(errors="replace")[:500]
        if e.code in (400, 401, 403, 404, 409, 410):
            raise Gone("%s %s: %d %s" % (method, path, e.code, text))
        raise IOError("%s %s: %d %s" % (method, path, e.code, text))


def call(method, path, token, body=None, timeout=90, content_type="application/json"):
    data = body
    if body is not None and content_type == "application/json":
        data = json.dumps(body).encode()
    with request(method, path, token, data, timeout, content_type) as resp:
        return resp.read()


def until_acknowledged(fn, what, give_up=None):
    """Calls fn until it returns, pausing between tries; Gone ends it."""
    pause = 0.05
    start = time.monotonic()
    while True:
        try:
            return fn()
        except Gone:
            raise
        except Exception as e:  # the server is down or restarting
            if give_up is not None and time.monotonic() - start > give_up:
                raise IOError("%s: gave up after %.0f s: %s" % (what, give_up, e))
            time.sleep(pause)
            pause = min(pause * 2, 2.0)


def rebase(text, old, new):
    return text.replace(old, new) if old else text


class LogSender:
    """Streams the command's output to the attempt's log, in order, each
    chunk sent again until the server has it."""

    def __init__(self, a):
        self.a = a
        self.buf = bytearray()
        self.offset = 0
        self.cv = threading.Condition()
        self.closed = False
        self.gone = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def write(self, b):
        with self.cv:
            self.buf += b
            self.cv.notify()

    def close(self):
        with self.cv:
            self.closed = True
            self.cv.notify()
        self.thread.join()

    def run(self):
        while True:
            with self.cv:
                while not self.buf and not self.closed:
                    self.cv.wait()
                if not self.buf and self.closed:
                    return
                # Let a burst of lines gather into one request.
                if not self.closed and len(self.buf) < 65536:
                    self.cv.wait(0.05)
                chunk = bytes(self.buf[:1 << 20])
            if not self.gone:
                path = self.a["log"] + "?offset=%d" % self.offset
                try:
                    body = until_acknowledged(lambda: call("POST", path, self.a["token"], chunk,
                                                           content_type="application/octet-stream"), "log")
                    end = json.loads(body or b"{}").get("end", self.offset + len(chunk))
                except Gone:
                    self.gone = True
                    end = self.offset + len(chunk)
                sent = max(0, min(len(chunk), end - self.offset))
                if end < self.offset:
                    sent = len(chunk)
            else:
                sent = len(chunk)
            with self.cv:
                del self.buf[:sent]
                self.offset += sent


def safe_members(tf):
    """The server sends regular files and folders only; anything else, or
    a path leaving the folder, is refused (for Pythons without
    tarfile's data filter)."""
    for m in tf:
        name = os.path.normpath(m.name)
        if not (m.isfile() or m.isdir()) or os.path.isabs(name) or name.startswith(".."):
            raise IOError("the step's files hold %r, which is not a plain file or folder inside them" % m.name)
        yield m


def fetch_files(a, root):
    """Streams the attempt's folders from the server into root, without
    holding them in memory."""
    def get():
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root)
        with request("GET", a["files"], a["token"], timeout=600) as resp:
            with tarfile.open(fileobj=resp, mode="r|*") as tf:
                if hasattr(tarfile, "data_filter"):
                    tf.extractall(root, filter="data")
                else:
                    tf.extractall(root, members=safe_members(tf))
    until_acknowledged(get, "fetching the step's files", give_up=600)


def pack_outputs(tf, root):
    """Adds the folders of an attempt that go back to the server to tf."""
    for name in ("outputs", os.path.join("code", "outputs"), os.path.join("code", "logs")):
        p = os.path.join(root, name)
        if os.path.isdir(p):
            tf.add(p, arcname=name)


def outputs_tar(root):
    """The folders of an attempt that go back to the server, as a tar in
    memory: a rank's, which its task returns to the driver."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        pack_outputs(tf, root)
    return buf.getvalue()


def send_outputs(a, root):
    """Packs the outputs into a file beside root and sends it, again until
    the server has it."""
    packed = root + ".outputs.tar"
    try:
        with tarfile.open(packed, mode="w") as tf:
            pack_outputs(tf, root)
        size = os.path.getsize(packed)

        def put():
            with open(packed, "rb") as f:
                with request("PUT", a["outputs"], a["token"], f, timeout=600,
                             content_type="application/x-tar", length=size) as resp:
                    resp.read()
        until_acknowledged(put, "sending outputs")
    finally:
        try:
            os.remove(packed)
        except OSError:
            pass


# ---- the server's executable on the node ----------------------------------
#
# Steps run the server's own program as $WHARF (its built-in components)
# and their Python environments are built by it (wharf env build). A node
# fetches it once, from the first task that needs it, into a cache folder
# of the node keyed by its digest; every later task finds it there. The
# cached file is checked against the digest when it was written, and
# again whenever it changed since (its inode, size or modification time
# differ from what was checked): a corrupted copy is fetched again, never
# run.

ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "i386": "386",
          "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def node_platform():
    """This node's GOOS/GOARCH."""
    m = platform.machine().lower()
    return "%s/%s" % (platform.system().lower(), ARCHES.get(m, m))


def node_cache():
    """The node's cache folder: WHARF_NODE_CACHE where the node sets it,
    else a wharf folder in the node's Ray temp folder (which outlives Ray
    sessions), else in the system's."""
    d = os.environ.get("WHARF_NODE_CACHE")
    if not d:
        try:
            d = os.path.join(ray._private.worker.global_worker.node.get_temp_dir_path(), "wharf")
        except Exception:
            d = os.path.join(tempfile.gettempdir(), "wharf-%d" % os.getuid())
    os.makedirs(d, mode=0o700, exist_ok=True)
    return d


def file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def stat_key(path):
    st = os.stat(path)
    return "%d %d %d" % (st.st_ino, st.st_size, st.st_mtime_ns)


def write_atomically(path, fill, mode=0o644):
    """Makes path appear whole or not at all: fill writes into a new file
    beside it, which is renamed over it; a fill that raises leaves
    nothing."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            fill(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def record_check(path, checked):
    key = stat_key(path).encode()
    write_atomically(checked, lambda f: f.write(key))


def cached_ok(path, checked):
    """Whether path is the program whose check is recorded in checked."""
    try:
        with open(checked) as f:
            return f.read() == stat_key(path)
    except OSError:
        return False


def node_wharf(a, say):
    """Returns the path of the server's executable on this node, fetching
    it with the task's token when the node has no good copy. say writes
    bytes to the step's log."""
    w = a.get("wharf")
    if not w:
        raise IOError("the server sent no description of its executable, so $WHARF cannot be set")
    want, here = "%s/%s" % (w["goos"], w["goarch"]), node_platform()
    if want != here:
        raise IOError("this node (%s) is %s, and the server's wharf executable is built for %s: "
                      "nodes of a Ray-backed cluster need the server's OS and architecture" % (socket.gethostname(), here, want))
    digest = w["sha256"]
    folder = os.path.join(node_cache(), "bin", digest)
    path, checked = os.path.join(folder, "wharf"), os.path.join(folder, "checked")
    if cached_ok(path, checked):
        return path
    os.makedirs(folder, mode=0o755, exist_ok=True)
    with open(os.path.join(folder, ".lock"), "a") as lock:
        # One fetch per node: tasks starting together wait for the first.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if cached_ok(path, checked):
            return path
        if os.path.exists(path):
            if file_digest(path) == digest:
                record_check(path, checked)
                return path
            say(("[ray] the cached wharf executable %s does not match its digest %s; fetching it again\n" % (path, digest)).encode())
            os.remove(path)
        fetch_wharf(a, w, path)
        record_check(path, checked)
        say(("[ray] fetched the server's wharf executable (%d bytes, sha256 %s) into %s\n" % (w["size"], digest[:12], folder)).encode())
    return path


def fetch_wharf(a, w, path):
    """Streams the server's executable into path, checking its digest."""
    def fill(f):
        h = hashlib.sha256()
        with request("GET", w["path"], a["token"], timeout=600) as resp:
            while True:
                b = resp.read(1 << 20)
                if not b:
                    break
                h.update(b)
                f.write(b)
        if h.hexdigest() != w["sha256"]:
            raise Gone("the server's executable arrived with digest %s, not %s (the server was upgraded meanwhile?)"
                       % (h.hexdigest(), w["sha256"]))
    until_acknowledged(lambda: write_atomically(path, fill, 0o755), "fetching the server's wharf executable", give_up=600)


def pump(f, write):
    """Hands what a process writes to f to write, as it comes, until the
    process closes it."""
    while True:
        b = os.read(f.fileno(), 65536)
        if not b:
            return
        write(b)


def host_python():
    """The flags that name this worker's Python, which a step whose
    environment asks for no Python of its own gets its overlay on, with
    what the Python knows of itself, so that wharf need not start it to
    ask (tens of milliseconds a step)."""
    import site
    facts = {"executable": os.path.realpath(sys.executable), "version": "%d.%d.%d" % sys.version_info[:3]}
    if sys.prefix != sys.base_prefix:
        facts["venv_site"] = site.getsitepackages()
    return ["--host-python", sys.executable, "--host-python-facts", json.dumps(facts)]


def build_env(a, wharf, root, write):
    """Builds the step's Python environment on this node with the server's
    builder (`wharf env build`, cached in the node's cache folder; its
    commands sandboxed as the step is) and its overlay in root, as local
    compute does; the build's log goes to the step's. A step whose
    environment asks for no Python of its own (an image alone) gets its
    overlay on the Ray worker's Python, as a local one gets it on the
    host's: what it installs with pip stays in its folder. Returns the PATH
    to put first and the variables to set."""
    spec = a.get("python")
    host = []
    if not spec:
        spec, host = {}, host_python()
    spec_file = os.path.join(root, "environment.json")
    with open(spec_file, "w") as f:
        json.dump(spec, f)
    env = dict(os.environ)
    env.update({"PYTHONUNBUFFERED": "1", "WHARF_DRIVER_CODE": ""})
    argv = [wharf, "env", "build", "--spec-file", spec_file, "--cache-dir", os.path.join(node_cache(), "envs"),
            "--overlay", os.path.join(root, "venv")] + host
    if (a.get("options") or {}).get("unsandboxed"):
        # The build runs the installed packages' build code, as the
        # step runs its own: sandboxed unless the compute's steps are not.
        argv.append("--unsandboxed")
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=no_children_outlive_me)
    out = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)
    reader.start()
    pump(proc.stderr, write)
    code = proc.wait()
    reader.join()
    try:
        res = json.loads(out[0] or b"{}")
    except ValueError:
        res = {}
    if code != 0 or res.get("error"):
        raise NotStarted("preparing the environment failed: " + (res.get("error") or "wharf env build exited with code %d" % code))
    return res.get("path", ""), {"VIRTUAL_ENV": res["virtual_env"]} if res.get("virtual_env") else {}


def no_children_outlive_me():
    # The step's process dies with the worker that started it, which
    # ray.cancel(force=True) kills.
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def sandboxed_process(wharf, argv, env, root, read_only, make_overlay=False):
    """Starts argv through `wharf sandbox exec`, as local compute runs a
    step: in its own mount, PID, IPC and UTS namespaces (bwrap), as an
    unprivileged user where the worker is root. It sees the system's
    folders, its own folder (writable, with its environment's overlay),
    the worker's Python, the node's built environments and the server's
    executable, and neither this driver's processes nor their
    /proc entries, so it cannot read the compute token from the driver's
    memory or environment. The network is shared. The spec, environment
    included, goes on standard input, never on a command line. read_only
    are the node's folders the compute shows its steps besides
    (read_only_paths). With make_overlay, `wharf sandbox exec` makes the step's
    own layer on the worker's Python in root and runs it there, as
    `wharf env build` would for a step whose environment asks for no
    Python of its own: one process start fewer."""
    mounts = [{"path": root, "writable": True}] + [{"path": p} for p in read_only]
    overlay = os.path.join(root, "venv")
    if os.path.isdir(overlay):
        # The step's own layer (build_env), which it installs into: named
        # writable, as the sandbox would otherwise mount a virtual
        # environment on PATH read-only.
        mounts.append({"path": overlay, "writable": True})
    for p in {sys.prefix, sys.base_prefix, os.path.dirname(wharf), os.path.join(node_cache(), "envs")}:
        if p and os.path.exists(p):
            mounts.append({"path": p})
    spec = {"argv": argv, "env": ["%s=%s" % kv for kv in env.items()], "dir": os.path.join(root, "code"),
            "mounts": mounts}
    argv = [wharf, "sandbox", "exec"]
    if make_overlay:
        argv += ["--overlay", overlay] + host_python()
    proc = subprocess.Popen(argv, env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")},
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=no_children_outlive_me)
    proc.stdin.write(json.dumps(spec).encode())
    proc.stdin.close()
    return proc


def node_tools(a, write):
    """Returns the server's executable on this node and whether the step's
    processes run sandboxed, raising NotStarted when the node cannot run
    them."""
    try:
        wharf = node_wharf(a, write)
    except (IOError, OSError, Gone) as e:
        raise NotStarted(str(e))
    sandboxed = not (a.get("options") or {}).get("unsandboxed")
    if sandboxed and not shutil.which("bwrap"):
        raise NotStarted("this node (%s) has no bwrap, and steps on compute %s run sandboxed: install bubblewrap on "
                         "every node (apt-get install bubblewrap), or set sandbox: false on the compute to run its "
                         "steps as the Ray worker's user" % (socket.gethostname(), BASE.rsplit("/", 1)[-1]))
    missing = [p for p in read_only_paths(a) if sandboxed and not os.path.exists(p)]
    if missing:
        raise NotStarted("this node (%s) has no %s, which compute %s shows its steps read-only (sandbox_read_only_paths): "
                         "mount it on every node, or take it out of the compute's sandbox_read_only_paths"
                         % (socket.gethostname(), ", ".join(missing), BASE.rsplit("/", 1)[-1]))
    return wharf, sandboxed


def read_only_paths(a):
    """The node's folders the compute shows its sandboxed steps,
    read-only (its sandbox_read_only_paths)."""
    return (a.get("options") or {}).get("read_only_paths") or []


def run_command(a, root, extra_env, write, command=None):
    """Fetches the step's files into root and runs its command there (or
    command, a shell command naming root), with the assignment's
    environment and extra_env, handing what it writes to write. Returns
    its exit status (128+N for signal N)."""
    wharf, sandboxed = node_tools(a, write)
    fetch_files(a, root)
    # A sandboxed step whose environment asks for no Python of its own
    # gets its overlay from the process that sandboxes it.
    make_overlay = sandboxed and not a.get("python")
    python_path, python_vars = ("", {}) if make_overlay else build_env(a, wharf, root, write)
    old = a["dir"]
    env = dict(python_vars)
    env.update({k: rebase(v, old, root) for k, v in a["env"].items()})
    env.update({k: rebase(v, old, root) for k, v in extra_env.items()})
    # $WHARF, and `wharf` found last on PATH, as on local compute.
    env.setdefault("WHARF", wharf)
    path = os.path.dirname(sys.executable) + ":" + os.environ.get("PATH", "/usr/bin:/bin") + ":" + os.path.dirname(wharf)
    env["PATH"] = python_path + ":" + path if python_path else path
    for k in ("TMPDIR", "HOME"):
        env.setdefault(k, os.path.join(root, "tmp"))
    os.makedirs(os.path.join(root, "tmp"), exist_ok=True)
    for name in ("outputs", "logs"):
        os.makedirs(os.path.join(root, "code", name), exist_ok=True)
    if command is None:
        command = rebase(a["command"], old, root)
    return run_process(wharf, ["/bin/sh", "-c", command], env, root, sandboxed, write, read_only_paths(a), make_overlay)


def run_process(wharf, argv, env, root, sandboxed, write, read_only=(), make_overlay=False):
    """Runs argv in root's code folder, sandboxed (seeing read_only too;
    in an overlay it makes, with make_overlay) or as the worker's user,
    handing what it writes to write. Returns its exit status (128+N for
    signal N)."""
    if sandboxed:
        proc = sandboxed_process(wharf, argv, env, root, read_only, make_overlay)
    else:
        proc = subprocess.Popen(argv, cwd=os.path.join(root, "code"),
                                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=no_children_outlive_me)
    pump(proc.stdout, write)
    code = proc.wait()
    if code < 0:
        code = 128 - code
    return code


def run_step(a):
    """The body of a step's Ray task: fetch, run, stream, send outputs.
    Returns the command's exit status."""
    root = tempfile.mkdtemp(prefix="wharf-")
    log = LogSender(a)
    try:
        log.write(("[ray] attempt %s on node %s, worker pid %d\n" % (a["id"], socket.gethostname(), os.getpid())).encode())
        try:
            code = run_command(a, root, {}, log.write)
        except NotStarted as e:
            log.write(("[ray] %s\n" % e).encode())
            return {"error": str(e)}
        log.close()
        if code == 0:
            send_outputs(a, root)
        return {"exit_code": code}
    finally:
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def options_of(a):
    o = a.get("options") or {}
    opts = {"num_cpus": o.get("num_cpus", 1), "max_retries": 0,
            "runtime_env": {"env_vars": dict(HIDDEN)}}
    if o.get("num_gpus"):
        opts["num_gpus"] = o["num_gpus"]
    if o.get("memory"):
        opts["memory"] = o["memory"]
    if o.get("resources"):
        opts["resources"] = o["resources"]
    return opts


step_task = ray.remote(run_step)


# ---- distributed steps ---------------------------------------------------
#
# An assignment with "ranks" is a distributed step: the driver reserves a
# placement group of one bundle per instance and runs each rank as a Ray
# task in its instance's bundle. The ranks' lines reach the attempt's log
# through one LogSender here, prefixed with the rank, by way of a Ray queue;
# each rank sends back its folders, merged (rank 0's files win) and sent to
# the server once every rank succeeded. The first rank to fail ends the
# others. Where the processes meet is found on bundle 0's node.

MEETING_VARS = ("MASTER_ADDR", "MASTER_PORT", "AZ_BATCH_MASTER_NODE", "AZ_BATCHAI_MPI_MASTER_NODE")


class Cancelled(Exception):
    """The attempt was cancelled."""


def meeting_point():
    """This node's address and a TCP port free on it now."""
    s = socket.socket()
    s.bind(("", 0))
    port = s.getsockname()[1]
    s.close()
    return ray.util.get_node_ip_address(), port


def line_writer(queue, label):
    """A write function that puts whole lines on queue under label; its
    flush puts what is left."""
    pending = bytearray()

    def write(b):
        pending.extend(b)
        end = pending.rfind(b"\n") + 1
        if end:
            queue.put((label, bytes(pending[:end])))
            del pending[:end]

    def flush():
        if pending:
            queue.put((label, bytes(pending) + b"\n"))
            del pending[:]
    return write, flush


def meeting_vars(host, port):
    """The variables that say where a distributed step's processes meet
    (MEETING_VARS), at host:port."""
    return {"MASTER_ADDR": host, "MASTER_PORT": str(port), "AZ_BATCH_MASTER_NODE": "%s:%d" % (host, port),
            "AZ_BATCHAI_MPI_MASTER_NODE": host}


def run_for_result(a, root, env, write, flush, command=None):
    """Runs the step's command (or command) as run_command does, for a task
    whose output goes to write and flush; returns its exit status and,
    when 0, its folders as a tar."""
    try:
        code = run_command(a, root, env, write, command=command)
    except NotStarted as e:
        write(("[ray] %s\n" % e).encode())
        code = 1
    flush()
    return {"exit_code": code, "outputs": outputs_tar(root) if code == 0 else b""}


def run_rank(a, label, env, queue):
    """The body of one rank's Ray task: its output goes to queue a line at
    a time; returns its exit status and, when 0, its folders as a tar."""
    root = tempfile.mkdtemp(prefix="wharf-")
    write, flush = line_writer(queue, label)
    try:
        queue.put((label, ("[ray] %s on node %s, worker pid %d\n" % (label, socket.gethostname(), os.getpid())).encode()))
        return run_for_result(a, root, env, write, flush)
    finally:
        shutil.rmtree(root, ignore_errors=True)


class Distributed:
    """One distributed attempt, run from a thread of the driver."""

    def __init__(self, a):
        self.a = a
        self.cancelled = threading.Event()
        self.refs = []

    def cancel(self):
        self.cancelled.set()
        for ref in list(self.refs):
            try:
                ray.cancel(ref, force=True)
            except Exception:
                pass

    def release(self, log, pg, queue):
        """Ends the attempt's log and gives back its placement group and
        its queue (None when it was never made)."""
        from ray.util.placement_group import remove_placement_group
        log.close()
        remove_placement_group(pg)
        if queue is not None:
            queue.shutdown(force=True)

    def wait_ready(self, pg):
        ready = pg.ready()
        while not ray.wait([ready], timeout=0.5)[0]:
            if self.cancelled.is_set():
                raise Cancelled()

    def run(self):
        from ray.util.placement_group import placement_group
        from ray.util.queue import Queue
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy as InGroup

        a, o = self.a, self.a.get("options") or {}
        spec = o["placement_group"]
        log = LogSender(a)
        pg = placement_group(spec["bundles"], strategy=spec.get("strategy") or "PACK")
        queue = None
        try:
            log.write(("[ray] attempt %s: %d processes in a placement group of %d bundles (%s)\n" % (
                a["id"], len(a["ranks"]), len(spec["bundles"]), spec.get("strategy") or "PACK")).encode())
            self.wait_ready(pg)
            host, port = ray.get(ray.remote(meeting_point).options(
                num_cpus=0, scheduling_strategy=InGroup(pg, 0)).remote())
            meet = meeting_vars(host, port)
            queue = Queue(actor_options={"num_cpus": 0})
            task = ray.remote(run_rank)
            opts = options_of(a)
            opts.pop("num_gpus", None)
            if o.get("num_gpus"):
                opts["num_gpus"] = o["num_gpus"]
            tf = self.tf_configs(pg, InGroup, log)
            ranks = {}
            for i, r in enumerate(a["ranks"]):
                env = {k: (meet[k] if k in meet else v) for k, v in r["env"].items()}
                if tf:
                    env["TF_CONFIG"] = tf[i]
                ref = task.options(scheduling_strategy=InGroup(pg, r["bundle"]), **opts).remote(a, r["label"], env, queue)
                self.refs.append(ref)
                ranks[ref] = r["label"]
            results, failed = {}, None
            pending = list(self.refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=0.05)
                self.drain(queue, log)
                for ref in done:
                    try:
                        res = ray.get(ref)
                    except ray.exceptions.TaskCancelledError:
                        res = None
                    if res is not None:
                        results[ranks[ref]] = res
                    if failed is None and (res is None or res["exit_code"] != 0) and not self.cancelled.is_set():
                        failed = (ranks[ref], res["exit_code"] if res else -1)
                        for other in pending:
                            ray.cancel(other, force=True)
            self.drain(queue, log)
            if self.cancelled.is_set():
                raise Cancelled()
            if failed is not None:
                log.write(("[ray] %s exited with code %d; the other processes were stopped\n" % failed).encode())
                log.close()
                return {"exit_code": failed[1] if failed[1] > 0 else 1}
            log.close()
            self.send(results)
            return {"exit_code": 0}
        finally:
            self.release(log, pg, queue)

    def tf_configs(self, pg, InGroup, log):
        """For a tensorflow step, each process's TF_CONFIG with the cluster
        where the processes really are: the address of the node of each
        one's bundle and a port free there, found on that node before any
        process starts. None for other steps."""
        ranks = self.a["ranks"]
        if not all("TF_CONFIG" in r["env"] for r in ranks):
            return None
        places = ray.get([ray.remote(meeting_point).options(num_cpus=0, scheduling_strategy=InGroup(pg, r["bundle"])).remote()
                          for r in ranks])
        configs = [json.loads(r["env"]["TF_CONFIG"]) for r in ranks]
        cluster = {}
        for c, (host, port) in zip(configs, places):
            task = c["task"]
            members = cluster.setdefault(task["type"], [])
            members.extend([None] * (task["index"] + 1 - len(members)))
            members[task["index"]] = "%s:%d" % (host, port)
        log.write(("[ray] TF_CONFIG cluster: %s\n" % json.dumps(cluster, sort_keys=True)).encode())
        out = []
        for c in configs:
            c["cluster"] = cluster
            out.append(json.dumps(c))
        return out

    def drain(self, queue, log):
        try:
            items = queue.get_nowait_batch(queue.qsize())
        except Exception:
            return
        for label, chunk in items:
            prefix = ("[%s] " % label).encode()
            log.write(b"".join(prefix + line for line in chunk.splitlines(keepends=True)))

    def send(self, results):
        root = tempfile.mkdtemp(prefix="wharf-")
        try:
            # The last one extracted wins: rank 0's files over the others'.
            for label in sorted(results, key=lambda l: [int(p) if p.isdigit() else p for p in l.split()], reverse=True):
                with tarfile.open(fileobj=io.BytesIO(results[label]["outputs"]), mode="r:*") as tf:
                    if hasattr(tarfile, "data_filter"):
                        tf.extractall(root, filter="data")
                    else:
                        tf.extractall(root, members=safe_members(tf))
            send_outputs(self.a, root)
        finally:
            shutil.rmtree(root, ignore_errors=True)


# ---- MPI steps -------------------------------------------------------------
#
# An assignment with "mpi" runs under Open MPI's mpirun, as on local
# compute, across the bundles of its placement group. mpirun runs in a task
# in bundle 0 (sandboxed, as a step's processes are), with a hostfile that
# names bundle I wharf-bundle-I with the bundle's slots and this file's
# launch agent in place of ssh: where ssh would start Open MPI's daemon
# (orted) on a host, the agent hands the daemon's command line to the
# mpirun task over a unix socket in its folder, and that task runs it as a
# Ray task in the host's bundle. The daemon's task fetches the step's
# files and runs it as it runs a step's command (sandboxed, with the step's
# environment); the daemon connects back to mpirun over TCP and starts the
# bundle's processes, which inherit its environment and folder. No bundle
# is mpirun's own host, so mpirun starts no process itself. When mpirun
# ends, for success or for a failed process, its daemons and their
# processes end with it; cancelling the mpirun task ends the daemons'
# tasks, which it owns. Daemons run in the foreground (their
# --daemonize is dropped), so that each lives and dies with its task.

MPI_HOST = "wharf-bundle-%d"

# Open MPI's options for launching through the agent: each daemon is
# started from mpirun (not by other daemons, which cannot reach the
# agent's socket) and talks to mpirun directly.
MPI_LAUNCH = ["--mca", "plm_rsh_no_tree_spawn", "1", "--mca", "routed", "direct"]

# The launch agent, which mpirun runs as `agent HOST COMMAND...` in its
# sandbox: it hands the host and the command to the mpirun task over the
# socket named by WHARF_MPI_AGENT and exits with the daemon's status once
# the task says the daemon ended. Standard library only: it runs with the
# worker's Python.
MPI_AGENT = """import json, os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(os.environ["WHARF_MPI_AGENT"])
s.sendall(json.dumps({"host": sys.argv[1], "command": " ".join(sys.argv[2:])}).encode() + b"\\n")
answer = s.makefile("rb").readline().strip()
sys.exit(int(answer) if answer else 255)
"""

# The tag --tag-output puts before what a process writes: [JOB,RANK]<stdout>:
MPI_TAG = re.compile(rb"\[\d+,(\d+)\]<(?:stdout|stderr|stddiag)>:")


class MPIOutput:
    """Sorts mpirun's tagged output by rank, as local compute does: each
    rank's lines go to the queue labelled "rank N", mpirun's own labelled
    "mpirun"."""

    def __init__(self, queue):
        self.queue = queue
        self.pending = b""
        self.ranks = {}

    def feed(self, data, final=False):
        self.pending += data
        end = len(self.pending) if final else self.pending.rfind(b"\n") + 1
        lines, self.pending = self.pending[:end], self.pending[end:]
        own = []
        for line in lines.splitlines(keepends=True):
            tags = list(MPI_TAG.finditer(line))
            if not tags or tags[0].start() > 0:
                head = line[:tags[0].start()] if tags else line
                own.append(head if head.endswith(b"\n") else head + b"\n")
            for i, t in enumerate(tags):
                to = tags[i + 1].start() if i + 1 < len(tags) else len(line)
                r = int(t.group(1))
                self.ranks[r] = self.ranks.get(r, b"") + line[t.end():to]
        if own:
            self.queue.put(("mpirun", b"".join(own)))
        for r in sorted(self.ranks):
            buf = self.ranks[r]
            n = buf.rfind(b"\n") + 1
            if final and n < len(buf):
                buf += b"\n"
                n = len(buf)
            if n:
                self.queue.put(("rank %d" % r, buf[:n]))
                self.ranks[r] = buf[n:]

    def close(self):
        self.feed(b"", final=True)


def run_mpi_daemon(a, bundle, command, meet, queue):
    """The body of the Ray task that runs Open MPI's daemon for a bundle:
    the step's files in a folder of its own, the daemon's command line
    (from mpirun, through the agent) run there as a step's command is, with
    what the processes need to find their command and folder. Returns the
    daemon's exit status and, when 0, the bundle's folders as a tar."""
    root = tempfile.mkdtemp(prefix="wharf-")
    label = MPI_HOST % bundle
    write, flush = line_writer(queue, label)
    try:
        write(("[ray] Open MPI's daemon for %s, started by mpirun through the launch agent, on node %s (Ray node %s), "
               "worker pid %d, in %s\n" % (label, socket.gethostname(), ray.get_runtime_context().get_node_id()[:12],
                                           os.getpid(), root)).encode())
        if not shutil.which("orted", path=os.environ.get("PATH", "/usr/bin:/bin")):
            write(("[ray] this node (%s) has no orted, Open MPI's daemon, which runs the processes of an MPI "
                   "step: install Open MPI on every node (Debian and Ubuntu: apt-get install openmpi-bin)\n"
                   % socket.gethostname()).encode())
            return {"exit_code": 127, "outputs": b""}
        extra = dict(meet)
        extra.update({"WHARF_MPI_DIR": os.path.join(a["dir"], "code"), "WHARF_MPI_COMMAND": a["command"],
                      # Daemons on one machine would otherwise share
                      # /dev/shm, where Open MPI names its shared memory
                      # by host name and local rank alike.
                      "OMPI_MCA_btl_vader_backing_directory": os.path.join(a["dir"], "tmp")})
        if "CUDA_VISIBLE_DEVICES" in os.environ and "CUDA_VISIBLE_DEVICES" not in a["env"]:
            # The bundle's GPUs, which Ray gave this task.
            extra["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
        if (a.get("options") or {}).get("unsandboxed") and os.geteuid() == 0:
            extra.update({"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"})
        return run_for_result(a, root, extra, write, flush, command)
    finally:
        shutil.rmtree(root, ignore_errors=True)


mpi_daemon_task = ray.remote(run_mpi_daemon)


class MPIDaemons:
    """The daemons mpirun asked the agent for: each a Ray task in its
    bundle, started when the agent asks and answered with its exit status
    when it ends."""

    def __init__(self, a, pg, meet, queue):
        self.a, self.pg, self.meet, self.queue = a, pg, meet, queue
        self.bundles = a["options"]["placement_group"]["bundles"]
        self.refs = {}
        self.results = {}
        self.lock = threading.Lock()

    def serve(self, listener):
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed: mpirun ended
            threading.Thread(target=self.answer, args=(conn,), daemon=True).start()

    def answer(self, conn):
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy as InGroup
        with conn:
            try:
                req = json.loads(conn.makefile("rb").readline())
                host, command = req["host"], req["command"]
            except (ValueError, KeyError, TypeError, OSError):
                return
            bundle = next((i for i in range(len(self.bundles)) if host == MPI_HOST % i), None)
            if bundle is None:
                self.queue.put(("mpirun", ("[ray] mpirun asked for host %r, which is no bundle of the step\n" % host).encode()))
                conn.sendall(b"1\n")
                return
            command = re.sub(r"(^|\s)--daemonize(?=\s|$)", " ", command)
            b = self.bundles[bundle]
            opts = {"num_cpus": b.get("CPU", 1), "max_retries": 0, "runtime_env": {"env_vars": dict(HIDDEN)},
                    "scheduling_strategy": InGroup(self.pg, bundle)}
            if b.get("GPU"):
                opts["num_gpus"] = b["GPU"]
            ref = mpi_daemon_task.options(**opts).remote(self.a, bundle, command, self.meet, self.queue)
            with self.lock:
                self.refs[bundle] = ref
            while not ray.wait([ref], timeout=0.2)[0]:
                # The agent is gone (mpirun killed it): so is the daemon.
                if select.select([conn], [], [], 0)[0] and not conn.recv(1):
                    ray.cancel(ref, force=True)
                    break
            try:
                res = ray.get(ref)
            except Exception as e:
                res = {"exit_code": 255, "outputs": b""}
                self.queue.put((MPI_HOST % bundle, ("[ray] the daemon's task failed: %s\n" % str(e).strip()[-400:]).encode()))
            with self.lock:
                self.results[bundle] = res
            try:
                conn.sendall(b"%d\n" % res["exit_code"])
            except OSError:
                pass

    def outputs(self):
        """Waits for the daemons' tasks, which end with mpirun, and returns
        their folders by bundle, or None when one did not succeed."""
        with self.lock:
            refs = list(self.refs.values())
        if refs:
            _, late = ray.wait(refs, num_returns=len(refs), timeout=30)
            for ref in late:
                ray.cancel(ref, force=True)
        for _ in range(100):
            with self.lock:
                if len(self.results) == len(self.refs):
                    break
            time.sleep(0.05)
        with self.lock:
            if len(self.results) != len(self.bundles) or any(r["exit_code"] != 0 for r in self.results.values()):
                return None
            return [self.results[i]["outputs"] for i in range(len(self.bundles))]

    def stop(self):
        with self.lock:
            refs = list(self.refs.values())
        for ref in refs:
            try:
                ray.cancel(ref, force=True)
            except Exception:
                pass


def run_mpirun(a, pg, queue):
    """The body of an MPI step's mpirun task, in bundle 0: mpirun with the
    bundles as its hosts and the launch agent, its output sorted by rank
    onto queue. Returns its exit status and, when 0, the bundles' folders
    (bundle 0's first); or an error when it could not start. The step's
    meeting point is on this node, bundle 0's."""
    root = tempfile.mkdtemp(prefix="wharf-mpi-")
    say = lambda b: queue.put(("mpirun", b))
    meet = {k: v for k, v in meeting_vars(*meeting_point()).items() if k in a["env"]}
    daemons = MPIDaemons(a, pg, meet, queue)
    listener = None
    try:
        say(("[ray] mpirun on node %s, worker pid %d\n" % (socket.gethostname(), os.getpid())).encode())
        try:
            wharf, sandboxed = node_tools(a, say)
        except NotStarted as e:
            return {"error": str(e)}
        path = os.environ.get("PATH", "/usr/bin:/bin")
        mpirun = shutil.which("mpirun", path=path)
        if not mpirun:
            return {"error": "this node (%s) has no mpirun, which runs the steps of distribution type mpi: install "
                             "Open MPI on every node of the cluster (Debian and Ubuntu: apt-get install openmpi-bin)"
                             % socket.gethostname()}
        tmp = os.path.join(root, "tmp")
        for d in (tmp, os.path.join(root, "code")):
            os.makedirs(d)
        hostfile = os.path.join(root, "hostfile")
        with open(hostfile, "w") as f:
            for i in range(len(daemons.bundles)):
                f.write("%s slots=%d\n" % (MPI_HOST % i, a["mpi"]["slots"]))
        agent = os.path.join(root, "agent")
        with open(agent, "w") as f:
            f.write("#!%s\n%s" % (sys.executable, MPI_AGENT))
        os.chmod(agent, 0o755)
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(os.path.join(root, "agent.sock"))
        listener.listen(len(daemons.bundles))
        threading.Thread(target=daemons.serve, args=(listener,), daemon=True).start()
        env = {k: v for k, v in a["env"].items() if k.startswith(("OMPI_", "PMIX_", "HWLOC_"))}
        env.update({"PATH": os.path.dirname(sys.executable) + ":" + path, "HOME": tmp, "TMPDIR": tmp,
                    "WHARF_MPI_AGENT": os.path.join(root, "agent.sock"),
                    # The agent is named to mpirun alone: the daemons get
                    # mpirun's command-line options and, unless told
                    # otherwise, its OMPI_MCA_ variables, and would refuse
                    # to start without the agent's file, which is not on
                    # their node or in their sandbox. They have the step's
                    # own OMPI_MCA_ variables from its environment.
                    "OMPI_MCA_plm_rsh_agent": agent, "OMPI_MCA_plm_rsh_pass_environ_mca_params": "0",
                    # What the command line the agent gets is written for
                    # (the sandbox's user has no login shell).
                    "SHELL": "/bin/bash"})
        if not sandboxed and os.geteuid() == 0:
            env.update({"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"})
        argv = [mpirun, "--hostfile", hostfile] + MPI_LAUNCH + a["mpi"]["argv"][1:]
        out = MPIOutput(queue)
        code = run_process(wharf, argv, env, root, sandboxed, out.feed, read_only_paths(a))
        out.close()
        outputs = daemons.outputs()
        if code == 0 and outputs is None:
            say(b"[ray] mpirun succeeded, but a daemon's task did not\n")
            code = 1
        return {"exit_code": code, "outputs": outputs if code == 0 else []}
    finally:
        if listener is not None:
            listener.close()
        daemons.stop()
        shutil.rmtree(root, ignore_errors=True)


class MPIRun(Distributed):
    """One MPI attempt, run from a thread of the driver: mpirun's task in
    bundle 0 of the attempt's placement group, which starts the rest."""

    def run(self):
        from ray.util.placement_group import placement_group
        from ray.util.queue import Queue
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy as InGroup

        a = self.a
        spec = a["options"]["placement_group"]
        log = LogSender(a)
        pg = placement_group(spec["bundles"], strategy=spec.get("strategy") or "PACK")
        queue = None
        try:
            log.write(("[ray] attempt %s: %d processes under mpirun in a placement group of %d bundles (%s)\n" % (
                a["id"], a["mpi"]["slots"] * len(spec["bundles"]), len(spec["bundles"]),
                spec.get("strategy") or "PACK")).encode())
            self.wait_ready(pg)
            queue = Queue(actor_options={"num_cpus": 0})
            ref = ray.remote(run_mpirun).options(
                num_cpus=0, max_retries=0, runtime_env={"env_vars": dict(HIDDEN)},
                scheduling_strategy=InGroup(pg, 0)).remote(a, pg, queue)
            self.refs.append(ref)
            while not ray.wait([ref], timeout=0.05)[0]:
                self.drain(queue, log)
            try:
                res = ray.get(ref)
            except ray.exceptions.TaskCancelledError:
                res = None
            self.drain(queue, log)
            if self.cancelled.is_set():
                raise Cancelled()
            if res is None:
                res = {"error": "mpirun's Ray task was cancelled"}
            if res.get("error"):
                log.write(("[ray] %s\n" % res["error"]).encode())
                log.close()
                return {"error": res["error"]}
            if res["exit_code"] != 0:
                log.write(("[ray] mpirun exited with code %d; every process has ended\n" % res["exit_code"]).encode())
                log.close()
                return {"exit_code": res["exit_code"]}
            log.close()
            self.send({"bundle %d" % i: {"outputs": t} for i, t in enumerate(res["outputs"])})
            return {"exit_code": 0}
        finally:
            self.release(log, pg, queue)


# How long the driver remembers an attempt that ended, so that one offered
# again (the server did not hear it started) is acknowledged, not rerun.
ENDED_KEPT = 3600


class Driver:
    def __init__(self):
        self.running = {}  # attempt id -> ObjectRef, or Distributed
        self.ended_at = {}  # attempt id -> when it ended here
        self.lock = threading.Lock()
        self.reports = concurrent.futures.ThreadPoolExecutor(max_workers=8)
        self.distributed = concurrent.futures.ThreadPoolExecutor(max_workers=64)

    def report(self, attempt, body):
        path = BASE + "/driver/attempts/" + attempt

        def send():
            try:
                until_acknowledged(lambda: call("POST", path, TOKEN, body), "report")
            except Gone:
                pass
        self.reports.submit(send)

    def start(self, a):
        with self.lock:
            if a["id"] in self.running or a["id"] in self.ended_at:
                # Offered again: after a server restart, or because the
                # server did not hear it started. It runs once; the
                # server hears it again.
                self.report(a["id"], {"event": "submitted"})
                return
            if a.get("mpi"):
                ref = MPIRun(a)
            elif a.get("ranks"):
                ref = Distributed(a)
            else:
                try:
                    ref = step_task.options(**options_of(a)).remote(a)
                except Exception as e:
                    self.report(a["id"], {"event": "ended", "error": "the step could not be handed to Ray: %s" % e})
                    return
            self.running[a["id"]] = ref
        self.report(a["id"], {"event": "submitted"})
        fut = self.distributed.submit(ref.run) if isinstance(ref, Distributed) else ref.future()
        fut.add_done_callback(lambda f, aid=a["id"]: self.ended(aid, f))

    def ended(self, attempt, fut):
        body = {"event": "ended"}
        try:
            body.update(fut.result())
        except (ray.exceptions.TaskCancelledError, Cancelled):
            body["canceled"] = True
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as e:
            body["error"] = "the Ray worker running the step died (%s)" % type(e).__name__
        except ray.exceptions.RuntimeEnvSetupError as e:
            body["error"] = "Ray could not set up the step's runtime_env: %s" % str(e).strip().splitlines()[-1][:400]
        except Exception as e:
            body["error"] = "the step's Ray task failed: %s" % str(e).strip()[-800:]
        with self.lock:
            self.running.pop(attempt, None)
            now = time.monotonic()
            self.ended_at[attempt] = now
            for old in [k for k, t in self.ended_at.items() if now - t > ENDED_KEPT]:
                del self.ended_at[old]
        self.report(attempt, body)

    def cancel(self, attempt):
        with self.lock:
            ref = self.running.get(attempt)
        if isinstance(ref, Distributed):
            ref.cancel()
        elif ref is not None:
            try:
                ray.cancel(ref, force=True)
            except Exception as e:
                print("cancel %s: %s" % (attempt, e), flush=True)

    def loop(self):
        pause = 0.05
        while True:
            try:
                body = call("POST", BASE + "/driver/poll", TOKEN, {"driver": DRIVER, "wait_ms": 20000})
                pause = 0.05
            except Gone as e:
                print("the server no longer runs work through this driver: %s" % e, flush=True)
                return
            except Exception as e:
                print("poll: %s" % e, flush=True)
                time.sleep(pause)
                pause = min(pause * 2, 2.0)
                continue
            poll = json.loads(body)
            for a in poll.get("assign") or []:
                self.start(a)
            for attempt in poll.get("cancel") or []:
                self.cancel(attempt)


def register():
    """Trades the one-time code for the compute's token. A refusal (the
    code was spent by someone else) ends the driver: the server then
    submits another."""
    body = until_acknowledged(lambda: call("POST", BASE + "/driver/register", None, {"driver": DRIVER, "code": CODE}),
                              "register")
    return json.loads(body)["token"]


if __name__ == "__main__":
    ray.init()
    print("wharf driver %s for %s at %s" % (DRIVER, BASE, URL), flush=True)
    TOKEN = register()
    Driver().loop()
