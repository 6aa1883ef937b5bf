#!/usr/bin/python3
"""The deployment assets under docker/ against each other, the code and
the README, without a container engine or a cluster.

- every YAML (multi-document too) and JSON file under docker/ parses;
- the Kubernetes manifests carry what each kind needs: the Deployment's
  selector matches its pods, its probes ask /livez and /readyz on the port
  metrics.listen names, the group instance id comes from the pod name and
  the Kafka coordinates from the ConfigMap kustomization.yaml generates,
  through environment variables the configuration reference names,
  rollouts never surge, the grace period outlasts the shutdown timeout,
  the pods run as a non-root user on a read-only root with no
  capabilities; the Service, PodDisruptionBudget, PodMonitor and
  NetworkPolicy select those pods; the NetworkPolicy lets out exactly DNS
  and the ports of the brokers, Vault and authentik, and in only the
  metrics port; the PrometheusRule is docker/prometheus/alerts.yaml; the
  kustomizations list exactly the manifests there are, and every component
  is used or offered (commented out) by kustomization.yaml; no manifest
  holds a secret value;
- `kustomize build` (build/k8s/bin/kustomize, `make k8s-tools`) builds
  them: every object in the namespace with the recommended labels, none
  of which reaches a selector; the replacements put the brokers, topic
  and group of the generated ConfigMap, written nowhere else, into the
  KEDA ScaledObject, which scales the Deployment on what the workers read,
  never past the partition count the README creates; with the SASL_SSL
  options switched on as their comments say (components/kafka-sasl and
  keda-sasl, the properties of ak2vault.cfg), the worker reads its
  credentials from the Secret the pods mount and KEDA's
  TriggerAuthentication hands the same keys, with the same mechanism, to
  the trigger;
- the configurations of the manifests and of the compose stack pass
  `ak2vault check-config`, with stand-in secret files;
- compose.yaml: every file it mounts or builds from exists, both workers
  share a group and differ in their instance id, every variable without a
  default is one docker/compose/make-env.sh writes, authentik sees the
  blueprint's files where its !File tags look; authentik-token.sh, against
  a stand-in authentik, sets the token's key without a secret on curl's
  command line;
- the Vault policy grants exactly what those configurations need;
  docker/vault/setup.sh, run against a stand-in `vault` command, creates
  the mount, policy and role the manifests expect;
- the Dockerfile: its build stage's make command, run in a directory
  holding only what its COPY lines bring in, builds the binary; its
  runtime stage installs the Debian package of every shared library the
  binary needs (dpkg -S) and runs as a non-root user with a HEALTHCHECK
  whose script, run here against a real worker, tells /livez from /readyz;
- every path README's deployment sections mention exists.

`test_deploy_assets.py --write-prometheusrule` regenerates the
PrometheusRule from docker/prometheus/alerts.yaml.
"""
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import akvtest  # noqa: E402
from akvtest import REPO, note  # noqa: E402

try:
    import yaml  # python3-yaml (Debian), installed by `make deps`
except ImportError:  # reported by test_assets_parse
    yaml = None

DOCKER = REPO / "docker"
K8S = DOCKER / "kubernetes"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
POLICY = DOCKER / "vault" / "ak2vault-policy.hcl"
SETUP = DOCKER / "vault" / "setup.sh"
HEALTHCHECK = DOCKER / "healthcheck.sh"
MAKE_ENV = DOCKER / "compose" / "make-env.sh"
ALERTS = DOCKER / "prometheus" / "alerts.yaml"
PROMETHEUSRULE = K8S / "components" / "prometheus-operator" / \
    "prometheusrule.yaml"
README = REPO / "README.md"
# helm and kustomize, built by `make k8s-tools` (tests/tools/k8s).
K8S_BIN = Path(os.environ.get("AKV_K8S_BIN") or REPO / "build/k8s/bin")
# The pod name KAFKA_GROUP_INSTANCE_ID takes, for the configuration checks.
POD_NAME = "ak2vault-5d8f7c9b6-x2x7q"
# The generated ConfigMap of the Kafka coordinates, and its keys.
KAFKA_CM = "ak2vault-kafka"
COORDINATES = {"KAFKA_BROKERS": "kafka.brokers", "KAFKA_TOPIC": "kafka.topic",
               "KAFKA_GROUP": "kafka.group"}
# ScaledObject trigger metadata fed by each coordinate.
TRIGGER_KEYS = {"KAFKA_BROKERS": "bootstrapServers", "KAFKA_TOPIC": "topic",
                "KAFKA_GROUP": "consumerGroup"}
# librdkafka's sasl.mechanism in KEDA's spelling.
KEDA_SASL = {"PLAIN": "plaintext", "SCRAM-SHA-256": "scram_sha256",
             "SCRAM-SHA-512": "scram_sha512"}
# The recommended labels every built object carries.
RECOMMENDED = ("name", "instance", "component", "part-of", "version",
               "managed-by")

RUN = None


# ---------------------------------------------------------------------------
# Reading the assets


def load_docs(path):
    """Every document of a YAML or JSON file (empty documents left out)."""
    return akvtest.load_documents(path)


def load_one(path):
    docs = load_docs(path)
    assert len(docs) == 1, "%s: %d documents, expected one" % (
        rel(path), len(docs))
    return docs[0]


def rel(path):
    try:
        return str(Path(path).relative_to(REPO))
    except ValueError:
        return str(path)


def asset_files(top):
    """The YAML and JSON files under \\p top, but the templates of a Helm
    chart (Go templates that make YAML: test_helm.py parses what they
    render)."""
    return [p for p in sorted(top.rglob("*"))
            if p.is_file() and p.suffix in (".json", ".yaml", ".yml") and
            not (p.parent.name == "templates" and
                 (p.parent.parent / "Chart.yaml").is_file())]


def kustomization_dirs():
    return sorted(p.parent for p in K8S.rglob("kustomization.yaml"))


def manifests():
    """[(path, document)] of every Kubernetes object under docker/kubernetes
    (the kustomizations themselves left out)."""
    out = []
    for p in asset_files(K8S):
        if p.name == "kustomization.yaml":
            continue
        for d in load_docs(p):
            out.append((p, d))
    return out


def objects(kind):
    return [d for _, d in manifests() if d.get("kind") == kind]


def the(kind):
    found = objects(kind)
    assert len(found) == 1, "%d %s manifests, expected one" % (len(found),
                                                               kind)
    return found[0]


def root_kustomization():
    return load_one(K8S / "kustomization.yaml")


def offered_components():
    """The components kustomization.yaml offers commented out
    ("# - components/NAME"), to be switched on by uncommenting the line."""
    return re.findall(r"^\s*#\s*-\s*(components/[\w.-]+)\s*$",
                      (K8S / "kustomization.yaml").read_text(), re.M)


def section(title):
    """The text of README's section \\p title (a ## or ### heading), up to
    the next heading of the same or a higher level."""
    text = README.read_text()
    m = re.search(r"^(#{2,3}) %s\s*$" % re.escape(title), text, re.M)
    assert m, "README has no section %r" % title
    level = len(m.group(1))
    rest = text[m.end():]
    end = re.search(r"^#{2,%d} " % level, rest, re.M)
    return rest[:end.start()] if end else rest


# ---------------------------------------------------------------------------
# ak2vault's own view of a configuration


def config_reference():
    """{setting: environment variable} from `ak2vault config-reference`."""
    out = subprocess.run([akvtest.binary("ak2vault"), "config-reference"],
                         capture_output=True, text=True, check=True).stdout
    env = {}
    for m in re.finditer(r"^\| `([a-z_.]+)` \|[^|]*\|[^|]*\| *([A-Z_]*) *\|",
                         out, re.M):
        env[m.group(1)] = m.group(2)
    assert env, "config-reference printed no table"
    return env


_n = [0]


def stand_in_ca():
    """A self-signed certificate (PEM) in the run directory: the stand-in
    for a CA file, which check-config hands to librdkafka, and librdkafka
    parses."""
    pem = RUN.path / "stand-in-ca.pem"
    if not pem.exists():
        assert shutil.which("openssl"), "openssl is missing (apt-get " \
            "install openssl): no stand-in CA for the configuration checks"
        r = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
             "-subj", "/CN=ak2vault stand-in CA", "-keyout",
             str(RUN.path / "stand-in-ca.key"), "-out", str(pem)],
            capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, "openssl req: %s" % r.stderr.strip()[:300]
    return pem


def check_config(cfg_text, env=None, name="cfg"):
    """Runs `ak2vault check-config` on \\p cfg_text with only \\p env in the
    environment. Files the configuration names (*_file, absolute paths;
    "@file:" values and ssl.ca.location of kafka.properties) are replaced
    by stand-ins in the run directory, a certificate for CA files. @returns
    the effective configuration as {setting: value} with the original file
    paths (kafka.properties as [(name, value)]), after asserting that the
    command accepted it."""
    _n[0] += 1
    d = RUN.path / ("%s-%d" % (name, _n[0]))
    d.mkdir()
    originals = {}

    def fake_file(original, ca):
        fake = d / ("file%d" % len(originals))
        if ca:
            shutil.copyfile(stand_in_ca(), fake)
        else:
            fake.write_text("stand-in-%s\n" % akvtest.random_secret(16))
        fake.chmod(0o600)
        originals[str(fake)] = original
        return str(fake)

    def setting(m):
        return '%s = "%s"' % (m.group(1), fake_file(
            m.group(2), m.group(1) == "ca_file"))

    def at_file(m):
        return '"@file:%s"' % fake_file(m.group(1), False)

    def ca_location(m):
        return '%s"%s"' % (m.group(1), fake_file(m.group(2), True))

    text = re.sub(r'\b(\w+_file)\s*=\s*"(/[^"]*)"', setting, cfg_text)
    text = re.sub(r'"@file:(/[^"]*)"', at_file, text)
    text = re.sub(r'("ssl\.ca\.location"\s*,\s*)"(/[^"]*)"', ca_location,
                  text)
    path = d / "ak2vault.cfg"
    path.write_text(text)
    r = subprocess.run([akvtest.binary("ak2vault"), "check-config", "-c",
                        str(path)], capture_output=True, text=True,
                       env=akvtest.child_env(env or {}), timeout=30)
    assert r.returncode == 0, "%s: check-config exited %d: %s" % (
        name, r.returncode, " ".join(r.stderr.split())[:500])

    def original(v):
        if v.startswith("@file:"):
            return "@file:" + originals.get(v[6:], v[6:])
        return originals.get(v, v)

    values = {}
    for line in r.stdout.splitlines():
        m = re.match(r"^([a-z_.]+) = (.*)$", line)
        if not m:
            continue
        v = m.group(2)
        if m.group(1) == "kafka.properties":
            v = [(k, original(json.loads('"%s"' % x))) for k, x in
                 re.findall(r'\("([^"]*)", "((?:[^"\\]|\\.)*)"\)', v)]
        elif v == "(unset)":
            v = None
        elif v.startswith('"'):
            v = original(json.loads(v))
        elif re.fullmatch(r"-?\d+", v):
            v = int(v)
        values[m.group(1)] = v
    assert values.get("kafka.group"), "%s: no effective config printed" % name
    return values


def listen_port(listen):
    m = re.search(r":(\d+)$", listen or "")
    assert m, "metrics.listen %r has no port" % listen
    return int(m.group(1))


def url_port(url):
    """The port of an http(s) URL: its own, else its scheme's."""
    m = re.match(r"^(https?)://(?:[^/@]*@)?(\[[^\]]*\]|[^/:]*)(?::(\d+))?",
                 url or "")
    assert m, "%r is not an http(s) URL" % url
    return int(m.group(3) or (443 if m.group(1) == "https" else 80))


def broker_ports(brokers):
    """The ports of a host:port[,host:port] list."""
    ports = set()
    for b in (brokers or "").split(","):
        m = re.search(r":(\d+)$", b.strip())
        assert m, "broker %r has no port" % b
        ports.add(int(m.group(1)))
    return ports


def generated_configmaps(k=None):
    """{name: data} of the configMapGenerator entries with literals of the
    kustomization \\p k (the root one by default)."""
    out = {}
    for g in (k or root_kustomization()).get("configMapGenerator", []):
        if g.get("literals"):
            out[g["name"]] = dict(l.split("=", 1) for l in g["literals"])
    return out


def kafka_coordinates():
    """{KAFKA_BROKERS: ..., ...}: the literals of the generated ConfigMap
    the Deployment and the ScaledObject take them from."""
    cms = generated_configmaps()
    assert KAFKA_CM in cms, "kustomization.yaml generates no ConfigMap " \
        "%s with literals" % KAFKA_CM
    data = cms[KAFKA_CM]
    assert set(data) == set(COORDINATES), "%s holds %s, expected %s" % (
        KAFKA_CM, sorted(data), sorted(COORDINATES))
    return data


def pod_env(dep, configmaps, pod_name=POD_NAME):
    """The worker container's environment as the kubelet makes it from
    \\p dep: plain values, the pod name (fieldRef metadata.name) and keys of
    \\p configmaps ({name: data}). A reference that resolves to nothing
    fails; secretKeyRef is refused (the manifests mount secrets as files)."""
    c = dep["spec"]["template"]["spec"]["containers"][0]
    env = {}
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = str(e["value"])
            continue
        src = e.get("valueFrom") or {}
        if (src.get("fieldRef") or {}).get("fieldPath") == "metadata.name":
            env[e["name"]] = pod_name
        elif "configMapKeyRef" in src:
            ref = src["configMapKeyRef"]
            data = configmaps.get(ref.get("name"))
            assert data is not None, "%s refers to ConfigMap %s, which is " \
                "not generated" % (e["name"], ref.get("name"))
            assert ref.get("key") in data, "%s refers to key %s, which " \
                "ConfigMap %s lacks" % (e["name"], ref.get("key"),
                                        ref.get("name"))
            env[e["name"]] = data[ref["key"]]
        else:
            raise AssertionError("%s: an environment source the checks "
                                 "cannot resolve: %s" % (e["name"], src))
    assert not c.get("envFrom"), "envFrom hides what the worker reads"
    return env


def k8s_config():
    """The effective configuration of a worker pod of the manifests:
    ak2vault.cfg with the environment the Deployment gives it."""
    cfg = K8S / "ak2vault.cfg"
    return check_config(cfg.read_text(), pod_env(the("Deployment"),
                                                 generated_configmaps()),
                        "k8s")


def k8s_tool(name):
    """build/k8s/bin/NAME (helm, kustomize), which `make k8s-tools`
    builds."""
    path = K8S_BIN / name
    assert os.access(path, os.X_OK), "%s is missing: run `make k8s-tools` " \
        "(builds helm and kustomize from tests/tools/k8s; `make test` " \
        "does it first)" % rel(path)
    return str(path)


_built = {}


def kustomize_build(path=K8S):
    """The objects `kustomize build PATH` makes (once per path)."""
    key = str(path)
    if key not in _built:
        r = subprocess.run([k8s_tool("kustomize"), "build", str(path)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, "kustomize build %s: %s" % (
            rel(path), r.stderr.strip()[-800:])
        _built[key] = [d for d in yaml.safe_load_all(r.stdout) if d]
    return _built[key]


def built(kind, docs=None):
    """The one object of \\p kind in a build (the default build of
    docker/kubernetes by default)."""
    found = [d for d in (docs or kustomize_build()) if d["kind"] == kind]
    assert len(found) == 1, "the build has %d %s objects, expected one" % (
        len(found), kind)
    return found[0]


def built_configmaps(docs=None):
    return {d["metadata"]["name"]: d.get("data", {})
            for d in (docs or kustomize_build()) if d["kind"] == "ConfigMap"}


def built_config(docs=None, name="k8s-built"):
    """The effective configuration of a pod of a build: the ak2vault.cfg
    of the ConfigMap mounted at /etc/ak2vault, with the environment the
    Deployment gives it."""
    docs = docs or kustomize_build()
    dep = built("Deployment", docs)
    vol, key = mounted_file("/etc/ak2vault/ak2vault.cfg", dep)
    assert vol and "configMap" in vol, "/etc/ak2vault is not a ConfigMap"
    cms = built_configmaps(docs)
    data = cms.get(vol["configMap"]["name"])
    assert data and key in data, "the ConfigMap %s holds no %s" % (
        vol["configMap"]["name"], key)
    return check_config(data[key], pod_env(dep, cms), name)


# ---------------------------------------------------------------------------


def setup(rundir):
    global RUN
    RUN = rundir
    assert yaml is not None, "PyYAML is missing (apt-get install " \
        "python3-yaml, or `make deps`)"


def test_assets_parse():
    files = asset_files(DOCKER)
    for want in (COMPOSE, K8S / "kustomization.yaml", PROMETHEUSRULE):
        assert want in files, "%s is missing" % rel(want)
    bad = []
    for p in files:
        try:
            docs = load_docs(p)
        except Exception as e:  # noqa: BLE001 - any parse error fails
            bad.append("%s: %s" % (rel(p), " ".join(str(e).split())[:200]))
            continue
        if not docs:
            bad.append("%s: empty" % rel(p))
        bad.extend("%s: document %d is not a mapping" % (rel(p), i + 1)
                   for i, d in enumerate(docs) if not isinstance(d, dict))
    assert not bad, "; ".join(bad)


# -- Kubernetes --------------------------------------------------------------


def test_kustomizations_list_every_manifest():
    listed = {}
    problems = []
    root = root_kustomization()
    assert root.get("kind") == "Kustomization", "root is not a Kustomization"
    assert root.get("namespace"), \
        "kustomization.yaml names no namespace (the manifests carry none)"
    for d in kustomization_dirs():
        k = load_one(d / "kustomization.yaml")
        if d != K8S:
            if k.get("kind") != "Component":
                problems.append("%s is not a Component" % rel(d))
            if "namespace" in k:
                problems.append("%s sets a namespace" % rel(d))
        for r in k.get("resources", []):
            p = (d / r).resolve()
            if not p.is_file():
                problems.append("%s lists %s, which is not a file"
                                % (rel(d), r))
            elif p in listed:
                problems.append("%s is listed twice" % rel(p))
            listed[p] = d
        for c in k.get("components", []):
            if not (d / c / "kustomization.yaml").is_file():
                problems.append("%s: component %s does not exist"
                                % (rel(d), c))
        for g in k.get("configMapGenerator", []) + \
                k.get("secretGenerator", []):
            # A ConfigMap's literals are settings (the Kafka coordinates);
            # a Secret's would be a secret in the repository.
            if (g.get("literals") or g.get("envs")) and \
                    g in k.get("secretGenerator", []):
                problems.append("%s: generator %s has literal values"
                                % (rel(d), g.get("name")))
            for f in g.get("files", []):
                f = f.split("=", 1)[-1]
                if not (d / f).is_file():
                    problems.append("%s: generator file %s is missing"
                                    % (rel(d), f))
    # Every component is reachable from the root: used, or offered in a
    # commented line (test_sasl_options_hold_together builds those).
    reached = {K8S}
    for c in root.get("components", []) + offered_components():
        reached.add((K8S / c).resolve())
    for c in offered_components():
        if c in root.get("components", []):
            problems.append("%s is both used and offered" % c)
        if not (K8S / c / "kustomization.yaml").is_file():
            problems.append("kustomization.yaml offers %s, which does not "
                            "exist" % c)
    for d in kustomization_dirs():
        if d.resolve() not in reached and d != K8S:
            problems.append("%s is not used by kustomization.yaml" % rel(d))
    for p in asset_files(K8S):
        if p.name != "kustomization.yaml" and p.resolve() not in listed:
            problems.append("%s is in no kustomization" % rel(p))
    assert not problems, "; ".join(problems)


def test_manifests_have_required_fields():
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding", "Namespace"}
    problems = []
    seen = set()
    for p, d in manifests():
        where = "%s (%s)" % (rel(p), d.get("kind"))
        for f in ("apiVersion", "kind"):
            if not d.get(f):
                problems.append("%s: no %s" % (where, f))
        meta = d.get("metadata") or {}
        if not meta.get("name"):
            problems.append("%s: no metadata.name" % where)
        if "namespace" in meta:
            problems.append("%s: sets metadata.namespace (kustomization.yaml "
                            "names it)" % where)
        key = (d.get("kind"), meta.get("name"))
        if key in seen:
            problems.append("%s: a second %s %s" % ((where,) + key))
        seen.add(key)
        labels = meta.get("labels") or {}
        if labels.get("app.kubernetes.io/name") != "ak2vault":
            problems.append("%s: no label app.kubernetes.io/name=ak2vault"
                            % where)
        if d.get("kind") in cluster_scoped:
            continue
    for kind in ("Deployment", "ServiceAccount", "Service",
                 "PodDisruptionBudget", "ClusterRoleBinding", "ScaledObject",
                 "PodMonitor", "PrometheusRule", "NetworkPolicy",
                 "TriggerAuthentication"):
        if not objects(kind):
            problems.append("no %s" % kind)
    assert not problems, "; ".join(problems)


def pod_labels():
    return the("Deployment")["spec"]["template"]["metadata"]["labels"]


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v
                                  for k, v in selector.items())


def container():
    cs = the("Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(cs) == 1, "%d containers, expected one" % len(cs)
    return cs[0]


def test_deployment_runs_the_group():
    dep = the("Deployment")
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    c = container()
    cfg = k8s_config()
    ref = config_reference()
    problems = []

    if not selects(spec["selector"].get("matchLabels"), pod_labels()):
        problems.append("selector %s does not match the pod labels %s"
                        % (spec["selector"], pod_labels()))

    # The image is the one kustomization.yaml points at the pushed build.
    images = {i["name"] for i in root_kustomization().get("images", [])}
    if c.get("image") not in images:
        problems.append("image %r is not set by kustomization.yaml's images"
                        % c.get("image"))

    # Static membership: the pod name, through the variable that
    # config-reference names for kafka.instance_id.
    var = ref.get("kafka.instance_id")
    env = {e["name"]: e for e in c.get("env", [])}
    if not var or var not in env:
        problems.append("no %s in the container's environment" % var)
    elif (env[var].get("valueFrom", {}).get("fieldRef", {})
          .get("fieldPath")) != "metadata.name":
        problems.append("%s does not come from metadata.name" % var)
    for name, e in env.items():
        if re.search(r"TOKEN|SECRET|PASS|KEY|JWT", name) and "value" in e:
            problems.append("literal value for %s" % name)
    # Every variable is one the worker reads (config-reference).
    known = set(ref.values())
    for name in env:
        if name not in known:
            problems.append("%s is no variable of config-reference" % name)
    # Brokers, topic and group: the variables of kafka.brokers, .topic and
    # .group, from the generated ConfigMap, and nowhere in ak2vault.cfg.
    coords = kafka_coordinates()
    for var, setting in COORDINATES.items():
        if ref.get(setting) != var:
            problems.append("config-reference names %r for %s, not %s"
                            % (ref.get(setting), setting, var))
        cm = (env.get(var, {}).get("valueFrom") or {}).get(
            "configMapKeyRef") or {}
        if cm.get("name") != KAFKA_CM or cm.get("key") != var:
            problems.append("%s is not key %s of ConfigMap %s: %s"
                            % (var, var, KAFKA_CM, env.get(var)))
        if cfg[setting] != coords[var]:
            problems.append("the worker's %s is %r, not %s's %r"
                            % (setting, cfg[setting], KAFKA_CM,
                               coords[var]))
    kafka_group = re.search(r"^kafka:\s*\{(.*?)^\};",
                            (K8S / "ak2vault.cfg").read_text(), re.M | re.S)
    for setting in COORDINATES.values():
        word = setting.split(".")[1]
        if kafka_group and re.search(r"^\s*%s\s*=" % word,
                                     kafka_group.group(1), re.M):
            problems.append("ak2vault.cfg sets %s, which %s holds"
                            % (setting, KAFKA_CM))

    # Probes on the port metrics.listen opens.
    port = listen_port(cfg["metrics.listen"])
    ports = {p.get("name"): p for p in c.get("ports", [])}
    if ports.get("metrics", {}).get("containerPort") != port:
        problems.append("no container port 'metrics' = %d (metrics.listen)"
                        % port)
    for probe, path in (("livenessProbe", "/livez"),
                        ("readinessProbe", "/readyz")):
        get = (c.get(probe) or {}).get("httpGet") or {}
        if get.get("path") != path or get.get("port") not in ("metrics",
                                                              port):
            problems.append("%s is not GET %s on the metrics port: %s"
                            % (probe, path, get))

    # A surge pod may get no partition and never turn ready.
    ru = spec.get("strategy", {}).get("rollingUpdate", {})
    if spec.get("strategy", {}).get("type") != "RollingUpdate" or \
            str(ru.get("maxSurge")) != "0" or \
            str(ru.get("maxUnavailable")) in ("0", "None"):
        problems.append("strategy must be RollingUpdate with maxSurge 0: %s"
                        % spec.get("strategy"))

    grace = pod.get("terminationGracePeriodSeconds", 30)
    if grace * 1000 <= cfg["sync.shutdown_timeout_ms"] + 5000:
        problems.append("terminationGracePeriodSeconds %s does not outlast "
                        "sync.shutdown_timeout_ms %d" %
                        (grace, cfg["sync.shutdown_timeout_ms"]))

    psc = pod.get("securityContext") or {}
    csc = c.get("securityContext") or {}
    if not (psc.get("runAsNonRoot") or csc.get("runAsNonRoot")):
        problems.append("runAsNonRoot is not set")
    if psc.get("runAsUser", csc.get("runAsUser")) in (0, None):
        problems.append("no non-root runAsUser")
    if csc.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem is not true")
    if csc.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    if (csc.get("capabilities") or {}).get("drop") != ["ALL"]:
        problems.append("capabilities do not drop ALL")
    res = c.get("resources") or {}
    if not res.get("requests") or not (res.get("limits") or {}).get("memory"):
        problems.append("no resource requests or memory limit")

    # The ServiceAccount Vault's role binds, and no Kubernetes API token.
    sas = {o["metadata"]["name"] for o in objects("ServiceAccount")}
    if pod.get("serviceAccountName") not in sas:
        problems.append("serviceAccountName %r has no manifest"
                        % pod.get("serviceAccountName"))
    assert not problems, "; ".join(problems)


def mounted_file(path, dep=None):
    """(volume, key inside it) for the file \\p path of the container of
    \\p dep (the Deployment manifest by default), from its volumeMounts."""
    dep = dep or the("Deployment")
    c = dep["spec"]["template"]["spec"]["containers"][0]
    vols = {v["name"]: v for v in
            dep["spec"]["template"]["spec"].get("volumes", [])}
    for m in c.get("volumeMounts", []):
        prefix = m["mountPath"].rstrip("/") + "/"
        if path.startswith(prefix):
            return vols.get(m["name"]), path[len(prefix):]
    return None, None


def volume_items(vol):
    """{path inside the volume: source} of a configMap, secret or projected
    volume."""
    out = {}
    sources = []
    if "projected" in vol:
        sources = vol["projected"]["sources"]
    else:
        sources = [vol]
    for s in sources:
        if "serviceAccountToken" in s:
            out[s["serviceAccountToken"]["path"]] = s
        for kind in ("configMap", "secret"):
            if kind in s:
                items = s[kind].get("items")
                if items:
                    for i in items:
                        out[i["path"]] = {kind: s[kind], "key": i["key"]}
                else:
                    out["*"] = {kind: s[kind]}
    return out


def test_deployment_mounts_what_the_config_reads():
    cfg = k8s_config()
    problems = []
    gen = [g["name"] for g in root_kustomization().get("configMapGenerator",
                                                       [])]
    # The configuration itself.
    vol, key = mounted_file("/etc/ak2vault/ak2vault.cfg")
    args = container().get("args", [])
    if "/etc/ak2vault/ak2vault.cfg" not in args:
        problems.append("the container does not run -c "
                        "/etc/ak2vault/ak2vault.cfg: %s" % args)
    if not vol or (vol.get("configMap") or {}).get("name") not in gen:
        problems.append("/etc/ak2vault is not the generated ConfigMap")
    # The authentik token: from a Secret, never a value.
    vol, key = mounted_file(cfg["authentik.token_file"] or "")
    item = volume_items(vol or {}).get(key) or {}
    if "secret" not in item:
        problems.append("authentik.token_file %s is not a Secret's key"
                        % cfg["authentik.token_file"])
    # Vault login: kubernetes, with a projected token at jwt_file.
    if cfg["vault.auth.method"] != "kubernetes":
        problems.append("vault.auth.method is %r, not kubernetes"
                        % cfg["vault.auth.method"])
    if cfg["vault.auth.jwt_file"] != \
            "/var/run/secrets/kubernetes.io/serviceaccount/token":
        problems.append("vault.auth.jwt_file is %r"
                        % cfg["vault.auth.jwt_file"])
    vol, key = mounted_file(cfg["vault.auth.jwt_file"])
    tok = volume_items(vol or {}).get(key) or {}
    aud = (tok.get("serviceAccountToken") or {}).get("audience")
    if not aud:
        problems.append("no projected ServiceAccount token with an audience "
                        "at vault.auth.jwt_file")
    elif aud != setup_default("K8S_AUDIENCE"):
        problems.append("token audience %r differs from setup.sh's %r"
                        % (aud, setup_default("K8S_AUDIENCE")))
    pod = the("Deployment")["spec"]["template"]["spec"]
    if pod.get("automountServiceAccountToken") is not False:
        problems.append("the Kubernetes API token is mounted (the worker "
                        "never calls the API)")
    assert not problems, "; ".join(problems)


def test_service_pdb_and_podmonitor_select_the_pods():
    labels = pod_labels()
    problems = []
    svc = the("Service")
    if not selects(svc["spec"].get("selector"), labels):
        problems.append("Service selector %s" % svc["spec"].get("selector"))
    if not svc["spec"].get("publishNotReadyAddresses"):
        problems.append("the metrics Service hides unready workers")
    ports = [p for p in svc["spec"].get("ports", [])
             if p.get("targetPort") in ("metrics", listen_port(
                 k8s_config()["metrics.listen"]))]
    if not ports:
        problems.append("the Service has no port to the metrics port")
    pdb = the("PodDisruptionBudget")
    if not selects(pdb["spec"].get("selector", {}).get("matchLabels"),
                   labels):
        problems.append("PodDisruptionBudget selector")
    if "maxUnavailable" not in pdb["spec"] and \
            "minAvailable" not in pdb["spec"]:
        problems.append("PodDisruptionBudget allows nothing")
    pm = the("PodMonitor")
    if not selects(pm["spec"].get("selector", {}).get("matchLabels"),
                   labels):
        problems.append("PodMonitor selector")
    eps = pm["spec"].get("podMetricsEndpoints", [])
    if not any(e.get("port") == "metrics" and
               e.get("path", "/metrics") == "/metrics" for e in eps):
        problems.append("PodMonitor does not scrape /metrics on 'metrics'")
    job = labels.get(pm["spec"].get("jobLabel", ""), "")
    if not job.startswith("ak2vault"):
        problems.append("PodMonitor's job would be %r; the alert rules "
                        "expect ak2vault" % job)
    assert not problems, "; ".join(problems)


def readme_partitions():
    """The partition count README's Kubernetes section creates the topic
    with."""
    m = re.search(r"--partitions (\d+)", section("Installing on Kubernetes"))
    assert m, "README's Kubernetes section creates no topic (--partitions N)"
    return int(m.group(1))


def test_scaledobject_scales_the_group():
    """On the built objects: the replacements have put the generated
    ConfigMap's coordinates into the trigger, where the source holds only
    stand-ins (the values are written once)."""
    docs = kustomize_build()
    so = built("ScaledObject", docs)
    dep = built("Deployment", docs)
    cfg = built_config(docs)
    coords = kafka_coordinates()
    spec = so["spec"]
    problems = []
    ref = spec.get("scaleTargetRef", {})
    if ref.get("name") != dep["metadata"]["name"] or \
            ref.get("kind", "Deployment") != "Deployment":
        problems.append("scaleTargetRef %s is not the Deployment" % ref)
    kafka = [t for t in spec.get("triggers", []) if t.get("type") == "kafka"]
    source = [t for t in the("ScaledObject")["spec"].get("triggers", [])
              if t.get("type") == "kafka"]
    if len(kafka) != 1 or len(source) != 1:
        problems.append("%d kafka triggers, expected one" % len(kafka))
    else:
        md = kafka[0]["metadata"]
        for key, setting in (("consumerGroup", "kafka.group"),
                             ("topic", "kafka.topic"),
                             ("bootstrapServers", "kafka.brokers"),
                             ("offsetResetPolicy", "kafka.auto_offset_reset")):
            if md.get(key) != cfg[setting]:
                problems.append("%s %r differs from the worker's %s %r" % (
                    key, md.get(key), setting, cfg[setting]))
        for var, key in TRIGGER_KEYS.items():
            if md.get(key) != coords[var]:
                problems.append("the replacement of %s did not land: %s is "
                                "%r" % (var, key, md.get(key)))
            if source[0]["metadata"].get(key) == coords[var]:
                problems.append("scaledobject.yaml repeats %s's value %r "
                                "(the replacements fill it in)"
                                % (var, coords[var]))
        if not str(md.get("lagThreshold", "")).isdigit():
            problems.append("no lagThreshold")
        if str(md.get("allowIdleConsumers", "false")).lower() == "true":
            problems.append("allowIdleConsumers lets KEDA add replicas that "
                            "hold no partition")
    top = spec.get("maxReplicaCount")
    parts = readme_partitions()
    if not isinstance(top, int) or top > parts:
        problems.append("maxReplicaCount %r exceeds the %d partitions"
                        % (top, parts))
    if not 1 <= spec.get("minReplicaCount", 0) <= (top or 0):
        problems.append("minReplicaCount %r" % spec.get("minReplicaCount"))
    assert not problems, "; ".join(problems)


def test_kafka_coordinates_are_written_once():
    """The brokers and the topic appear in one file of docker/kubernetes,
    kustomization.yaml (the group's name is also that of other objects, so
    the ScaledObject's stand-ins above cover it)."""
    coords = kafka_coordinates()
    problems = []
    for var in ("KAFKA_BROKERS", "KAFKA_TOPIC"):
        holders = [rel(p) for p in sorted(K8S.rglob("*")) if p.is_file()
                   and coords[var] in p.read_text()]
        if holders != [rel(K8S / "kustomization.yaml")]:
            problems.append("%s's value %r is in %s" % (var, coords[var],
                                                        holders))
    assert not problems, "; ".join(problems)


def test_network_policy_lets_through_what_the_worker_needs():
    np = the("NetworkPolicy")
    spec = np["spec"]
    cfg = k8s_config()
    problems = []
    if not selects(spec.get("podSelector", {}).get("matchLabels"),
                   pod_labels()):
        problems.append("podSelector %s does not select the pods"
                        % spec.get("podSelector"))
    if sorted(spec.get("policyTypes", [])) != ["Egress", "Ingress"]:
        problems.append("policyTypes %s: both directions must be "
                        "restricted" % spec.get("policyTypes"))
    metrics = listen_port(cfg["metrics.listen"])
    ins = [(str(p.get("port")), p.get("protocol", "TCP"))
           for r in spec.get("ingress", []) for p in r.get("ports", [])]
    if not spec.get("ingress") or any(not r.get("ports")
                                      for r in spec["ingress"]):
        problems.append("an ingress rule without ports lets in everything")
    if set(ins) not in ({("metrics", "TCP")}, {(str(metrics), "TCP")}):
        problems.append("ingress ports %s, expected only the metrics port"
                        % ins)
    outs = set()
    for r in spec.get("egress", []):
        if not r.get("ports"):
            problems.append("an egress rule without ports: %s" % r)
        for p in r.get("ports", []):
            outs.add((int(p["port"]), p.get("protocol", "TCP")))
    want = {(53, "UDP"), (53, "TCP"),
            (url_port(cfg["vault.addr"]), "TCP"),
            (url_port(cfg["authentik.url"]), "TCP")}
    want |= {(p, "TCP") for p in broker_ports(cfg["kafka.brokers"])}
    if outs != want:
        problems.append("egress ports %s; the worker needs %s (DNS, "
                        "kafka.brokers, vault.addr, authentik.url)"
                        % (sorted(outs), sorted(want)))
    assert not problems, "; ".join(problems)


def prometheusrule_text():
    src = ALERTS.read_text().splitlines()
    i = 0
    while i < len(src) and (src[i].startswith("#") or not src[i].strip()):
        i += 1
    head = """\
# The alert rules of docker/prometheus/alerts.yaml as a PrometheusRule:
# spec is that file's content, unchanged (a test compares the two; after
# editing alerts.yaml, regenerate this file with
# `tests/integration/test_deploy_assets.py --write-prometheusrule`).
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: ak2vault
  labels:
    app.kubernetes.io/name: ak2vault
    app.kubernetes.io/component: worker
spec:
"""
    return head + "\n".join("  " + l if l.strip() else ""
                            for l in src[i:]) + "\n"


def test_prometheusrule_is_the_alert_rules():
    rule = load_one(PROMETHEUSRULE)
    want = load_one(ALERTS)
    assert rule.get("spec") == want, \
        "%s differs from %s: regenerate it with %s --write-prometheusrule" \
        % (rel(PROMETHEUSRULE), rel(ALERTS), rel(__file__))


def test_no_secret_values_in_manifests():
    problems = []
    for p, d in manifests():
        if d.get("kind") == "Secret":
            if d.get("data") or d.get("stringData"):
                problems.append("%s: Secret %s holds values" % (
                    rel(p), d["metadata"]["name"]))
            if d.get("type") != "kubernetes.io/service-account-token":
                problems.append("%s: a Secret Kubernetes does not fill"
                                % rel(p))
    # Nothing that looks like a credential anywhere in the tree.
    pattern = re.compile(r"(hvs\.[A-Za-z0-9_-]{20,}|eyJ[A-Za-z0-9_-]{20,}|"
                         r"-----BEGIN [A-Z ]*PRIVATE KEY)")
    for p in sorted(DOCKER.rglob("*")):
        if p.is_file() and pattern.search(p.read_text(errors="replace")):
            problems.append("%s holds something like a credential" % rel(p))
    assert not problems, "; ".join(problems)


def test_tokenreview_binding():
    crb = the("ClusterRoleBinding")
    problems = []
    if crb["roleRef"].get("name") != "system:auth-delegator" or \
            crb["roleRef"].get("kind") != "ClusterRole":
        problems.append("roleRef %s" % crb["roleRef"])
    sas = {o["metadata"]["name"] for o in objects("ServiceAccount")}
    for s in crb.get("subjects", []):
        if s.get("kind") != "ServiceAccount" or s.get("name") not in sas:
            problems.append("subject %s is not a ServiceAccount of the "
                            "manifests" % s)
        if s.get("name") == the("Deployment")["spec"]["template"]["spec"] \
                .get("serviceAccountName"):
            problems.append("the worker's own ServiceAccount may review "
                            "tokens")
    assert crb.get("subjects"), "no subjects"
    assert not problems, "; ".join(problems)


def test_kustomize_builds():
    docs = kustomize_build()
    ns = root_kustomization()["namespace"]
    problems = []
    kinds = {}
    for d in docs:
        kinds[d["kind"]] = d
        if d["kind"] not in ("ClusterRoleBinding", "ClusterRole") and \
                d["metadata"].get("namespace") != ns:
            problems.append("%s %s is not in %s" % (
                d["kind"], d["metadata"]["name"], ns))
    crb = kinds.get("ClusterRoleBinding", {})
    for s in crb.get("subjects", []):
        if s.get("namespace") != ns:
            problems.append("ClusterRoleBinding subject %s has namespace %r"
                            % (s.get("name"), s.get("namespace")))
    dep = built("Deployment", docs)
    if "replicas" in dep.get("spec", {}):
        problems.append("the built Deployment sets replicas (KEDA owns them)")
    vol, _ = mounted_file("/etc/ak2vault/ak2vault.cfg", dep)
    cms = built_configmaps(docs)
    cfg_cm = cms.get(((vol or {}).get("configMap") or {}).get("name"), {})
    if cfg_cm.get("ak2vault.cfg") != (K8S / "ak2vault.cfg").read_text():
        problems.append("the ConfigMap at /etc/ak2vault does not hold "
                        "ak2vault.cfg")
    # The coordinates reach the pods from the generated ConfigMap, under
    # its generated name (a change rolls the pods).
    env = pod_env(dep, cms)
    coords = kafka_coordinates()
    for var in COORDINATES:
        if env.get(var) != coords[var]:
            problems.append("the pods' %s is %r, not %r" % (
                var, env.get(var), coords[var]))
    refs = {(e.get("valueFrom") or {}).get("configMapKeyRef", {}).get("name")
            for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    if not any(r and r.startswith(KAFKA_CM + "-") for r in refs):
        problems.append("the pods do not read the generated %s-<hash>: %s"
                        % (KAFKA_CM, sorted(r for r in refs if r)))
    image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
    if image == "ak2vault":
        problems.append("the image name was not replaced")
    assert not problems, "; ".join(problems)


def test_built_objects_carry_the_recommended_labels():
    """Every object carries app.kubernetes.io/{name, instance, component,
    part-of, version, managed-by}, the pods too; version is the image's
    tag. Selectors keep to name and component, so that a new version or
    instance label never changes a Deployment's selector (immutable) or
    lets one select the pods of another."""
    docs = kustomize_build()
    problems = []
    images = root_kustomization().get("images", [])
    tags = {i.get("newTag") for i in images}
    dep = built("Deployment", docs)
    objs = [("%s %s" % (d["kind"], d["metadata"]["name"]),
             d["metadata"].get("labels") or {}) for d in docs]
    objs.append(("the pods", dep["spec"]["template"]["metadata"]["labels"]))
    for what, labels in objs:
        missing = [l for l in RECOMMENDED
                   if not labels.get("app.kubernetes.io/" + l)]
        if missing:
            problems.append("%s lacks %s" % (what, missing))
        if labels.get("app.kubernetes.io/version") not in tags:
            problems.append("%s: version %r is not the image tag %s" % (
                what, labels.get("app.kubernetes.io/version"), sorted(tags)))
    selectors = [
        ("Deployment", dep["spec"]["selector"]["matchLabels"]),
        ("Service", built("Service", docs)["spec"]["selector"]),
        ("PodDisruptionBudget", built("PodDisruptionBudget", docs)["spec"]
         ["selector"]["matchLabels"]),
        ("PodMonitor", built("PodMonitor", docs)["spec"]["selector"]
         ["matchLabels"]),
        ("NetworkPolicy", built("NetworkPolicy", docs)["spec"]["podSelector"]
         ["matchLabels"])]
    selectors += [("topologySpreadConstraints", t["labelSelector"]
                   ["matchLabels"]) for t in dep["spec"]["template"]["spec"]
                  .get("topologySpreadConstraints", [])]
    stable = {"app.kubernetes.io/name", "app.kubernetes.io/component"}
    pods = dep["spec"]["template"]["metadata"]["labels"]
    for what, sel in selectors:
        if set(sel) != stable:
            problems.append("%s selects by %s, expected %s" % (
                what, sorted(sel), sorted(stable)))
        if not selects(sel, pods):
            problems.append("%s does not select the pods" % what)
    assert not problems, "; ".join(problems)


def sasl_variant(with_ca):
    """docker/kubernetes copied, with its SASL_SSL options switched on as
    their comments say: the offered components kafka-sasl and keda-sasl
    uncommented in kustomization.yaml, the SASL properties of ak2vault.cfg
    (and, \\p with_ca, its ssl.ca.location and the TriggerAuthentication's
    ca). @returns (directory, the new ak2vault.cfg's text)."""
    d = RUN.path / ("k8s-sasl%s" % ("-ca" if with_ca else ""))
    shutil.copytree(K8S, d)
    k = d / "kustomization.yaml"
    text, n = re.subn(r"^(\s*)#\s*(-\s*components/(?:kafka|keda)-sasl)\s*$",
                      r"\1\2", k.read_text(), flags=re.M)
    assert n == 2, "kustomization.yaml offers %d of components/kafka-sasl " \
        "and keda-sasl" % n
    k.write_text(text)
    cfg = d / "ak2vault.cfg"
    keys = r"security\.protocol|sasl\.[a-z]+" + \
        (r"|ssl\.ca\.location" if with_ca else "")
    text, n = re.subn(r'^(\s*)#\s*(\("(?:%s)",.*)$' % keys, r"\1\2",
                      cfg.read_text(), flags=re.M)
    assert n >= 4, "ak2vault.cfg has %d commented SASL properties" % n
    cfg.write_text(text)
    if with_ca:
        ta = d / "components" / "keda-sasl" / "triggerauthentication.yaml"
        lines = ta.read_text().splitlines()
        start = [i for i, l in enumerate(lines)
                 if re.match(r"^\s*#\s*- parameter: ca\s*$", l)]
        assert len(start) == 1, "triggerauthentication.yaml offers no ca"
        for i in range(start[0], start[0] + 3):
            lines[i] = re.sub(r"^(\s*)# ", r"\1", lines[i])
        ta.write_text("\n".join(lines) + "\n")
    return d, text


def test_sasl_options_hold_together():
    """The offered SASL_SSL set-up, switched on: the worker's credentials
    are keys of the Secret the pods mount, KEDA's TriggerAuthentication
    hands the trigger the same keys, and the trigger's sasl and tls say
    what the worker's properties say."""
    problems = []
    for with_ca in (False, True):
        d, cfg_text = sasl_variant(with_ca)
        docs = kustomize_build(d)
        cfg = built_config(docs, "k8s-sasl")
        props = dict(cfg["kafka.properties"])
        dep = built("Deployment", docs)
        where = "with a CA" if with_ca else "without a CA"

        def key_of(path):
            """(Secret, key) of the mounted file \\p path."""
            vol, key = mounted_file(path, dep)
            item = volume_items(vol or {}).get(key) or \
                volume_items(vol or {}).get("*") or {}
            if "secret" not in item:
                problems.append("%s: %s is no Secret's file" % (where, path))
                return None
            return item["secret"]["secretName"], item.get("key", key)

        reads = {}
        for param, prop in (("username", "sasl.username"),
                            ("password", "sasl.password"),
                            ("ca", "ssl.ca.location")):
            v = props.get(prop)
            if v is None:
                continue
            if param != "ca" and not v.startswith("@file:"):
                problems.append("%s: %s is not read from a file: %r" % (
                    where, prop, v))
                continue
            reads[param] = key_of(v[6:] if v.startswith("@file:") else v)
        if ("ca" in reads) != with_ca:
            problems.append("%s: ssl.ca.location is %s" % (
                where, props.get("ssl.ca.location")))
        so = built("ScaledObject", docs)
        trig = [t for t in so["spec"]["triggers"] if t["type"] == "kafka"][0]
        auths = {a["metadata"]["name"]: a for a in docs
                 if a["kind"] == "TriggerAuthentication"}
        ta = auths.get((trig.get("authenticationRef") or {}).get("name"))
        if not ta:
            problems.append("%s: the trigger's authenticationRef %s names "
                            "no TriggerAuthentication (%s)" % (
                                where, trig.get("authenticationRef"),
                                sorted(auths)))
            continue
        hands = {r["parameter"]: (r["name"], r["key"])
                 for r in ta["spec"].get("secretTargetRef", [])}
        if hands != reads:
            problems.append("%s: KEDA gets %s, the worker reads %s" % (
                where, hands, reads))
        md = trig["metadata"]
        want_sasl = KEDA_SASL.get(props.get("sasl.mechanism"))
        if md.get("sasl") != want_sasl:
            problems.append("%s: the trigger's sasl %r, the worker's "
                            "mechanism %r" % (where, md.get("sasl"),
                                             props.get("sasl.mechanism")))
        tls = props.get("security.protocol") in ("SSL", "SASL_SSL")
        if (md.get("tls") == "enable") != tls:
            problems.append("%s: the trigger's tls %r for %s" % (
                where, md.get("tls"), props.get("security.protocol")))
        for var, key in TRIGGER_KEYS.items():
            if md.get(key) != kafka_coordinates()[var]:
                problems.append("%s: %s lost its replacement" % (where, key))
    assert not problems, "; ".join(problems)


# -- compose -------------------------------------------------------------------


def compose():
    return load_one(COMPOSE)


def workers(doc):
    return {n: s for n, s in doc["services"].items()
            if "docker/Dockerfile" in str((s.get("build") or {})
                                          .get("dockerfile", ""))}


def test_compose_references_existing_files():
    doc = compose()
    problems = []
    services = doc.get("services", {})
    for name, s in services.items():
        b = s.get("build")
        if b:
            ctx = (DOCKER / b.get("context", ".")).resolve()
            if not (ctx / b.get("dockerfile", "Dockerfile")).is_file():
                problems.append("%s: no %s in %s" % (
                    name, b.get("dockerfile"), rel(ctx)))
        elif not s.get("image"):
            problems.append("%s: neither image nor build" % name)
        image = str(s.get("image", ""))
        if not b and (image.endswith(":latest") or ":" not in
                      image.split("/")[-1].replace("}", "")):
            problems.append("%s: image %r is not pinned" % (name, image))
        for v in s.get("volumes", []):
            src = v.split(":")[0] if isinstance(v, str) else v.get("source")
            if src.startswith((".", "/")):
                if not (DOCKER / src).exists():
                    problems.append("%s: %s does not exist" % (name, src))
            elif src not in (doc.get("volumes") or {}):
                problems.append("%s: volume %s is not declared" % (name, src))
        for dep in (s.get("depends_on") or {}):
            if dep not in services:
                problems.append("%s depends on unknown %s" % (name, dep))
        for sec in s.get("secrets", []):
            sec = sec if isinstance(sec, str) else sec.get("source")
            if sec not in (doc.get("secrets") or {}):
                problems.append("%s: secret %s is not declared" % (name, sec))
        if s.get("env_file"):
            problems.append("%s: env_file hands every secret of .env to "
                            "the service" % name)
    # Every variable the file needs without a default comes from
    # make-env.sh.
    made = set(re.findall(r"^([A-Z0-9_]+)=", MAKE_ENV.read_text(),
                          re.M))
    text = COMPOSE.read_text()
    for var in re.findall(r"\$\{([A-Z0-9_]+)(?::?\?[^}]*)?\}", text):
        if var not in made:
            problems.append("${%s} has no default and make-env.sh does not "
                            "write it" % var)
    for sec in (doc.get("secrets") or {}).values():
        if sec.get("environment") and sec["environment"] not in made:
            problems.append("secret from %s, which make-env.sh does not "
                            "write" % sec["environment"])
    assert not problems, "; ".join(problems)


def test_compose_workers_form_one_group():
    doc = compose()
    ws = workers(doc)
    assert len(ws) >= 2, "%d ak2vault services, expected two" % len(ws)
    groups, ids, ports = set(), set(), set()
    problems = []
    cfg_text = (DOCKER / "compose" / "ak2vault.cfg").read_text()
    for name, s in ws.items():
        env = {k: str(v) for k, v in (s.get("environment") or {}).items()}
        for k, v in env.items():
            if re.search(r"TOKEN|SECRET|PASS", k) and not k.endswith("_FILE"):
                problems.append("%s: %s given as a value" % (name, k))
        cfg = check_config(cfg_text, env, "compose-" + name)
        groups.add(cfg["kafka.group"])
        ids.add(cfg["kafka.instance_id"])
        if not cfg["kafka.instance_id"]:
            problems.append("%s has no instance id" % name)
        test = " ".join(s.get("healthcheck", {}).get("test", []))
        if "/livez" not in test:
            problems.append("%s: healthcheck does not ask /livez" % name)
        for p in s.get("ports", []):
            if str(p).rsplit(":", 1)[-1] != str(listen_port(
                    cfg["metrics.listen"])):
                problems.append("%s publishes %s, not metrics.listen" %
                                (name, p))
            ports.add(str(p).rsplit(":", 1)[0])
        mounts = [v.split(":")[1] for v in s.get("volumes", [])
                  if isinstance(v, str)]
        if "/etc/ak2vault/ak2vault.cfg" not in mounts:
            problems.append("%s does not mount docker/compose/ak2vault.cfg"
                            % name)
        if cfg["authentik.token_file"] != "/run/secrets/authentik-token" \
                or "authentik-token" not in s.get("secrets", []):
            problems.append("%s: authentik.token_file is not the secret"
                            % name)
        vt = cfg["vault.token_file"] or ""
        if not any(vt.startswith(m + "/") for m in mounts):
            problems.append("%s: vault.token_file %s is not mounted"
                            % (name, vt))
    if len(groups) != 1:
        problems.append("the workers are in groups %s" % sorted(groups))
    if len(ids) != len(ws):
        problems.append("the workers share instance ids: %s" % sorted(ids))
    if len(ports) != len(ws):
        problems.append("the workers publish the same host port")
    # Prometheus scrapes them by service name.
    prom = load_one(DOCKER / "prometheus" / "prometheus.yml")
    targets = {t.split(":")[0] for j in prom["scrape_configs"]
               for sc in j.get("static_configs", []) for t in sc["targets"]}
    if not set(ws) <= targets:
        problems.append("prometheus.yml scrapes %s, not %s" %
                        (sorted(targets), sorted(ws)))
    assert not problems, "; ".join(problems)


def test_compose_one_shots_set_up_kafka_and_vault():
    doc = compose()
    s = doc["services"]
    problems = []
    topics = " ".join(str(x) for x in s.get("kafka-init", {})
                      .get("command", []))
    for t in ("authentik.events", "authentik.events.dlq"):
        if not re.search(r"--topic %s\s" % re.escape(t), topics + " "):
            problems.append("kafka-init does not create %s" % t)
    vs = s.get("vault-setup", {})
    argv = vs.get("entrypoint", []) + vs.get("command", [])
    if "/setup/setup.sh" not in argv or "token" not in argv:
        problems.append("vault-setup does not run setup.sh token: %s" % argv)
    if "./vault:/setup:ro" not in vs.get("volumes", []):
        problems.append("vault-setup does not mount docker/vault")
    # authentik's server and worker see configs/authentik where the
    # blueprint's !File tags look for the policy.
    blueprint = REPO / "configs" / "authentik" / "blueprint.yaml"
    files = re.findall(r"!File\s+(/\S+)", blueprint.read_text()) \
        if blueprint.is_file() else []
    for svc in ("authentik-server", "authentik-worker"):
        mounts = [str(v).split(":") for v in s.get(svc, {})
                  .get("volumes", [])]
        if not any(m[0] == "../configs/authentik" and
                   m[1].startswith("/blueprints/") for m in mounts):
            problems.append("%s does not mount configs/authentik under "
                            "/blueprints" % svc)
        for f in files:
            hit = [(DOCKER / m[0] / os.path.relpath(f, m[1])) for m in mounts
                   if len(m) > 1 and f.startswith(m[1].rstrip("/") + "/")]
            if not hit or not hit[0].is_file():
                problems.append("%s: the blueprint's !File %s is no file of "
                                "the repository" % (svc, f))
    ts = s.get("authentik-token-setup", {})
    if "service_completed_successfully" not in str(
            s.get("ak2vault-1", {}).get("depends_on", {})
            .get("authentik-token-setup")):
        problems.append("the workers do not wait for authentik-token-setup")
    if not any(str(v).startswith("./compose/authentik-token.sh:")
               for v in ts.get("volumes", [])):
        problems.append("authentik-token-setup does not run "
                        "compose/authentik-token.sh")
    if "kafka-rest-proxy" not in s:
        problems.append("no kafka-rest-proxy service")
    policy = REPO / "configs" / "authentik" / "forward-events-policy.py"
    if policy.is_file():
        m = re.search(r'^PROXY_URL = "http://([^:/"]+)', policy.read_text(),
                      re.M)
        if m and m.group(1) not in s:
            problems.append("the forwarding policy posts to %s, which is no "
                            "service" % m.group(1))
    prom = s.get("prometheus", {})
    if "monitoring" not in prom.get("profiles", []):
        problems.append("prometheus is not in the monitoring profile")
    assert not problems, "; ".join(problems)


def test_authentik_token_setup_sets_the_key():
    """docker/compose/authentik-token.sh against a stand-in authentik: it
    waits for the blueprint's token, then sets its key as akadmin, with
    the secrets never on curl's command line."""
    import http.server
    import threading
    real = shutil.which("curl")
    if not real:
        note("curl is not installed: authentik-token.sh not run")
        return
    boot, key = akvtest.random_secret(), akvtest.random_secret()
    seen = {"get": 0, "post": []}

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            seen["get"] += 1
            ok = self.path == "/api/v3/core/tokens/ak2vault-worker/" and \
                self.headers.get("Authorization") == "Bearer " + boot and \
                seen["get"] > 2  # the blueprint is not applied at first
            self.send_response(200 if ok else 404)
            self.end_headers()
            self.wfile.write(b"{}")

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen["post"].append((self.path, self.headers.get(
                "Authorization"), self.headers.get("Content-Type"), body))
            self.send_response(204)
            self.end_headers()

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    shim = RUN.path / "curl-shim"
    shim.mkdir()
    argv_log = shim / "argv.log"
    (shim / "curl").write_text('#!/bin/sh\nprintf "%%s\\n" "$*" >>%s\n'
                               'exec %s "$@"\n' % (argv_log, real))
    (shim / "curl").chmod(0o755)
    try:
        r = subprocess.run(
            ["/bin/sh", str(DOCKER / "compose" / "authentik-token.sh")],
            capture_output=True, text=True, timeout=60,
            env={"PATH": "%s:/usr/bin:/bin" % shim,
                 "AUTHENTIK_URL": "http://127.0.0.1:%d" % srv.server_port,
                 "AUTHENTIK_BOOTSTRAP_TOKEN": boot,
                 "AK2VAULT_AUTHENTIK_TOKEN": key, "WAIT_SECONDS": "0.1"})
    finally:
        srv.shutdown()
        srv.server_close()
    assert r.returncode == 0, "authentik-token.sh exited %d: %s" % (
        r.returncode, r.stderr.strip())
    assert seen["get"] >= 3, "it did not wait for the token"
    assert len(seen["post"]) == 1, "%d POSTs" % len(seen["post"])
    path, auth, ctype, body = seen["post"][0]
    assert path == "/api/v3/core/tokens/ak2vault-worker/set_key/", path
    assert auth == "Bearer " + boot, "not authenticated as akadmin"
    assert ctype == "application/json" and json.loads(body) == {"key": key}
    argv = argv_log.read_text()
    assert boot not in argv and key not in argv, \
        "a secret was on curl's command line"
    assert boot not in r.stdout + r.stderr and key not in r.stdout + \
        r.stderr, "a secret was printed"


# -- Vault ---------------------------------------------------------------------


def hcl_paths(text):
    """{path: set of capabilities} of a Vault policy (comments ignored)."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = "\n".join(re.sub(r"(^|\s)(#|//).*$", "", line)
                     for line in text.splitlines())
    out = {}
    for m in re.finditer(r'path\s+"([^"]+)"\s*\{([^}]*)\}', text):
        caps = re.search(r"capabilities\s*=\s*\[([^\]]*)\]", m.group(2))
        assert caps, "path %s has no capabilities" % m.group(1)
        assert m.group(1) not in out, "path %s twice" % m.group(1)
        out[m.group(1)] = set(re.findall(r'"([a-z]+)"', caps.group(1)))
    return out


def needed_paths(cfg):
    mount, prefix = cfg["vault.kv_mount"], cfg["vault.prefix"]
    data = "%s/data/%s/*" % (mount, prefix)
    meta = "%s/metadata/%s/*" % (mount, prefix)
    want = {data: {"create", "read", "update"},
            meta: {"create", "read", "update", "list"},
            "sys/capabilities-self": {"update"},
            "auth/token/lookup-self": {"read"},
            "auth/token/renew-self": {"update"}}
    if cfg["vault.on_delete"] == "soft-delete":
        want[data].add("delete")
    elif cfg["vault.on_delete"] == "purge":
        want[meta].add("delete")
    return want


def test_vault_policy_is_least_privilege():
    have = hcl_paths(POLICY.read_text())
    configs = {"kubernetes": k8s_config(),
               "compose": check_config(
                   (DOCKER / "compose" / "ak2vault.cfg").read_text(),
                   {"KAFKA_BROKERS": "kafka:9092",
                    "AUTHENTIK_URL": "http://authentik-server:9000"},
                   "compose")}
    problems = []
    for name, cfg in configs.items():
        want = needed_paths(cfg)
        if have != want:
            problems.append("%s needs %s; the policy grants %s" % (
                name, sorted((p, sorted(c)) for p, c in want.items()),
                sorted((p, sorted(c)) for p, c in have.items())))
    for p in have:
        head, _, last = p.rpartition("/")
        if "*" in head or "+" in head or ("*" in last and last != "*"):
            problems.append("wildcard beyond the prefix in %s" % p)
        if ("list" in have[p] and "/metadata/" not in p) or \
                "sudo" in have[p] or "deny" in have[p]:
            problems.append("%s grants %s" % (p, sorted(have[p])))
    assert not problems, "; ".join(problems)


def test_vault_policy_checks_refuse_excess():
    """The policy checks above on policies that must fail."""
    cfg = {"vault.kv_mount": "kv", "vault.prefix": "authentik",
           "vault.on_delete": "keep"}
    good = POLICY.read_text()
    assert hcl_paths(good) == needed_paths(cfg)
    wider = good.replace('"kv/data/authentik/*"', '"kv/data/*"')
    assert hcl_paths(wider) != needed_paths(cfg)
    listing = good.replace('["create", "read", "update"]',
                           '["create", "read", "update", "list"]')
    assert hcl_paths(listing) != needed_paths(cfg)
    commented = good + '\n# path "kv/*" { capabilities = ["read"] }\n'
    assert hcl_paths(commented) == needed_paths(cfg)
    cfg["vault.on_delete"] = "purge"
    assert hcl_paths(good) != needed_paths(cfg)


STUB_VAULT = r"""#!/bin/sh
# A stand-in vault CLI: logs its arguments, answers like an empty Vault.
printf '%s\n' "$*" >>"$STUB_LOG"
case "$1 $2" in
"read sys/mounts/"*) exit 2 ;;
"auth list") echo '{}' ;;
"token lookup") exit 2 ;;
"token create") echo "stub-token-value" ;;
"read -field=role_id") echo "stub-role-id" ;;
"write -f") echo "stub-secret-id" ;;
esac
exit 0
"""


def run_setup(args, env):
    d = RUN.path / ("setup-%s" % args[0])
    d.mkdir()
    stub = d / "vault"
    stub.write_text(STUB_VAULT)
    stub.chmod(0o755)
    log = d / "calls.log"
    full = {"PATH": "%s:/usr/bin:/bin" % d, "STUB_LOG": str(log),
            "VAULT_ADDR": "http://127.0.0.1:9", "VAULT_TOKEN": "stub-admin"}
    full.update(env)
    r = subprocess.run(["/bin/sh", str(SETUP)] + args, capture_output=True,
                       text=True, env=full, timeout=30, cwd=str(d))
    assert r.returncode == 0, "setup.sh %s exited %d: %s" % (
        " ".join(args), r.returncode, r.stderr.strip())
    return d, log.read_text().splitlines()


def setup_default(var):
    m = re.search(r"\$\{%s:-([^}]*)\}" % var, SETUP.read_text())
    assert m, "setup.sh has no default for %s" % var
    return m.group(1)


def test_vault_setup_matches_the_manifests():
    cfg = k8s_config()
    ns = root_kustomization()["namespace"]
    sa = the("Deployment")["spec"]["template"]["spec"]["serviceAccountName"]
    _, calls = run_setup(["kubernetes"], {"K8S_NAMESPACE": ns})
    problems = []
    mount = cfg["vault.auth.mount"] or "kubernetes"

    def find(prefix):
        return [c for c in calls if c.startswith(prefix)]

    if not find("secrets enable -path=%s -version=2 kv"
                % cfg["vault.kv_mount"]):
        problems.append("no KV version 2 mount at %s" % cfg["vault.kv_mount"])
    pol = find("policy write ")
    if not pol or not pol[0].endswith("ak2vault-policy.hcl"):
        problems.append("policy not written from ak2vault-policy.hcl: %s"
                        % pol)
    if not find("auth enable -path=%s kubernetes" % mount):
        problems.append("kubernetes auth not enabled at %s" % mount)
    role = find("write auth/%s/role/%s " % (mount, cfg["vault.auth.role"]))
    if len(role) != 1:
        problems.append("role %s not written: %s" % (cfg["vault.auth.role"],
                                                     calls))
    else:
        args = dict(a.split("=", 1) for a in role[0].split()[2:])
        want = {"bound_service_account_names": sa,
                "bound_service_account_namespaces": ns,
                "token_policies": pol[0].split()[2] if pol else "?"}
        for k, v in want.items():
            if args.get(k) != v:
                problems.append("role %s=%r, expected %r" % (k, args.get(k),
                                                             v))
        vol, key = mounted_file(cfg["vault.auth.jwt_file"])
        aud = volume_items(vol or {}).get(key, {}).get(
            "serviceAccountToken", {}).get("audience")
        if args.get("audience") != aud:
            problems.append("role audience %r, the pod's token has %r"
                            % (args.get("audience"), aud))
    assert not problems, "; ".join(problems)


def test_vault_setup_writes_a_private_token():
    d, calls = run_setup(["token", "TOKENFILE"], {})
    tok = d / "TOKENFILE"
    assert tok.read_text().strip() == "stub-token-value", "no token written"
    mode = stat.S_IMODE(tok.stat().st_mode)
    assert mode & 0o077 == 0, "the token file has mode %o" % mode
    assert any(c.startswith("token create -orphan -policy=ak2vault ")
               for c in calls), "no token with only the policy: %s" % calls


# -- Dockerfile ----------------------------------------------------------------


def dockerfile_stages():
    """[{"name", "base", "lines": [(instruction, arguments)]}], with line
    continuations joined and comments dropped. The ARG lines before the
    first FROM (the build arguments' defaults) are left out: see
    dockerfile_build_args()."""
    text = DOCKERFILE.read_text()
    text = "\n".join(l for l in text.splitlines()
                     if not l.lstrip().startswith("#"))
    text = re.sub(r"\\\n", " ", text)
    stages = []
    for line in text.splitlines():
        if not line.strip():
            continue
        ins, _, args = line.strip().partition(" ")
        ins = ins.upper()
        if ins == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", args.strip(), re.I)
            stages.append({"base": m.group(1), "name": m.group(2),
                           "lines": []})
        elif not stages and ins == "ARG":
            continue
        else:
            assert stages, "%s before FROM" % ins
            stages[-1]["lines"].append((ins, " ".join(args.split())))
    return stages


def dockerfile_build_args():
    """{name: default} of the ARG lines before the first FROM."""
    out = {}
    for line in DOCKERFILE.read_text().splitlines():
        line = line.strip()
        if line.upper().startswith("FROM "):
            break
        m = re.match(r"ARG\s+(\w+)(?:=(\S*))?$", line, re.I)
        if m:
            out[m.group(1)] = m.group(2) or ""
    return out


def apt_packages(stage):
    pkgs = []
    for ins, args in stage["lines"]:
        if ins != "RUN":
            continue
        for m in re.finditer(r"apt-get install ([^&;|]*)", args):
            pkgs += [w for w in m.group(1).split() if not w.startswith("-")]
    return pkgs


def dpkg_owners(paths):
    """{path: the Debian package holding it} for those of \\p paths dpkg
    knows (a merged /usr tried both ways), in one dpkg-query per form."""
    found = {}
    forms = [lambda p: p, os.path.realpath,
             lambda p: p[4:] if p.startswith("/usr/") else "/usr" + p,
             lambda p: "/usr" + os.path.realpath(p)
             if not os.path.realpath(p).startswith("/usr/")
             else os.path.realpath(p)[4:]]
    for form in forms:
        todo = {form(p): p for p in paths if p not in found}
        if not todo:
            break
        r = subprocess.run(["dpkg-query", "-S"] + sorted(todo),
                           capture_output=True, text=True)
        for line in r.stdout.splitlines():
            pkgs, _, path = line.partition(": ")
            if path in todo:
                found[todo[path]] = pkgs.split(",")[0].split(":")[0].strip()
    return found


def dpkg_owner(path):
    return dpkg_owners([path]).get(path)


def installed_packages():
    """{package: (dependency alternatives, provides, base)} of this
    machine's dpkg database; base: part of every Debian image (Essential,
    or priority required)."""
    r = subprocess.run(["dpkg-query", "-W", "-f",
                        "${Package}\t${Depends}, ${Pre-Depends}\t"
                        "${Provides}\t${Priority}\t${Essential}\t"
                        "${db:Status-Abbrev}\n"],
                       capture_output=True, text=True, check=True)
    out = {}
    for line in r.stdout.splitlines():
        name, deps, provides, prio, ess, status = line.split("\t")
        if not status.startswith("ii"):
            continue
        alts = []
        for d in deps.split(","):
            if d.strip():
                alts.append([re.sub(r"[ (:].*", "", a.strip())
                             for a in d.split("|")])
        prov = [re.sub(r"[ (:].*", "", p.strip())
                for p in provides.split(",") if p.strip()]
        out[name] = (alts, prov, prio == "required" or ess == "yes")
    return out


def closure(roots, db):
    providers = {}
    for name, (_, prov, _) in db.items():
        for p in prov:
            providers.setdefault(p, []).append(name)
    seen, todo = set(), list(roots)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        for alts in db.get(p, ([], [], False))[0]:
            for a in alts:
                for cand in [a] + providers.get(a, []):
                    if cand in db and cand not in seen:
                        todo.append(cand)
    return seen


def binary_libraries(path):
    """(NEEDED sonames, {soname: resolved path} of ldd), sanitizer runtimes
    left out (test-asan runs the suite with an instrumented binary)."""
    san = re.compile(r"^lib(asan|ubsan|lsan|tsan)\.")
    r = subprocess.run(["readelf", "-d", path], capture_output=True,
                       text=True, check=True)
    needed = [n for n in re.findall(r"\(NEEDED\).*\[(.+)\]", r.stdout)
              if not san.match(n)]
    r = subprocess.run(["ldd", path], capture_output=True, text=True,
                       check=True)
    libs = {}
    for m in re.finditer(r"^\s*(\S+) => (/\S+)", r.stdout, re.M):
        if not san.match(m.group(1)):
            libs[m.group(1)] = m.group(2)
    return needed, libs


def test_dockerfile_runtime_has_every_library():
    stages = dockerfile_stages()
    assert len(stages) >= 2, "not a multi-stage build"
    final = stages[-1]
    assert final["base"].startswith("debian:bookworm"), \
        "the runtime stage is %s, not Debian 12 (the packages below are " \
        "Debian 12's)" % final["base"]
    pkgs = apt_packages(final)
    assert pkgs, "the runtime stage installs no package"
    db = installed_packages()
    # What every Debian image has: the essential and required packages
    # and what they depend on (libc6 is neither, but dpkg needs it).
    base = closure({p for p, (_, _, b) in db.items() if b}, db)
    have = closure(set(pkgs) | base, db)
    needed, libs = binary_libraries(akvtest.binary("ak2vault"))
    problems = []
    owners = dpkg_owners(list(libs.values()))
    for soname in needed:
        owner = owners.get(libs.get(soname, soname))
        if owner is None:
            problems.append("%s belongs to no Debian package" % soname)
        elif owner not in pkgs and owner not in base:
            problems.append("%s (%s) is not installed by the runtime stage"
                            % (soname, owner))
    for soname, path in sorted(libs.items()):
        owner = owners.get(path)
        if owner and owner not in have:
            problems.append("%s (%s) is neither installed nor a "
                            "dependency of what is" % (soname, owner))
    dev = [p for p in pkgs if p.endswith("-dev") or p in
           ("build-essential", "gcc", "make", "pkg-config")]
    if dev:
        problems.append("build tools in the runtime stage: %s" % dev)
    assert not problems, "; ".join(problems)


def test_dockerfile_runs_as_non_root_with_healthcheck():
    final = dockerfile_stages()[-1]
    problems = []
    users = [a for i, a in final["lines"] if i == "USER"]
    if not users or users[-1].split(":")[0] in ("0", "root"):
        problems.append("the image runs as root (USER %s)" % users)
    checks = [a for i, a in final["lines"] if i == "HEALTHCHECK"]
    if len(checks) != 1:
        problems.append("%d HEALTHCHECK lines" % len(checks))
    else:
        m = re.search(r"CMD (\[.*\])", checks[0])
        argv = json.loads(m.group(1)) if m else []
        copied = {a.split()[-1]: a.split()[-2] for i, a in final["lines"]
                  if i == "COPY" and "--from" not in a}
        if not argv or argv[0] not in copied:
            problems.append("HEALTHCHECK runs %s, which no COPY brings in"
                            % argv)
        elif (REPO / copied[argv[0]]) != HEALTHCHECK:
            problems.append("HEALTHCHECK runs %s" % copied[argv[0]])
        if "/livez" not in argv:
            problems.append("HEALTHCHECK does not ask /livez: %s" % argv)
    example = check_config((REPO / "configs" / "ak2vault.cfg").read_text(),
                           {"VAULT_TOKEN": "x", "AUTHENTIK_TOKEN": "y"},
                           "example")
    port = listen_port(example["metrics.listen"])
    exposed = [a for i, a in final["lines"] if i == "EXPOSE"]
    if not any(str(port) in a.split() for a in exposed):
        problems.append("EXPOSE %s, not metrics.listen's %d" % (exposed,
                                                                port))
    assert not problems, "; ".join(problems)


def test_dockerfile_version_is_the_releases():
    """A plain `docker build` (no --build-arg) labels and builds the
    Makefile's VERSION, the version `ak2vault version` prints."""
    version = akvtest.release_version()
    args = dockerfile_build_args()
    v = subprocess.run([akvtest.binary("ak2vault"), "version"],
                       capture_output=True, text=True, timeout=10)
    assert v.stdout.split()[:2] == ["ak2vault", version], \
        "ak2vault version printed %r, the Makefile's VERSION is %s" % (
            v.stdout[:60], version)
    assert args.get("AK2VAULT_VERSION") == version, \
        "the Dockerfile's AK2VAULT_VERSION defaults to %r, the Makefile's " \
        "VERSION is %s" % (args.get("AK2VAULT_VERSION"), version)
    final = dockerfile_stages()[-1]
    labels = " ".join(a for i, a in final["lines"] if i == "LABEL")
    for name in ("version", "revision", "created"):
        arg = "AK2VAULT_" + name.upper()
        want = 'org.opencontainers.image.%s="$%s"' % (name, arg)
        assert want in labels, "the runtime stage lacks LABEL %s" % want
        assert ("ARG", arg) in final["lines"], \
            "the runtime stage does not declare ARG %s" % arg


def dockerignored(relpath, patterns):
    """Docker's .dockerignore rule: the last pattern that matches the path
    or one of its parent directories decides."""
    ignored = False
    parts = relpath.split("/")
    for neg, pat in patterns:
        for i in range(1, len(parts) + 1):
            if fnmatch("/".join(parts[:i]), pat):
                ignored = not neg
                break
    return ignored


def dockerignore():
    p = REPO / ".dockerignore"
    out = []
    if p.is_file():
        for line in p.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            neg = line.startswith("!")
            pat = os.path.normpath(line.lstrip("!").strip("/"))
            out.append((neg, pat))
    return out


def test_dockerfile_build_stage_builds_with_make():
    """Runs the build stage's make command in a copy of exactly what its
    COPY lines take from the build context (.dockerignore applied)."""
    stages = dockerfile_stages()
    build = stages[0]
    final = stages[-1]
    problems = []
    # The build stage installs the -dev packages of what make probes with
    # pkg-config.
    pkgs = apt_packages(build)
    mk = (REPO / "Makefile").read_text()
    probed = re.search(r"^PKGS\s*:=\s*(.*)$", mk, re.M).group(1).split()
    for name in probed:
        r = subprocess.run(["pkg-config", "--variable=pcfiledir", name],
                           capture_output=True, text=True)
        owner = dpkg_owner(os.path.join(r.stdout.strip(), name + ".pc")) \
            if r.returncode == 0 else None
        if owner not in pkgs:
            problems.append("pkg-config %s (%s) is not installed by the "
                            "build stage" % (name, owner))
    for tool in ("build-essential", "pkg-config"):
        if tool not in pkgs:
            problems.append("the build stage lacks %s" % tool)
    # The make command, and what the final stage copies out of it.
    runs = [a for i, a in build["lines"] if i == "RUN" and
            re.match(r"make\b", a)]
    assert len(runs) == 1, "build stage make commands: %s" % runs
    targets = [w for w in runs[0].split()[1:] if not w.startswith("-")
               and "=" not in w]
    froms = [a for i, a in final["lines"] if i == "COPY" and
             a.startswith("--from=%s " % build["name"])]
    workdir = [a for i, a in build["lines"] if i == "WORKDIR"][-1]
    for f in froms:
        src = f.split()[1]
        if os.path.relpath(src, workdir) not in targets:
            problems.append("the runtime stage copies %s, which the make "
                            "command %r does not build" % (src, runs[0]))
    r = subprocess.run(["make", "-n", "-C", str(REPO)] + targets,
                       capture_output=True, text=True)
    if r.returncode != 0:
        problems.append("`make -n %s` fails: %s" % (" ".join(targets),
                                                     r.stderr.strip()))
    assert not problems, "; ".join(problems)

    # The build context as the build stage sees it.
    ctx = RUN.path / "build-context"
    ctx.mkdir()
    ignore = dockerignore()
    for i, a in build["lines"]:
        if i != "COPY":
            continue
        assert not a.startswith("--"), "COPY %s in the build stage" % a
        *srcs, dst = a.split()
        for src in srcs:
            src = src.rstrip("/")
            if dockerignored(src, ignore):
                problems.append("COPY %s: .dockerignore excludes it" % src)
            top = REPO / src
            files = [top] if top.is_file() else sorted(
                p for p in top.rglob("*") if p.is_file())
            for f in files:
                r_ = str(f.relative_to(REPO))
                if dockerignored(r_, ignore):
                    continue
                to = ctx / dst / (f.relative_to(top) if top.is_dir()
                                  else f.name) if dst.endswith("/") \
                    else ctx / dst
                to.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, to)
    assert not problems, "; ".join(problems)
    r = subprocess.run(runs[0], shell=True, cwd=str(ctx),
                       env=dict(os.environ, **dockerfile_build_args()),
                       capture_output=True, text=True, timeout=540)
    assert r.returncode == 0, "`%s` in the build context failed: %s" % (
        runs[0], r.stderr.strip()[-800:])
    built = ctx / targets[0]
    v = subprocess.run([str(built), "version"], capture_output=True,
                       text=True, timeout=10)
    assert v.returncode == 0 and v.stdout.startswith("ak2vault "), \
        "the built binary does not run: %s" % v.stderr
    version = dockerfile_build_args().get("AK2VAULT_VERSION")
    assert v.stdout.split()[1] == version, \
        "the build stage's binary is version %s, the Dockerfile's " \
        "AK2VAULT_VERSION %r" % (v.stdout.split()[1], version)
    # The runtime stage's other COPY sources exist and are not ignored.
    for i, a in final["lines"]:
        if i == "COPY" and not a.startswith("--"):
            src = a.split()[0]
            if not (REPO / src).exists() or dockerignored(src, ignore):
                problems.append("runtime COPY %s: missing or ignored" % src)
    assert not problems, "; ".join(problems)


def test_healthcheck_script_tells_live_from_ready():
    """The image's health check script against a real worker whose
    upstreams do not answer: alive, but holding no partition."""
    port = akvtest.free_port()
    cfg = RUN.write("health.cfg", """\
kafka: { brokers = "127.0.0.1:9"; group = "health"; };
authentik: { url = "http://127.0.0.1:9"; };
vault: { addr = "http://127.0.0.1:9"; };
sync: { shutdown_timeout_ms = 0; };
metrics: { listen = "127.0.0.1:%d"; };
""" % port)
    w = akvtest.Proc("worker", [akvtest.binary("ak2vault"), "run", "-c",
                                str(cfg)], RUN,
                     env={"VAULT_TOKEN": akvtest.random_secret(),
                          "AUTHENTIK_TOKEN": akvtest.random_secret()})

    def check(path, env):
        r = subprocess.run(["/bin/bash", str(HEALTHCHECK), path],
                           capture_output=True, text=True, timeout=10,
                           env=akvtest.child_env(env))
        return r.returncode, r.stderr.strip()

    try:
        listen = {"AK2VAULT_METRICS_LISTEN": "127.0.0.1:%d" % port}
        ok = akvtest.wait_until(lambda: check("/livez", listen)[0] == 0, 15)
        assert ok, "/livez: %s (worker: %s)" % (check("/livez", listen),
                                                 w.stderr_tail())
        rc, err = check("/readyz", {"AK2VAULT_HEALTH_PORT": str(port)})
        assert rc == 1 and "503" in err, \
            "/readyz of a worker without partitions: %d %s" % (rc, err)
    finally:
        w.stop(10)
    rc, err = check("/livez", listen)
    assert rc == 1, "a stopped worker passes the health check"
    rc, err = check("/livez", {"AK2VAULT_METRICS_LISTEN": "nowhere"})
    assert rc == 1 and "no port" in err, "a listen without port: %s" % err


def test_shell_scripts_pass_shellcheck():
    sc = shutil.which("shellcheck")
    if not sc:
        note("shellcheck is not installed: scripts not checked")
        return
    problems = []
    for p in sorted(DOCKER.rglob("*.sh")):
        r = subprocess.run([sc, str(p)], capture_output=True, text=True)
        if r.returncode != 0:
            problems.append("%s: %s" % (rel(p), r.stdout.strip()[:500]))
    assert not problems, "; ".join(problems)


# -- README --------------------------------------------------------------------


PATH_RE = re.compile(r"(?<![\w./-])((?:docker|configs|tests)/[\w./-]*\w/?)")
# Backticked names of files or directories (`deployment.yaml`,
# `components/keda/`): in the Kubernetes section, relative to
# docker/kubernetes/ unless they exist from the top.
NAME_RE = re.compile(r"`([\w./-]+(?:\.(?:yaml|yml|cfg|hcl|sh|json|py|md)|/))`")
# Made by the steps the README gives, not shipped.
CREATED = {"docker/.env": MAKE_ENV}


def test_readme_deployment_sections_name_existing_files():
    problems = []
    for title in ("Installing on Kubernetes", "Vault setup",
                  "A demonstration stack with Docker Compose", "Operations",
                  "Security notes"):
        text = section(title)
        for path in sorted(set(PATH_RE.findall(text))):
            if path in CREATED:
                if not CREATED[path].is_file():
                    problems.append("%s: %s makes %s, and is missing" % (
                        title, rel(CREATED[path]), path))
            elif not (REPO / path).exists():
                problems.append("%s: %s does not exist" % (title, path))
        if title == "Installing on Kubernetes":
            for name in sorted(set(NAME_RE.findall(text))):
                if name.startswith("/") or PATH_RE.fullmatch(name):
                    continue
                if not (REPO / name).exists() and not (K8S / name).exists():
                    problems.append("%s: %s is in neither the top nor "
                                    "docker/kubernetes/" % (title, name))
    k8s = section("Installing on Kubernetes")
    for needed in ("kubectl apply -k docker/kubernetes",
                   "docker/vault/setup.sh kubernetes",
                   "ak2vault-authentik"):
        if needed not in k8s:
            problems.append("the Kubernetes section does not say %r"
                            % needed)
    # Every manifest of the kustomization is in the section's table.
    for p in asset_files(K8S):
        r_ = str(p.relative_to(K8S))
        if p.parent == K8S and "`%s`" % r_ not in k8s:
            problems.append("the Kubernetes section does not describe %s"
                            % r_)
    if '"../.env"' not in MAKE_ENV.read_text() and \
            "/../.env" not in MAKE_ENV.read_text():
        problems.append("make-env.sh does not write docker/.env")
    assert not problems, "; ".join(problems)


def test_readme_path_check_can_fail():
    found = PATH_RE.findall("see `docker/kubernetes/nothing.yaml`, then "
                            "docker/vault/setup.sh kubernetes.")
    assert found == ["docker/kubernetes/nothing.yaml",
                     "docker/vault/setup.sh"], found
    assert not (REPO / found[0]).exists()


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-prometheusrule"]:
        PROMETHEUSRULE.write_text(prometheusrule_text())
        print("wrote %s" % rel(PROMETHEUSRULE))
        sys.exit(0)
    akvtest.run_tests(globals(), "deploy_assets", setup=setup)
