#!/usr/bin/python3
"""The deployment manifests against the image `make image` really built
(akvtest.IMAGE, localhost/ak2vault:latest), as podman reports it
(`podman image inspect`) and as its file system holds it (`podman image
mount`, and `ldd` run inside it) -- never as the Dockerfile says.

What is checked: the Deployment of `kustomize build docker/kubernetes` (its
default, and with the components that patch the container switched on:
kafka-sasl and keda-sasl, the SASL_SSL set-up test_deploy_assets makes);
the Deployment of `helm template docker/helm/ak2vault` with the defaults
and each toggle of test_helm.py (volumes, environment, ports, Vault login
methods, SASL and CAs); the ak2vault services of docker/compose.yaml. For
each of them:

- argv: the manifest's command (or the image's Entrypoint) and args (or
  the image's Cmd) run the image's ak2vault binary with `run`; a command
  that is set names an executable file of the image; the configuration
  given with -c (or AK2VAULT_CONFIG) is a file the pod provides: a key of
  the volume mounted there, or a file of the image where nothing is
  mounted;
- user: runAsUser and runAsGroup (pod or container level; compose's user)
  are the uid:gid of the image's Config.User, which is numeric and not 0;
  where the manifests rely on group-readable files (mode 0440 Secrets and
  projected tokens), fsGroup is the image's gid; compose's one-shot that
  writes the worker's Vault token gives it to that uid:gid;
- ports: the containerPorts (compose's published container ports) are the
  image's ExposedPorts, and so is the port of the effective metrics.listen
  (mounted configuration, the image's environment and the pod's);
- probes: liveness and readiness ask, over HTTP, the port the image
  exposes (a named port resolved to its containerPort); the liveness path
  is the one the image's HEALTHCHECK asks, whose command exists in the
  image, and so does compose's healthcheck;
- mounted paths: no mountPath hides what the image needs (the binary, the
  shared libraries `ldd` finds for it inside the image, the loader's
  cache, the CA paths compiled into libcurl and OpenSSL, the HEALTHCHECK
  script and its interpreter), symlinks of the image resolved as the
  runtime resolves them; a mount over a directory the image fills
  provides every file of it that the pod uses; every file the effective
  configuration reads (token_file, jwt_file, role_id_file, secret_id_file,
  ca_file, "@file:" and *.location Kafka properties, ...) is a key of the
  volume mounted there, or a file of the image, and readable by the pod's
  user with the volume's mode, owner root and group fsGroup;
- a real run of each: the image started with the manifest's settings as
  podman flags (--user runAsUser:runAsGroup, --group-add fsGroup,
  --read-only without tmpfs, --cap-drop ALL, no-new-privileges, no
  network), the rendered ConfigMaps and stand-in Secret files (0440, group
  fsGroup) bind-mounted read-only at the mountPaths, the pod's environment,
  and the manifest's argv with `check-config` in place of `run`: it exits
  0, and inside the image it reads the same files and metrics.listen; a
  second run with the same settings finds every file the configuration
  names readable and the HEALTHCHECK command executable.

Where podman cannot work here (akvtest.podman_problem()) every test prints
"skip" with the reason; where it works and the image is missing, every
test fails: `make image` builds it. Needs build/k8s/bin/helm and
kustomize (`make k8s-tools`) and PyYAML, like test_helm.py.
"""
import json
import os
import re
import shlex
import sys
from pathlib import Path
from types import SimpleNamespace

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import akvtest  # noqa: E402
from akvtest import SECRETS, podman  # noqa: E402
import test_deploy_assets as assets  # noqa: E402
import test_helm as chart  # noqa: E402
from test_deploy_assets import (check_config, listen_port,  # noqa: E402
                                pod_env, rel, volume_items)

# What the image holds, the manifests checked against it, the containers
# started (removed in teardown).
IMG = SimpleNamespace(id=None, inspect=None, root=None, mounted=False)
TARGETS = []
NAMES = []
RUN = None
# Settings of `ak2vault config-reference` that name a file or directory
# the worker reads, and what a stand-in for it must be.
FILE_SETTING = re.compile(r"(_file|_path|\.client_cert|\.client_key)$")


# ---------------------------------------------------------------------------
# The image


def image_user():
    """(uid, gid) of the image's Config.User; (None, None) when it is not
    numeric (runAsNonRoot cannot check a name)."""
    user = str(IMG.inspect["Config"].get("User") or "")
    m = re.fullmatch(r"(\d+)(?::(\d+))?", user)
    if not m:
        return None, None
    uid = int(m.group(1))
    if m.group(2) is not None:
        return uid, int(m.group(2))
    for line in image_file("/etc/passwd").read_text().splitlines():
        f = line.split(":")
        if len(f) > 3 and f[2] == str(uid):
            return uid, int(f[3])
    return uid, 0


def exposed_ports():
    """{(port, protocol)} of the image's ExposedPorts."""
    out = set()
    for p in (IMG.inspect["Config"].get("ExposedPorts") or {}):
        port, _, proto = p.partition("/")
        out.add((int(port), (proto or "tcp").upper()))
    return out


def image_env():
    """The image's Config.Env as {name: value}."""
    return dict(e.split("=", 1) for e in
                IMG.inspect["Config"].get("Env") or [] if "=" in e)


def healthcheck():
    """The image's HEALTHCHECK as argv (CMD or CMD-SHELL), [] for NONE or
    none. podman 4 reports it beside Config, newer ones inside."""
    hc = IMG.inspect["Config"].get("Healthcheck") or \
        IMG.inspect.get("Healthcheck") or {}
    return check_argv(hc.get("Test") or [])


def check_argv(test):
    """argv of a HEALTHCHECK's or compose healthcheck's test."""
    if isinstance(test, str):
        return shlex.split(test)
    if not test or test[0] == "NONE":
        return []
    if test[0] == "CMD-SHELL":
        return shlex.split(test[1])
    return list(test[1:] if test[0] == "CMD" else test)


def check_path(argv):
    """The HTTP path a health check asks: its first argument that is one."""
    return next((a for a in argv[1:] if a.startswith("/")), None)


def image_file(path):
    """The host path of \\p path of the image (symlinks resolved inside)."""
    return Path(IMG.root) / in_image(path).lstrip("/")


def in_image(path):
    """\\p path with the image's symlinks resolved inside the image, as the
    runtime resolves a mountPath and the process a file name; the part
    that does not exist in the image is kept as it is."""
    parts = [p for p in path.split("/") if p]
    out, hops = [], 0
    while parts:
        p = parts.pop(0)
        if p == ".":
            continue
        if p == "..":
            out = out[:-1]
            continue
        host = os.path.join(IMG.root, *out, p)
        if os.path.islink(host):
            hops += 1
            assert hops < 40, "%s: too many symlinks in the image" % path
            target = os.readlink(host)
            if target.startswith("/"):
                out = []
            parts = [x for x in target.split("/") if x] + parts
            continue
        out.append(p)
    return "/" + "/".join(out)


def image_has(path, executable=False):
    """Whether the image holds \\p path as a file (executable by anyone)."""
    host = image_file(path)
    if not host.is_file():
        return False
    return not executable or bool(host.stat().st_mode & 0o111)


def under(path, top):
    return path == top or path.startswith(top.rstrip("/") + "/")


def shebang(path):
    """The interpreter a script of the image names, or None."""
    if not image_has(path):
        return None
    head = image_file(path).read_bytes()[:200]
    if head.startswith(b"#!"):
        return head[2:].split(b"\n")[0].split()[0].decode()
    return None


def is_elf(path):
    return image_has(path) and image_file(path).read_bytes()[:4] == \
        b"\x7fELF"


def ldd_in_image(paths):
    """{file: [(library, path in the image)]} from `ldd` run inside the
    image (its own loader and libraries)."""
    r = podman("run", "--rm", "--no-healthcheck", "--network", "none",
               "--entrypoint", "/usr/bin/ldd", IMG.id, *paths, timeout=60,
               check=False)
    assert r.returncode == 0, "ldd %s inside the image exited %d: %s" % (
        " ".join(paths), r.returncode, " ".join(r.stderr.split())[-300:])
    out, cur = {}, None
    for line in r.stdout.splitlines():
        if not line.startswith(("\t", " ")) and line.endswith(":"):
            cur = line[:-1] if len(paths) > 1 else paths[0]
            out[cur] = []
            continue
        if cur is None:
            cur = paths[0]
            out[cur] = []
        line = line.strip()
        assert "not found" not in line, "inside the image, %s lacks %s" % (
            cur, line)
        m = re.match(r"(\S+) => (/\S+)", line) or re.match(r"(/\S+) \(", line)
        if m:
            out[cur].append((m.group(1), m.group(m.lastindex)))
    return out


def needed_paths():
    """[(path in the image, symlinks resolved; why the image needs it)]:
    the binary, its libraries and loader as `ldd` finds them inside the
    image, the loader's cache, the CA paths compiled into libcurl and
    OpenSSL, the HEALTHCHECK's command and its interpreter."""
    ep = IMG.inspect["Config"]["Entrypoint"][0]
    out = [(ep, "the image's Entrypoint")]
    elves = [ep]
    hc = healthcheck()
    if hc:
        out.append((hc[0], "the image's HEALTHCHECK command"))
        interp = shebang(hc[0])
        if interp:
            out.append((interp, "the interpreter of the HEALTHCHECK "
                                "command"))
            elves.append(interp)
        elif is_elf(hc[0]):
            elves.append(hc[0])
    elves = [e for e in elves if is_elf(e)]  # the rest: test_image_has_...
    libs = ldd_in_image(elves) if elves else {}
    for f, found in libs.items():
        for name, path in found:
            out.append((path, "%s, which %s loads" % (name, f)))
    out.append(("/etc/ld.so.cache", "the loader's cache"))
    for name, path in libs.get(ep, []):
        if re.match(r"lib(curl|crypto)\.so", name):
            for s in sorted(set(re.findall(
                    rb"/(?:etc|usr/lib)/ssl(?:/[\w.-]+)*",
                    image_file(path).read_bytes()))):
                p = s.decode()
                if image_file(p).exists():
                    out.append((p, "a CA path compiled into %s" % name))
    seen = {}
    for p, why in out:
        seen.setdefault(in_image(p), why)
    return list(seen.items())


# ---------------------------------------------------------------------------
# The manifests, as one shape: kustomize's and helm's Deployments, compose's
# services


def file_source(kind, what, mode, owner=0, group=0, content=None,
                host=None, writer=None):
    """A file a mount provides: from a ConfigMap (its \\p content), a
    Secret or projected token (a stand-in), a file of the repository
    (\\p host) or a named volume that the service \\p writer (name,
    TOKEN_OWNER) writes."""
    return SimpleNamespace(kind=kind, what=what, mode=mode, owner=owner,
                           group=group, content=content, host=host,
                           writer=writer)


def mount(path, what, files, read_only=True, single=False, any_key=None):
    """A mount of a target: at \\p path, \\p files {name: file_source}
    (one file at \\p path itself when \\p single), \\p any_key a
    file_source template for every other name (a Secret mounted without
    items: whatever keys it has)."""
    return SimpleNamespace(path=path, canon=None, what=what, files=files,
                           read_only=read_only, single=single,
                           any_key=any_key, host=None)


def k8s_mounts(dep, cms, fs_group):
    """The container's volumeMounts as mounts, files from volume_items()
    with the modes and the group (fsGroup) the kubelet gives them."""
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    out = []
    for m in c.get("volumeMounts", []):
        v = vols.get(m["name"])
        assert v, "volumeMount %s names no volume" % m["name"]
        files, any_key = {}, None
        kind = next((k for k in v if k != "name"), "?")
        default = (v.get(kind) or {}).get("defaultMode", 0o644)
        group = fs_group if fs_group is not None else 0
        what = "volume %s (%s)" % (m["name"], kind)
        for key, src in volume_items(v).items():
            mode = default
            for k2 in ("configMap", "secret"):
                for it in (src.get(k2) or {}).get("items") or []:
                    if it["path"] == key:
                        mode = it.get("mode", default)
            if "serviceAccountToken" in src:
                f = file_source("token", "%s, projected ServiceAccount token"
                                % what, mode, group=group)
            elif "configMap" in src:
                name = src["configMap"]["name"]
                data = cms.get(name)
                if data is None:
                    f = file_source("secret", "%s, ConfigMap %s (not "
                                    "rendered)" % (what, name), mode,
                                    group=group)
                elif key == "*":
                    for k3, text in data.items():
                        files[k3] = file_source(
                            "configmap", "%s, ConfigMap %s key %s" % (
                                what, name, k3), mode, group=group,
                            content=text)
                    continue
                elif src["key"] not in data:
                    continue  # the ConfigMap lacks the key: not provided
                else:
                    f = file_source("configmap", "%s, ConfigMap %s key %s" %
                                    (what, name, src["key"]), mode,
                                    group=group, content=data[src["key"]])
            else:
                name = src["secret"]["secretName"]
                f = file_source("secret", "%s, Secret %s key %s" % (
                    what, name, src.get("key", "*")), mode, group=group)
            if key == "*":
                any_key = f
            else:
                files[key] = f
        if m.get("subPath"):
            f = files.get(m["subPath"]) or any_key
            out.append(mount(m["mountPath"], what, {"": f} if f else {},
                             m.get("readOnly", False), single=True))
        else:
            out.append(mount(m["mountPath"], what, files,
                             m.get("readOnly", False), any_key=any_key))
    return out


def k8s_target(name, origin, docs, components=()):
    """A target from the Deployment of rendered \\p docs (\\p origin:
    the command that rendered them)."""
    deps = [d for d in docs if d["kind"] == "Deployment"]
    assert len(deps) == 1, "%s: %d Deployments" % (origin, len(deps))
    dep = deps[0]
    cms = assets.built_configmaps(docs)
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    psc, csc = pod.get("securityContext") or {}, c.get("securityContext") \
        or {}

    def sc(field):
        return csc.get(field, psc.get(field))
    caps = csc.get("capabilities") or {}
    t = SimpleNamespace(
        kind="k8s", name=name, where=origin, components=list(components),
        container=c["name"], image=c.get("image"), command=c.get("command"),
        args=c.get("args"),
        env=pod_env(dep, cms), uid=sc("runAsUser"), gid=sc("runAsGroup"),
        non_root=sc("runAsNonRoot"), fs_group=psc.get("fsGroup"),
        groups=[g for g in [psc.get("fsGroup")] +
                list(psc.get("supplementalGroups") or []) if g is not None],
        read_only=bool(csc.get("readOnlyRootFilesystem")),
        cap_drop=list(caps.get("drop") or []),
        cap_add=list(caps.get("add") or []),
        no_new_privs=csc.get("allowPrivilegeEscalation") is False,
        ports=[(p.get("name"), p["containerPort"],
                p.get("protocol", "TCP")) for p in c.get("ports", [])],
        probes={k: c[k] for k in ("livenessProbe", "readinessProbe",
                                  "startupProbe") if k in c},
        healthcheck=None, token_owners={},
        mounts=k8s_mounts(dep, cms, psc.get("fsGroup")))
    return t


def compose_mounts(doc, name, s):
    """A compose service's volumes and secrets as mounts."""
    out = []
    for v in s.get("volumes", []):
        if isinstance(v, str):
            parts = v.split(":")
            src, dst = parts[0], parts[1]
            ro = len(parts) > 2 and "ro" in parts[2].split(",")
        else:
            src, dst = v.get("source"), v["target"]
            ro = bool(v.get("read_only"))
        if src.startswith((".", "/")):
            host = (assets.DOCKER / src).resolve()
            what = "bind mount of %s" % rel(host)

            def repo_file(p, what):
                st = p.stat()
                return file_source("file", what, st.st_mode & 0o777,
                                   st.st_uid, st.st_gid, host=p)
            if host.is_dir():
                m = mount(dst, what, {str(p.relative_to(host)): repo_file(
                    p, "%s, %s" % (what, rel(p))) for p in host.rglob("*")
                    if p.is_file()}, ro)
                m.host = host
                out.append(m)
            else:
                out.append(mount(dst, what, {"": repo_file(host, what)}
                                 if host.exists() else {}, ro, single=True))
            continue
        # A named volume: the files the services that write it name.
        what = "volume %s" % src
        files = {}
        for wname, w in doc["services"].items():
            if wname == name:
                continue
            for wv in w.get("volumes", []):
                wsrc, _, wdst = str(wv).partition(":")
                wdst = wdst.split(":")[0]
                if wsrc != src or str(wv).endswith(":ro"):
                    continue
                argv = [str(a) for a in (w.get("entrypoint") or []) +
                        (w.get("command") or [])]
                owner = (w.get("environment") or {}).get("TOKEN_OWNER")
                uid, _, gid = str(owner or "0:0").partition(":")
                for a in argv:
                    if under(a, wdst) and a != wdst:
                        files[a[len(wdst) + 1:]] = file_source(
                            "secret", "%s, written by %s" % (what, wname),
                            0o600, int(uid), int(gid or 0),
                            writer=(wname, owner))
        out.append(mount(dst, what, files, ro))
    for sec in s.get("secrets", []):
        if isinstance(sec, str):
            sec = {"source": sec}
        target = sec.get("target") or sec["source"]
        if not target.startswith("/"):
            target = "/run/secrets/" + target
        mode = sec.get("mode", 0o444)
        out.append(mount(target, "compose secret %s" % sec["source"],
                         {"": file_source(
                             "secret", "compose secret %s" % sec["source"],
                             int(mode), int(sec.get("uid", 0)),
                             int(sec.get("gid", 0)))}, True, single=True))
    return out


def compose_target(doc, name, s):
    """A target from the compose service \\p name."""
    uid = gid = None
    if s.get("user") is not None:
        u, _, g = str(s["user"]).partition(":")
        uid, gid = (int(u) if u.isdigit() else u), \
            (int(g) if g.isdigit() else (g or None))
    entry, cmd = s.get("entrypoint"), s.get("command")
    if isinstance(entry, str):
        entry = shlex.split(entry)
    if isinstance(cmd, str):
        cmd = shlex.split(cmd)
    ports = []
    for p in s.get("ports", []):
        if isinstance(p, dict):
            ports.append((None, int(p["target"]),
                          p.get("protocol", "tcp").upper()))
        else:
            c, _, proto = str(p).rpartition(":")[2].partition("/")
            ports.append((None, int(c), (proto or "tcp").upper()))
    hc = s.get("healthcheck")
    mounts = compose_mounts(doc, name, s)
    owners = {}
    for m in mounts:
        for f in m.files.values():
            if f.writer:
                owners[f.writer[0]] = f.writer[1]
    return SimpleNamespace(
        kind="compose", name="compose %s" % name,
        where="%s service %s" % (rel(assets.COMPOSE), name),
        components=[], container=name, image=s.get("image"), command=entry,
        args=cmd if cmd is not None else ([] if entry else None),
        env={k: str(v) for k, v in (s.get("environment") or {}).items()},
        uid=uid, gid=gid, non_root=None, fs_group=None,
        groups=[int(g) for g in s.get("group_add", [])],
        read_only=bool(s.get("read_only")),
        cap_drop=list(s.get("cap_drop") or []),
        cap_add=list(s.get("cap_add") or []),
        no_new_privs=any(str(o).startswith("no-new-privileges")
                         and not str(o).endswith(":false")
                         for o in s.get("security_opt") or []),
        ports=ports, probes=None,
        healthcheck=None if hc is None else ("disable" if hc.get("disable")
                                             else hc.get("test")),
        token_owners=owners, mounts=mounts)


def k8s_component_dirs():
    """{component: whether it patches or adds a Deployment}."""
    out = {}
    for k in sorted((assets.K8S / "components").glob(
            "*/kustomization.yaml")):
        text = k.read_text()
        out["components/" + k.parent.name] = bool(
            re.search(r"^\s*kind:\s*Deployment\s*$", text, re.M) or any(
                re.search(r"^kind:\s*Deployment\s*$", p.read_text(), re.M)
                for p in k.parent.glob("*.yaml") if p != k))
    return out


def build_targets():
    """Every target: kustomize's default and SASL builds, each helm
    toggle, each compose worker; with its effective argv, configuration
    and the files that configuration reads."""
    out = []
    root = assets.root_kustomization().get("components", [])
    out.append(k8s_target("kustomize default", "kustomize build %s" %
                          rel(assets.K8S), assets.kustomize_build(assets.K8S),
                          root))
    d, _ = assets.sasl_variant(True)
    out.append(k8s_target(
        "kustomize sasl", "kustomize build %s with components/kafka-sasl "
        "and keda-sasl and the SASL_SSL lines of ak2vault.cfg" %
        rel(assets.K8S),
        assets.kustomize_build(d), root + ["components/kafka-sasl",
                                           "components/keda-sasl"]))
    for name in chart.TOGGLES:
        out.append(k8s_target("helm %s" % name, "helm template %s (%s)" % (
            rel(chart.CHART), name), chart.render(name)))
    doc = assets.compose()
    for name, s in assets.workers(doc).items():
        out.append(compose_target(doc, name, s))
    for t in out:
        for m in t.mounts:
            m.canon = in_image(m.path)
        t.argv = effective_argv(t)
        t.config_path = config_path(t)
        t.config_text, t.config_from = config_source(t)
        t.cfg, t.config_error = None, None
        if t.config_text:
            try:
                t.cfg = check_config(t.config_text, dict(
                    {k: v for k, v in image_env().items() if k != "PATH"},
                    **t.env), re.sub(r"\W+", "-", t.name))
            except AssertionError as e:
                t.config_error = str(e)
        t.files = config_files(t) if t.cfg else {}
    return out


def effective_argv(t):
    """The process the container runs: Kubernetes' rules (a command
    replaces the Entrypoint and drops the Cmd; args replace the Cmd), as
    compose's entrypoint and command."""
    cfg = IMG.inspect["Config"]
    if t.command:
        return list(t.command) + list(t.args or [])
    return list(cfg.get("Entrypoint") or []) + list(
        t.args if t.args is not None else cfg.get("Cmd") or [])


def config_path(t):
    """The configuration file argv gives (-c, --config), else
    AK2VAULT_CONFIG of the environment, else None."""
    a = t.argv[1:]
    for i, x in enumerate(a):
        if x in ("-c", "--config") and i + 1 < len(a):
            return a[i + 1]
        if x.startswith("--config="):
            return x.split("=", 1)[1]
        if x.startswith("-c") and len(x) > 2:
            return x[2:]
    return dict(image_env(), **t.env).get("AK2VAULT_CONFIG")


def provider(t, path):
    """(mount, file_source) of \\p path in the container of \\p t: the
    deepest mount over it and its file there (None when the mount lacks
    it), or (None, None) when no mount covers it."""
    canon = in_image(path)
    best = None
    for m in t.mounts:
        if under(canon, m.canon) and (best is None or
                                      len(m.canon) > len(best.canon)):
            best = m
    if best is None:
        return None, None
    if best.single:
        return best, best.files.get("") if canon == best.canon else None
    key = canon[len(best.canon):].lstrip("/")
    return best, best.files.get(key) or (best.any_key if key else None)


def config_source(t):
    """(text, where it comes from) of the configuration the container
    reads; (None, why not) when it has none."""
    if not t.config_path:
        return None, "no -c and no AK2VAULT_CONFIG"
    m, f = provider(t, t.config_path)
    if m:
        if not f:
            return None, "%s provides no %s" % (m.what, t.config_path)
        if f.content is not None:
            return f.content, f.what
        if f.host:
            return Path(f.host).read_text(), f.what
        return None, "%s (no content known)" % f.what
    if image_has(t.config_path):
        return image_file(t.config_path).read_text(), "the image's file"
    return None, "neither mounted nor in the image"


def config_files(t):
    """{path: (setting, kind)} of the files the effective configuration
    reads: kind "ca" (a PEM certificate), "key", "dir" or "secret"."""
    cfg, env = t.cfg, dict(image_env(), **t.env)
    method = cfg.get("vault.auth.method")
    used = {"vault.auth.jwt_file": method == "kubernetes",
            "vault.auth.role_id_file": method == "approle" and
            not cfg.get("vault.auth.role_id"),
            "vault.auth.secret_id_file": method == "approle",
            "vault.token_file": method == "token" and "VAULT_TOKEN" not in
            env,
            "authentik.token_file": "AUTHENTIK_TOKEN" not in env}
    out = {}
    for k, v in cfg.items():
        if k == "kafka.properties":
            for name, val in v or []:
                if val.startswith("@file:"):
                    out[val[6:]] = ("%s %s" % (k, name), "secret")
                elif name.endswith(".location") and val.startswith("/"):
                    out[val] = ("%s %s" % (k, name), "key" if ".key." in name
                                else "ca")
        elif FILE_SETTING.search(k) and isinstance(v, str) and \
                v.startswith("/") and used.get(k, True):
            kind = "dir" if k.endswith("_path") else "key" if \
                k.endswith("client_key") else "ca" if \
                k.endswith(("ca_file", "client_cert")) else "secret"
            out[v] = (k, kind)
    return out


def uid_gid(t):
    """The (uid, gid) the container runs as: the manifest's, else the
    image's."""
    iu, ig = image_user()
    return (t.uid if t.uid is not None else iu,
            t.gid if t.gid is not None else ig)


def readable(t, f):
    """Whether the pod's user reads \\p f (owner, group, mode)."""
    uid, gid = uid_gid(t)
    if uid == 0:
        return True
    if f.owner == uid:
        return bool(f.mode & 0o400)
    if f.group == gid or f.group in t.groups:
        return bool(f.mode & 0o040)
    return bool(f.mode & 0o004)


def where(t):
    return "%s (%s), container %s" % (t.name, t.where, t.container)


# ---------------------------------------------------------------------------


def setup(rundir):
    global RUN, TARGETS
    RUN = rundir
    chart.setup(rundir)  # PyYAML, helm; sets assets.RUN too
    IMG.inspect = akvtest.image_inspect()
    IMG.id = IMG.inspect["Id"]
    IMG.root = podman("image", "mount", IMG.id, timeout=60).stdout.strip()
    IMG.mounted = True
    assert os.path.isdir(IMG.root), "podman image mount gave %r" % IMG.root
    IMG.needed = needed_paths()
    TARGETS = build_targets()


def teardown(rundir):
    for name in NAMES:
        podman("rm", "--force", "--time", "2", name, check=False)
    if IMG.mounted:
        podman("image", "unmount", IMG.id, check=False)


def test_image_has_what_the_checks_read():
    """The facts every other test compares with: a numeric, non-root
    user, an executable Entrypoint, a HEALTHCHECK whose command exists,
    exposed ports."""
    cfg = IMG.inspect["Config"]
    problems = []
    uid, gid = image_user()
    if uid is None or uid == 0:
        problems.append("the image's Config.User %r is not a numeric, "
                        "non-root user (runAsNonRoot needs one)" %
                        cfg.get("User"))
    ep = cfg.get("Entrypoint") or []
    if not ep or not image_has(ep[0], executable=True):
        problems.append("the image's Entrypoint %s is no executable file "
                        "of the image" % ep)
    elif os.path.basename(ep[0]) != "ak2vault" or not is_elf(ep[0]):
        problems.append("the image's Entrypoint %s is not the ak2vault "
                        "binary" % ep)
    hc = healthcheck()
    if not hc:
        problems.append("the image has no HEALTHCHECK")
    else:
        if not image_has(hc[0], executable=True):
            problems.append("the HEALTHCHECK runs %s, no executable file of "
                            "the image" % hc[0])
        elif shebang(hc[0]) and not image_has(shebang(hc[0]), True):
            problems.append("the HEALTHCHECK script's interpreter %s is not "
                            "in the image" % shebang(hc[0]))
        if not check_path(hc):
            problems.append("the HEALTHCHECK %s asks no path" % hc)
    if not exposed_ports():
        problems.append("the image exposes no port")
    assert not problems, "; ".join(problems)
    akvtest.note("image %s: user %d:%d, exposes %s, HEALTHCHECK %s; %d "
                 "paths it needs" % (IMG.id[:12], uid, gid,
                                     sorted(exposed_ports()), hc,
                                     len(IMG.needed)))


def test_every_container_changing_component_is_checked():
    """Each kustomize component that patches the Deployment is switched
    on in a checked build."""
    covered = {c for t in TARGETS for c in t.components}
    missing = [c for c, changes in k8s_component_dirs().items()
               if changes and c not in covered]
    assert not missing, "components %s patch the Deployment but no " \
        "checked build switches them on" % missing
    assert covered, "no kustomize build checked"


def test_manifests_deploy_the_images_version():
    """The tag the Kubernetes manifests deploy is the version the image is
    labelled with (compose builds its own image: no tag to compare)."""
    version = (IMG.inspect["Config"].get("Labels") or {}).get(
        "org.opencontainers.image.version")
    assert version, "the image has no org.opencontainers.image.version"
    problems = ["%s: image %s, the image's version label %s" % (
        where(t), t.image, version) for t in TARGETS
        if t.kind == "k8s" and not str(t.image).endswith(":" + version)]
    assert not problems, "; ".join(problems)


def test_argv_runs_the_image_binary_with_a_provided_config():
    ep = IMG.inspect["Config"]["Entrypoint"][0]
    problems = []
    for t in TARGETS:
        w = where(t)
        if not t.argv:
            problems.append("%s: runs nothing (no command, no Entrypoint)"
                            % w)
            continue
        exe = t.argv[0]
        if "/" not in exe:
            path = dict(image_env(), **t.env).get("PATH", "")
            exe = next((os.path.join(d, exe) for d in path.split(":")
                        if d and image_has(os.path.join(d, exe), True)), exe)
        if t.command and not image_has(exe, executable=True):
            problems.append("%s: command %s names no executable file of the "
                            "image" % (w, t.command))
        elif in_image(exe) != in_image(ep):
            problems.append("%s: runs %s, not the image's ak2vault binary "
                            "%s (Entrypoint)" % (w, t.argv[0], ep))
        sub = next((a for a in t.argv[1:] if not a.startswith("-")), None)
        if sub != "run":
            problems.append("%s: argv %s runs %r, not `run`" % (
                w, t.argv, sub))
        if not t.config_text:
            problems.append("%s: the configuration %s: %s" % (
                w, t.config_path, t.config_from))
        elif t.config_error:
            problems.append("%s: the configuration %s (%s) with the pod's "
                            "environment: %s" % (w, t.config_path,
                                                 t.config_from,
                                                 t.config_error))
    assert not problems, "; ".join(problems)


def test_user_is_the_images():
    uid, gid = image_user()
    problems = []
    for t in TARGETS:
        w = where(t)
        field = "user" if t.kind == "compose" else "runAsUser"
        if t.uid is not None and t.uid != uid:
            problems.append("%s: %s %s, the image's Config.User %s" % (
                w, field, t.uid, IMG.inspect["Config"].get("User")))
        field = "user's group" if t.kind == "compose" else "runAsGroup"
        if t.gid is not None and t.gid != gid:
            problems.append("%s: %s %s, the image's gid %s" % (
                w, field, t.gid, gid))
        if t.non_root and uid_gid(t)[0] in (None, 0):
            problems.append("%s: runAsNonRoot with user %s" % (
                w, uid_gid(t)[0]))
        # Files readable through their group only: fsGroup must be it.
        for path, (setting, _) in t.files.items():
            m, f = provider(t, path)
            if f and f.kind in ("secret", "token", "configmap") and \
                    t.kind == "k8s" and f.mode & 0o040 and \
                    not f.mode & 0o004 and t.fs_group != gid:
                problems.append("%s: %s %s is %s, mode %04o (group-"
                                "readable only), and fsGroup is %s, not the "
                                "image's gid %s" % (w, setting, path, f.what,
                                                    f.mode, t.fs_group, gid))
        for writer, owner in t.token_owners.items():
            if owner != "%s:%s" % (uid, gid):
                problems.append("%s: %s gives the token it writes to %s, "
                                "not the image's user %s:%s" % (
                                    w, writer, owner, uid, gid))
    assert not problems, "; ".join(problems)


def test_ports_are_the_images():
    exposed = exposed_ports()
    problems = []
    for t in TARGETS:
        w = where(t)
        ports = {(p, proto.upper()) for _, p, proto in t.ports}
        if ports != exposed:
            problems.append("%s: %s %s, the image's ExposedPorts %s" % (
                w, "containerPorts" if t.kind == "k8s" else
                "published container ports", sorted(ports), sorted(exposed)))
        listen = (t.cfg or {}).get("metrics.listen")
        if t.cfg is None:
            problems.append("%s: no effective configuration to take "
                            "metrics.listen from" % w)
        elif not listen:
            problems.append("%s: metrics.listen is unset (no /livez)" % w)
        elif (listen_port(listen), "TCP") not in exposed:
            problems.append("%s: metrics.listen %s (%s and the "
                            "environment), the image exposes %s" % (
                                w, listen, t.config_from, sorted(exposed)))
    assert not problems, "; ".join(problems)


def probe_port(t, port):
    """A probe's port as a number: a name resolved to its containerPort."""
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    named = {n: p for n, p, _ in t.ports if n}
    return named.get(port)


def test_probes_ask_what_the_image_serves():
    hc = healthcheck()
    path = check_path(hc)
    exposed = {p for p, _ in exposed_ports()}
    problems = []
    for t in TARGETS:
        w = where(t)
        if t.kind == "compose":
            if t.healthcheck is None:
                continue  # the image's own
            argv = [] if t.healthcheck == "disable" else \
                check_argv(t.healthcheck)
            if not argv:
                problems.append("%s: healthcheck %s turns the image's "
                                "HEALTHCHECK off" % (w, t.healthcheck))
            elif not image_has(argv[0], executable=True):
                problems.append("%s: healthcheck runs %s, no executable "
                                "file of the image" % (w, argv[0]))
            elif check_path(argv) != path:
                problems.append("%s: healthcheck asks %s, the image's "
                                "HEALTHCHECK %s" % (w, check_path(argv),
                                                    path))
            continue
        for kind in ("livenessProbe", "readinessProbe"):
            if kind not in t.probes:
                problems.append("%s: no %s" % (w, kind))
        for kind, p in t.probes.items():
            if "httpGet" in p:
                g = p["httpGet"]
                port = probe_port(t, g.get("port"))
                if port not in exposed:
                    problems.append("%s: %s.httpGet.port %s resolves to %s, "
                                    "the image exposes %s" % (
                                        w, kind, g.get("port"), port,
                                        sorted(exposed)))
                if g.get("scheme", "HTTP") != "HTTP":
                    problems.append("%s: %s.httpGet.scheme %s; the metrics "
                                    "endpoint speaks HTTP" % (
                                        w, kind, g["scheme"]))
                if kind == "livenessProbe" and g.get("path") != path:
                    problems.append("%s: livenessProbe.httpGet.path %s, the "
                                    "image's HEALTHCHECK asks %s (%s)" % (
                                        w, g.get("path"), path, hc))
            elif "exec" in p:
                cmd = p["exec"].get("command") or [""]
                if not image_has(cmd[0], executable=True):
                    problems.append("%s: %s runs %s, no executable file of "
                                    "the image" % (w, kind, cmd[0]))
            elif "tcpSocket" in p:
                if probe_port(t, p["tcpSocket"].get("port")) not in exposed:
                    problems.append("%s: %s.tcpSocket.port %s" % (
                        w, kind, p["tcpSocket"].get("port")))
            else:
                problems.append("%s: %s checks nothing the image serves: %s"
                                % (w, kind, sorted(p)))
    assert not problems, "; ".join(problems)


def used_paths(t):
    """{path: (what uses it, kind)}: the configuration argv gives and
    every file the configuration reads."""
    out = dict(t.files)
    if t.config_path:
        out[t.config_path] = ("the configuration of `%s`" % " ".join(
            t.argv), "config")
    return out


def test_mounts_hide_nothing_the_image_needs():
    problems = []
    for t in TARGETS:
        w = where(t)
        used = used_paths(t)
        for m in t.mounts:
            hides = [(p, why) for p, why in IMG.needed if under(p, m.canon)]
            for p, why in hides[:3]:
                problems.append("%s: the mount %s at %s hides %s (%s)" % (
                    w, m.what, m.path, p, why))
            if len(hides) > 3:
                problems.append("%s: ... and %d more paths the image "
                                "needs" % (w, len(hides) - 3))
            host = image_file(m.path)
            if host.exists() and not m.single and not host.is_dir():
                problems.append("%s: %s mounts a directory on %s, a file of "
                                "the image" % (w, m.what, m.path))
            # What the image holds there, the pod uses and the mount lacks.
            for u, (what, _) in sorted(used.items()):
                mm, f = provider(t, u)
                if mm is m and f is None and image_file(u).exists():
                    problems.append("%s: %s at %s hides the image's %s, "
                                    "which %s uses, and does not provide it"
                                    % (w, m.what, m.path, in_image(u), what))
    assert not problems, "; ".join(problems)


def test_files_the_config_reads_are_provided():
    problems = []
    for t in TARGETS:
        w = where(t)
        if not t.files and t.cfg:
            problems.append("%s: the configuration reads no file (no "
                            "token file?)" % w)
        for path, (setting, kind) in sorted(used_paths(t).items()):
            m, f = provider(t, path)
            if m is None:
                host = image_file(path)
                ok = host.is_dir() if kind == "dir" else host.is_file()
                if not ok:
                    problems.append("%s: %s %s is under no mount and not "
                                    "in the image" % (w, setting, path))
                    continue
                st = host.stat()
                f = file_source("image", "the image's file", st.st_mode &
                                0o777, st.st_uid, st.st_gid)
            elif f is None:
                problems.append("%s: %s %s is under the mount %s at %s, "
                                "which has no such key" % (w, setting, path,
                                                           m.what, m.path))
                continue
            if not readable(t, f):
                problems.append("%s: %s %s (%s, owner %s, group %s, mode "
                                "%04o) is not readable by %s:%s%s" % (
                                    w, setting, path, f.what, f.owner,
                                    f.group, f.mode, *uid_gid(t),
                                    " +%s" % t.groups if t.groups else ""))
    assert not problems, "; ".join(problems)


# ---------------------------------------------------------------------------
# The real run


def stand_in(kind):
    """Stand-in content (bytes) for a file the configuration reads."""
    if kind in ("ca", "key"):
        pem = assets.stand_in_ca()
        return (pem.with_suffix(".key") if kind == "key" else pem) \
            .read_bytes()
    value = "stand-in-%s" % akvtest.random_secret(24)
    SECRETS.add("stand-in secret file", value)
    return (value + "\n").encode()


def materialize(t, d):
    """The mounts of \\p t as files under \\p d: ConfigMaps' contents,
    stand-ins for Secrets, tokens and volumes (for the keys the
    configuration reads), with their modes, owner and group. @returns
    the podman -v arguments."""
    volumes = []
    kinds = {in_image(p): kind for p, (_, kind) in t.files.items()}
    for i, m in enumerate(t.mounts):
        wanted = dict(m.files)
        if m.any_key and not m.single:
            for path in t.files:
                mm, f = provider(t, path)
                if mm is m and f is m.any_key:
                    wanted[in_image(path)[len(m.canon):].lstrip("/")] = f
        top = d / ("m%d" % i)
        top.mkdir(mode=0o755)
        top.chmod(0o755)
        for key, f in wanted.items():
            if f.kind == "file":
                continue  # bound from the repository as it is
            target = top / (key or "file")
            target.parent.mkdir(parents=True, exist_ok=True)
            if f.content is not None:
                data = f.content.encode()
            else:
                path = m.canon if m.single else m.canon + "/" + key
                data = stand_in(kinds.get(path, "secret"))
            target.write_bytes(data)
            os.chown(target, f.owner, f.group)
            target.chmod(f.mode)
        ro = ":ro" if m.read_only else ""
        if m.host:  # a directory of the repository, bound as it is
            volumes += ["-v", "%s:%s%s" % (m.host, m.path, ro)]
        elif m.single:
            f = m.files.get("")
            src = f.host if f and f.kind == "file" else top / "file"
            volumes += ["-v", "%s:%s%s" % (src, m.path, ro)]
        else:
            volumes += ["-v", "%s:%s%s" % (top, m.path, ro)]
    return volumes


def podman_flags(t, d):
    """The container's settings as podman flags."""
    uid, gid = uid_gid(t)
    # --no-healthcheck: podman 4.3 still logs systemd timer errors with
    # --health-interval=disable where systemd is not running.
    flags = ["--no-healthcheck", "--network", "none"]
    if t.uid is not None or t.gid is not None:
        flags += ["--user", "%s:%s" % (uid, gid)]
    for g in t.groups:
        flags += ["--group-add", str(g)]
    if t.read_only:
        flags += ["--read-only", "--read-only-tmpfs=false"]
    for c in t.cap_drop:
        flags += ["--cap-drop", c]
    for c in t.cap_add:
        flags += ["--cap-add", c]
    if t.no_new_privs:
        flags += ["--security-opt", "no-new-privileges"]
    env = d / "env"
    lines = []
    for k, v in t.env.items():
        assert "\n" not in v, "%s: %s holds a newline" % (t.name, k)
        lines.append("%s=%s" % (k, v))
    env.write_text("".join(l + "\n" for l in lines))
    return flags + ["--env-file", str(env)] + materialize(t, d)


def run_in_image(t, d, entrypoint, args):
    """`podman run` of the image as \\p t's container, its mounts made
    under \\p d, running \\p entrypoint \\p args."""
    name = "akv-manifests-%d-%d" % (os.getpid(), len(NAMES))
    NAMES.append(name)
    d = d / name
    d.mkdir()
    return podman("run", "--rm", "--name", name, *podman_flags(t, d),
                  "--entrypoint", json.dumps([entrypoint]), IMG.id, *args,
                  timeout=60, check=False)


def test_check_config_passes_in_the_image():
    """Every target started as its manifest says, check-config in place of
    run: exit 0, the same files and metrics.listen inside the image."""
    problems = []
    exposed = {p for p, _ in exposed_ports()}
    hc = healthcheck()
    for i, t in enumerate(TARGETS):
        w = where(t)
        if "run" not in t.argv[1:]:
            problems.append("%s: argv %s has no `run` to check" % (
                w, t.argv))
            continue
        d = RUN.path / ("run-%d" % i)
        d.mkdir()
        args = list(t.argv[1:])
        args[args.index("run")] = "check-config"
        r = run_in_image(t, d, t.argv[0], args)
        out = SECRETS.scrub(r.stdout + r.stderr)
        if r.returncode != 0:
            problems.append("%s: `%s` in the image exited %d: %s" % (
                w, " ".join(t.argv[:1] + args), r.returncode,
                " ".join(out.split())[-400:]))
            continue
        if out != r.stdout + r.stderr:
            problems.append("%s: check-config printed a stand-in secret" % w)
        seen = dict(re.findall(r"^([a-z_.]+) = (.*)$", r.stdout, re.M))
        m = re.search(r':(\d+)"$', seen.get("metrics.listen", ""))
        if not m or int(m.group(1)) not in exposed:
            problems.append("%s: inside the image metrics.listen is %s, the "
                            "image exposes %s" % (
                                w, seen.get("metrics.listen"),
                                sorted(exposed)))
        for path, (setting, _) in t.files.items():
            if " " not in setting and seen.get(setting) != json.dumps(path):
                problems.append("%s: inside the image %s is %s, here %s" % (
                    w, setting, seen.get(setting), path))
        # The same container settings: every file readable, the health
        # check runnable.
        script = 'for f; do case $f in x:*) [ -x "${f#x:}" ] || echo ' \
            '"not executable: ${f#x:}";; *) [ -r "$f" ] || echo ' \
            '"unreadable: $f";; esac; done'
        files = sorted(t.files) + (["x:" + hc[0]] if hc else [])
        r = run_in_image(t, d, (shebang(hc[0]) if hc else None) or "/bin/sh",
                         ["-c", script, "probe"] + files)
        if r.returncode != 0 or r.stdout.strip():
            problems.append("%s: as the pod's user, inside the image: %s" % (
                w, " ".join(SECRETS.scrub(r.stdout + r.stderr).split())
                [-400:]))
    assert not problems, "; ".join(problems)
    akvtest.note("check-config passed in the image for %d targets: %s" % (
        len(TARGETS), ", ".join(t.name for t in TARGETS)))


if __name__ == "__main__":
    akvtest.run_tests(globals(), "image-manifests", setup=setup,
                      teardown=teardown, skip_all=akvtest.podman_problem())
