#!/usr/bin/python3
"""The container image, built by `make image` and run with podman.

The image is akvtest.IMAGE (localhost/ak2vault:latest, what `make image`
tags). Where podman cannot work (not installed, not root, `podman info`
failing) every test prints "skip" with the reason; where it works and the
image is missing, they fail. The stand-ins (mock-kafka, fake-vault,
fake-authentik) run on loopback, the containers with `--network host`, as
the image's user, with a read-only root file system (and no tmpfs: the
worker needs no writable path), no capabilities and no privilege
escalation, as docker/kubernetes runs it.

  1. the image's labels carry the Makefile's version, the commit and the
     build time; its size is reported and within README's budget
     ("image size budget: N MB");
  2. it runs as its non-root user and cannot write its root file system;
  3. `ak2vault version` prints the labelled version; `check-config` passes
     on the image's example configuration and, with --connect, against
     the stand-ins; a bad configuration is refused with its line;
  4. the containerised worker syncs 30 tokens end to end (created, keys
     set and rotated, one deleted) until Vault matches authentik;
  5. the image's HEALTHCHECK passes on that worker, fails with /livez's
     503 once its poll loop is stuck (its main thread stopped with ptrace,
     the HTTP thread still answering), and passes again once it turns;
  6. `podman stop` (SIGTERM) while a sync is in flight (authentik's key
     reads slowed to 3 s): the worker finishes it, commits, exits 0;
     what it had not started stays uncommitted, and the next container of
     the group syncs it;
  7. a build without build arguments (a user's `docker build`) is
     labelled and prints the release version;
  8. the binary finds every shared library inside (`ldd`); the image holds
     no compiler, build tool or -dev package, no package cache or lists,
     no test binary or stand-in and no source;
  9. no captured output (the containers' logs included) holds a secret.
"""
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import ctypes  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import akvtest  # noqa: E402
from akvtest import SECRETS, depends, note, podman  # noqa: E402

S = SimpleNamespace(rundir=None, stack=None, info=None, mount=None,
                    worker=None, worker_name=None, port=None, created=[],
                    names=[])
GROUP = "ak2vault-image"
CFG_IN_IMAGE = "/etc/ak2vault/ak2vault.cfg"
# A small live timeout, so that a stuck poll loop shows within seconds.
LIVE_TIMEOUT_MS = 2000
SYNC_TIMEOUT = 60
# As docker/kubernetes/deployment.yaml runs the container.
CONFINED = ("--read-only", "--read-only-tmpfs=false", "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges")
# What a runtime image must not hold (file names anywhere in it).
BUILD_TOOLS = ("gcc", "cc", "c99", "cpp", "make", "ld", "as", "pkg-config",
               "clang", "tcc")
TEST_BINARIES = ("mock-kafka", "fake-vault", "fake-authentik",
                 "akv-bench-gen", "akv-produce", "kafka-local", "vault")


def setup(rundir):
    S.rundir = rundir


def teardown(rundir):
    for name in S.names:
        podman("rm", "--force", "--time", "2", name, check=False)
    if S.mount:
        podman("image", "unmount", akvtest.IMAGE, check=False)
    if S.stack:
        S.stack.stop()


def container_name(what):
    name = "akv-test-image-%d-%s" % (os.getpid(), what)
    S.names.append(name)
    return name


def run_in_image(*args, env=None, volumes=(), network=False, timeout=60,
                 entrypoint=None):
    """`podman run --rm` of the image, confined, with \\p args; \\p env
    {name: value} is passed by name (values never on a command line).
    @returns the CompletedProcess."""
    argv = ["run", "--rm", "--no-healthcheck", *CONFINED]
    if network:
        argv += ["--network", "host"]
    if entrypoint:
        argv += ["--entrypoint", entrypoint]
    for host, inside in volumes:
        argv += ["-v", "%s:%s:ro" % (host, inside)]
    for name in env or {}:
        argv += ["-e", name]
    return podman(*argv, akvtest.IMAGE, *args, timeout=timeout, check=False,
                  env=env)


def worker_config(name, extra=None):
    """A worker configuration for the stand-ins, readable by the image's
    user (it holds no secret: the tokens come from the environment)."""
    cfg = S.stack.worker_config(GROUP, akvtest.merge_settings(
        akvtest.MOCK_GROUP_WORKAROUND,
        {"sync": {"retry_initial_ms": 50, "retry_max_ms": 1000}},
        extra or {}), name="%s.cfg" % name)
    os.chmod(cfg, 0o644)
    return cfg


def start_container(what, cfg, port):
    """`podman run` of the worker in the foreground (its output captured
    like any process's), named; @returns (Proc, name)."""
    name = container_name(what)
    env = S.stack.worker_env({
        "AK2VAULT_METRICS_LISTEN": "127.0.0.1:%d" % port,
        "CONTAINERS_CONF": str(akvtest.PODMAN_CONF)})
    argv = ["podman", "run", "--name", name, "--network", "host",
            "--health-interval=disable", *CONFINED,
            "-v", "%s:%s:ro" % (cfg, CFG_IN_IMAGE)]
    for k in env:
        if k != "CONTAINERS_CONF":
            argv += ["-e", k]
    proc = akvtest.Proc(what, argv + [akvtest.IMAGE], S.rundir, env=env)
    return proc, name


def state(name, field):
    return podman("inspect", "--format", "{{.State.%s}}" % field,
                  name).stdout.strip()


def healthcheck(name):
    """(exit status of `podman healthcheck run`, the check's last output)."""
    r = podman("healthcheck", "run", name, check=False, timeout=30)
    out = podman("inspect", "--format",
                 "{{range .State.Health.Log}}{{.Output}}|{{end}}", name,
                 check=False).stdout.strip().split("|")
    last = [o for o in out if o.strip()]
    return r.returncode, (last[-1].strip() if last else "")


def in_flight(port):
    """The worker's ak2vault_syncs_in_flight, from its /metrics."""
    status, _, text = akvtest.http_get_text(
        "http://127.0.0.1:%d/metrics" % port, 5)
    assert status == 200, "/metrics answered %s" % status
    fams = akvtest.parse_exposition(text)
    return akvtest.sample(fams, "ak2vault_syncs_in_flight") or 0


class ThreadStop:
    """Stops one thread of a process with ptrace (PTRACE_SEIZE +
    PTRACE_INTERRUPT), the process's other threads running on: a stuck
    loop, as a deadlock would leave it. Detached by resume()."""

    SEIZE, INTERRUPT, DETACH = 0x4206, 0x4207, 17

    def __init__(self, tid):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int,
                                     ctypes.c_void_p, ctypes.c_void_p]
        self.tid = tid
        for req in (self.SEIZE, self.INTERRUPT):
            if self.libc.ptrace(req, tid, None, None) != 0:
                raise AssertionError("ptrace(%#x, %d): %s" % (
                    req, tid, os.strerror(ctypes.get_errno())))
        # The stop is reported to the tracer; reap it so that it is one.
        os.waitpid(tid, 0x40000000)  # __WALL

    def resume(self):
        if self.libc.ptrace(self.DETACH, self.tid, None, None) != 0:
            raise AssertionError("ptrace detach %d: %s" % (
                self.tid, os.strerror(ctypes.get_errno())))


def image_root():
    """The image's file system, mounted read-only on the host."""
    if not S.mount:
        S.mount = Path(podman("image", "mount", akvtest.IMAGE)
                       .stdout.strip())
    return S.mount


def readme_budget_mb():
    text = (akvtest.REPO / "README.md").read_text()
    m = re.search(r"image size budget[^0-9]*(\d+) MB", text, re.I)
    assert m, "README states no image size budget (\"image size budget: " \
        "N MB\")"
    return int(m.group(1))


# ---------------------------------------------------------------------------


def test_image_labels():
    S.info = akvtest.image_inspect()
    labels = S.info.get("Labels") or S.info["Config"].get("Labels") or {}
    version = akvtest.release_version()
    oci = "org.opencontainers.image."
    problems = []
    if labels.get(oci + "version") != version:
        problems.append("version label %r, the Makefile's VERSION %s" % (
            labels.get(oci + "version"), version))
    if not re.fullmatch(r"[0-9a-f]{40}", labels.get(oci + "revision", "")):
        problems.append("revision label %r is no commit" %
                        labels.get(oci + "revision"))
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
                        labels.get(oci + "created", "")):
        problems.append("created label %r is no RFC 3339 time" %
                        labels.get(oci + "created"))
    for name in ("title", "description", "licenses"):
        if not labels.get(oci + name):
            problems.append("no %s label" % (oci + name))
    assert not problems, "; ".join(problems)
    note("%s: version %s, commit %s, built %s" % (
        akvtest.IMAGE, version, labels[oci + "revision"][:12],
        labels[oci + "created"]))


@depends("test_image_labels")
def test_image_size_within_budget():
    size_mb = S.info["Size"] / 1e6
    budget = readme_budget_mb()
    layers = len(S.info.get("RootFS", {}).get("Layers", []))
    note("%s: %.1f MB in %d layers (README's budget %d MB)" % (
        akvtest.IMAGE, size_mb, layers, budget))
    assert size_mb <= budget, "the image is %.1f MB, over README's budget " \
        "of %d MB" % (size_mb, budget)


@depends("test_image_labels")
def test_runs_as_non_root_with_read_only_root():
    user = S.info["Config"].get("User", "")
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user), \
        "the image's user is %r, not a numeric non-root uid:gid" % user
    r = run_in_image("-c", "id -u; id -g; touch /etc/ak2vault/x 2>&1; "
                     "touch /tmp/x 2>&1; exit 0", entrypoint="/bin/sh")
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and len(lines) >= 4, \
        "the shell in the image: %s %s" % (r.returncode, r.stderr[-300:])
    assert "%s:%s" % (lines[0], lines[1]) == user, \
        "the container ran as %s:%s, the image says %s" % (
            lines[0], lines[1], user)
    for line in lines[2:4]:
        assert "Read-only file system" in line, \
            "a write to the root file system did not fail as read-only: " \
            "%r" % line


@depends("test_image_labels")
def test_version_and_check_config_inside():
    r = run_in_image("version")
    assert r.returncode == 0, "ak2vault version exited %d: %s" % (
        r.returncode, r.stderr[-300:])
    labels = S.info.get("Labels") or {}
    first = r.stdout.splitlines()[0] if r.stdout else ""
    assert first == "ak2vault " + labels.get(
        "org.opencontainers.image.version", "?"), \
        "ak2vault version printed %r inside the image" % first
    for lib in ("librdkafka", "libcurl", "cJSON", "libconfig",
                "libmicrohttpd"):
        assert lib in r.stdout, "ak2vault version does not name %s" % lib

    # The image's own example, completed by the environment as README's
    # docker run does.
    env = {"KAFKA_BROKERS": "kafka:9092", "VAULT_ADDR": "http://vault:8200",
           "VAULT_TOKEN": akvtest.random_secret(24),
           "AUTHENTIK_URL": "https://authentik.example.com",
           "AUTHENTIK_TOKEN": akvtest.random_secret(24)}
    SECRETS.add("Vault token", env["VAULT_TOKEN"])
    SECRETS.add("authentik API token", env["AUTHENTIK_TOKEN"])
    r = run_in_image("check-config", "-c", CFG_IN_IMAGE, env=env)
    assert r.returncode == 0, "check-config of the image's example " \
        "exited %d: %s" % (r.returncode,
                           SECRETS.scrub(r.stderr.strip()[-400:]))
    assert CFG_IN_IMAGE in r.stdout + r.stderr, \
        "check-config does not name the file it read"

    # Against the stand-ins, with the worker's real configuration.
    S.stack = akvtest.Stack(S.rundir, partitions=4, vault="fake",
                            topics=(akvtest.TOPIC + ".dlq:1",))
    cfg = worker_config("check")
    r = run_in_image("check-config", "-c", CFG_IN_IMAGE, "--connect",
                     env=S.stack.worker_env(), network=True,
                     volumes=[(cfg, CFG_IN_IMAGE)])
    assert r.returncode == 0, "check-config --connect inside the image " \
        "exited %d: %s" % (r.returncode,
                           SECRETS.scrub(r.stderr.strip()[-400:]))

    bad = S.rundir.write("bad.cfg", "kafka = { brokers = 42; };\n", 0o644)
    r = run_in_image("check-config", "-c", CFG_IN_IMAGE,
                     volumes=[(bad, CFG_IN_IMAGE)])
    assert r.returncode == akvtest.EX_CONFIG, \
        "a bad configuration: check-config exited %d, wanted %d" % (
            r.returncode, akvtest.EX_CONFIG)
    assert "%s:1" % CFG_IN_IMAGE in r.stderr, \
        "the error does not name the file and line: %s" % r.stderr[-300:]


@depends("test_version_and_check_config_inside")
def test_worker_in_the_container_syncs_end_to_end():
    st = S.stack
    port = akvtest.free_port()
    cfg = worker_config("worker", {"metrics": {
        "live_timeout_ms": LIVE_TIMEOUT_MS}})
    S.worker, S.worker_name = start_container("worker", cfg, port)
    S.port = port
    ok = akvtest.wait_until(
        lambda: "consuming topic=" in S.worker.stderr_text()
        or not S.worker.running(), 60)
    assert S.worker.running(), "the container exited %s: %s" % (
        S.worker.wait(0), S.worker.stderr_tail(5))
    assert ok, "the worker did not start consuming within 60s: %s" % (
        S.worker.stderr_tail(5))
    for i in range(30):
        ident = "image-%02d" % i
        st.create_token(ident, intent="app_password" if i % 3 == 0
                        else "api", description="image test %d" % i)
        S.created.append(ident)
    st.live_tokens()
    for ident in S.created[:8]:
        st.set_key(ident, "img" + akvtest.random_secret(45))
    for ident in S.created[8:12]:
        st.rotate(ident)
    st.delete_token(S.created[29])
    last = []

    def converged():
        last[:] = st.vault_mismatches()
        return not last
    t0 = time.monotonic()
    ok = akvtest.wait_until(converged, SYNC_TIMEOUT, interval=0.5)
    assert ok, "after %ds, %d live tokens differ in Vault: %s (worker: %s)" \
        % (SYNC_TIMEOUT, len(last), akvtest.describe(last),
           S.worker.stderr_tail(3))
    note("Vault matched authentik for 29 live tokens %.1fs after the "
         "changes, synced by the containerised worker" % (
             time.monotonic() - t0))


@depends("test_worker_in_the_container_syncs_end_to_end")
def test_healthcheck_fails_on_a_stuck_poll_loop():
    # podman's inspect has it beside Config (Docker's, inside).
    hc = S.info.get("Healthcheck") or S.info["Config"].get("Healthcheck") \
        or {}
    assert hc.get("Test"), "the image has no HEALTHCHECK (built without " \
        "--format docker?)"
    rc, out = healthcheck(S.worker_name)
    assert rc == 0, "the HEALTHCHECK failed on a healthy worker: %s" % out
    pid = int(state(S.worker_name, "Pid"))
    # The container's first process is ak2vault itself (the exec form
    # ENTRYPOINT); its main thread runs the poll loop.
    comm = Path("/proc/%d/comm" % pid).read_text().strip()
    assert comm == "ak2vault", "the container's process is %s" % comm
    stop = ThreadStop(pid)
    try:
        time.sleep(LIVE_TIMEOUT_MS / 1000 + 1.5)
        rc, out = healthcheck(S.worker_name)
        health = state(S.worker_name, "Health.Status")
    finally:
        stop.resume()
    assert rc != 0, "the HEALTHCHECK passed with the poll loop stopped " \
        "for %d ms" % (LIVE_TIMEOUT_MS + 1500)
    assert "503" in out, "the HEALTHCHECK failed, but not on /livez's " \
        "503 (the HTTP endpoint should still answer): %r" % out
    note("stuck poll loop: HEALTHCHECK failed with %r, status %s" % (
        out, health))
    ok = akvtest.wait_until(lambda: healthcheck(S.worker_name)[0] == 0, 15,
                            interval=1)
    assert ok, "the HEALTHCHECK did not pass again once the loop turned: " \
        "%s" % healthcheck(S.worker_name)[1]


@depends("test_worker_in_the_container_syncs_end_to_end")
def test_podman_stop_drains_and_exits_0():
    st = S.stack
    # authentik answers key reads in 3 s: the syncs of the new tokens are
    # in flight that long.
    st.authentik_faults({"latency_ms": 3000, "scope": "view_key"})
    more = ["image-drain-%02d" % i for i in range(12)]
    for ident in more:
        st.create_token(ident, description="created before podman stop")
    S.created += more
    ok = akvtest.wait_until(lambda: in_flight(S.port) > 0, 20, interval=0.1)
    assert ok, "no sync in flight within 20s: %s" % S.worker.stderr_tail(3)
    assert "token=image-drain-" not in S.worker.stderr_text(), \
        "a drain token synced before podman stop"
    t0 = time.monotonic()
    r = podman("stop", "--time", "30", S.worker_name, check=False,
               timeout=60)
    took = time.monotonic() - t0
    assert r.returncode == 0, "podman stop: %s" % r.stderr[-300:]
    rc = S.worker.wait(15)
    exit_code = state(S.worker_name, "ExitCode")
    st.authentik_faults({})
    log = S.worker.stderr_text()
    assert exit_code == "0", "the worker exited %s after podman stop: %s" \
        % (exit_code, S.worker.stderr_tail(5))
    assert rc == 0, "podman run returned %s" % rc
    marker = "stopping: finishing syncs in flight"
    assert marker in log, "the worker did not log its drain: %s" % (
        S.worker.stderr_tail(5))
    finished = [s["token"] for s in akvtest.sync_lines(
        log[log.index(marker):])]
    assert finished, "no sync finished after SIGTERM: the one in flight " \
        "was dropped (%s)" % S.worker.stderr_tail(4)
    assert akvtest.final_stats(log) is not None, \
        "no final stats line: %s" % S.worker.stderr_tail(3)
    left = [i for i, _ in st.vault_mismatches()]
    lag = st.lag(GROUP)["lag"]
    assert len(left) <= lag, "%d tokens are not in Vault but only %d " \
        "events are left uncommitted: committed past unfinished work (%s)" \
        % (len(left), lag, ", ".join(left))
    note("podman stop: exit 0 after %.1fs; %s finished during the drain; "
         "%d tokens left for later, %d events uncommitted" % (
             took, ", ".join(finished), len(left), lag))

    # What was left is synced by the next container of the group.
    S.worker, S.worker_name = start_container(
        "worker-again", worker_config("worker-again"), S.port)
    last = []

    def converged():
        last[:] = st.vault_mismatches()
        return not last
    ok = akvtest.wait_until(converged, SYNC_TIMEOUT, interval=0.5)
    assert ok, "the next container left %d tokens unsynced: %s" % (
        len(last), akvtest.describe(last))
    assert akvtest.wait_until(lambda: st.lag(GROUP)["lag"] == 0, 30), \
        "the group's lag stays at %d" % st.lag(GROUP)["lag"]
    # What the first one finished while draining, it committed.
    again = sorted({x["token"] for x in akvtest.sync_lines(
        S.worker.stderr_text())} & set(finished))
    assert not again, "synced again by the next container (their events " \
        "were not committed at the stop): %s" % ", ".join(again)
    podman("stop", "--time", "30", S.worker_name, timeout=60)
    assert S.worker.wait(15) == 0, "the second container exited %s" % (
        state(S.worker_name, "ExitCode"))


@depends("test_image_labels")
def test_plain_build_without_arguments():
    """As a user's `docker build -f docker/Dockerfile .` builds it: no build
    argument, so the release version and empty commit and time labels
    (podman's layer cache makes this a few seconds)."""
    tag = "localhost/ak2vault:akv-test-plain-%d" % os.getpid()
    try:
        podman("build", "--pull=never", "--network", "host", "--format",
               "docker", "-f", "docker/Dockerfile", "-t", tag,
               str(akvtest.REPO), timeout=600)
        labels = akvtest.image_inspect(tag).get("Labels") or {}
        r = podman("run", "--rm", "--no-healthcheck", *CONFINED, tag,
                   "version")
    finally:
        podman("rmi", tag, check=False)
    oci = "org.opencontainers.image."
    want = (S.info.get("Labels") or {}).get(oci + "version")
    assert labels.get(oci + "version") == want, \
        "a plain build is labelled version %r, not %r" % (
            labels.get(oci + "version"), want)
    assert r.stdout.splitlines()[0] == "ak2vault " + want, \
        "a plain build's ak2vault version printed %r" % r.stdout[:40]
    assert labels.get(oci + "revision") == "" and \
        labels.get(oci + "created") == "", \
        "a plain build has revision %r and created %r labels" % (
            labels.get(oci + "revision"), labels.get(oci + "created"))


@depends("test_image_labels")
def test_libraries_inside_and_nothing_else():
    r = run_in_image("/usr/local/bin/ak2vault", entrypoint="/usr/bin/ldd")
    assert r.returncode == 0, "ldd in the image exited %d: %s" % (
        r.returncode, r.stderr[-300:])
    missing = [l.split()[0] for l in r.stdout.splitlines()
               if "not found" in l]
    assert not missing, "libraries the binary cannot find in the image: " \
        "%s" % ", ".join(missing)
    libs = re.findall(r"=> (/\S+)", r.stdout)
    assert len(libs) >= 5, "ldd found only %s" % libs

    root = image_root()
    problems = []
    found_tools, found_tests, sources = [], [], []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = "/" + os.path.relpath(dirpath, root)
        if rel.startswith(("/proc", "/sys", "/dev")):
            dirnames[:] = []
            continue
        for f in filenames:
            if f in BUILD_TOOLS and "bin" in rel:
                found_tools.append(os.path.join(rel, f))
            if f in TEST_BINARIES or re.fullmatch(r"test_\w+", f):
                found_tests.append(os.path.join(rel, f))
            if f.endswith((".c", ".h", ".o", ".a")) and \
                    not rel.startswith("/usr/share"):
                sources.append(os.path.join(rel, f))
    if found_tools:
        problems.append("build tools: %s" % ", ".join(found_tools[:8]))
    if found_tests:
        problems.append("test binaries: %s" % ", ".join(found_tests[:8]))
    if sources:
        problems.append("sources or objects: %s" % ", ".join(sources[:8]))
    status = (root / "var/lib/dpkg/status").read_text()
    pkgs = re.findall(r"^Package: (\S+)", status, re.M)
    dev = [p for p in pkgs if p.endswith("-dev") or p in (
        "build-essential", "make", "binutils", "pkg-config", "pkgconf") or
        re.fullmatch(r"(gcc|cpp|g\+\+|clang)(-\d+)?", p)]
    if dev:
        problems.append("build packages installed: %s" % ", ".join(dev))
    cached = [str(p.relative_to(root)) for d in ("var/cache/apt/archives",
                                                 "var/lib/apt/lists")
              for p in (root / d).rglob("*")
              if p.is_file() and p.name != "lock"]
    cached += [p.name for p in (root / "var/cache/apt").glob("*.bin")]
    if cached:
        problems.append("package cache or lists: %s" % ", ".join(
            cached[:5]))
    local = sorted(p.name for p in (root / "usr/local/bin").iterdir())
    if local != ["ak2vault", "ak2vault-healthcheck"]:
        problems.append("/usr/local/bin holds %s" % local)
    assert not problems, "; ".join(problems)
    note("ldd: %d libraries, all found; %d Debian packages, none for "
         "building" % (len(libs), len(pkgs)))


def test_no_secret_in_any_output():
    if S.worker is not None:
        S.worker.stop(5)
    logs = S.rundir.logs()
    akvtest.assert_no_secrets(logs)
    kinds = SECRETS.kinds()
    note("scanned %d files for %s" % (len(logs), ", ".join(
        "%d %s" % (n, k) for k, n in sorted(kinds.items()))))


if __name__ == "__main__":
    akvtest.run_tests(globals(), "image", setup=setup, teardown=teardown,
                      skip_all=akvtest.podman_problem())
