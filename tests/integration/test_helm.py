#!/usr/bin/python3
"""The Helm chart docker/helm/ak2vault, with the helm that `make k8s-tools`
builds (build/k8s/bin/helm), without a cluster.

- `helm lint` and `helm lint --strict` pass, with the default values and
  with each toggle below;
- `helm template` renders the defaults and each toggle (KEDA, a PodMonitor
  or a ServiceMonitor with the rules, the NetworkPolicy, Kafka with
  SASL_SSL and a CA, each Vault login method, Vault's token reviewer, all
  at once), and what it renders holds together: every document parses and
  names itself, carries the recommended labels, and is the kind its
  toggle asks for; every selector selects the pods; every ConfigMap,
  ServiceAccount, Deployment and TriggerAuthentication a reference names
  is rendered, every Secret one is a Secret the values name;
- the rendered ak2vault.cfg, with the environment the Deployment gives
  the pods, passes `ak2vault check-config` (stand-in secret files), and
  every file it reads is mounted from the Secret (or projected token) the
  values say; the brokers, topic and group given once in the values are
  what the worker reads and what KEDA's trigger watches, and the
  NetworkPolicy opens exactly their ports, Vault's, authentik's and DNS;
  KEDA's TriggerAuthentication hands the trigger the worker's SASL user,
  password and CA, with the mechanism in KEDA's spelling;
- with the defaults (and KEDA, as docker/kubernetes has it), the Deployment
  is the one `kustomize build docker/kubernetes` makes: the same spec
  (probes, security contexts, args, ports, strategy, grace period,
  environment, volumes and their mounts, resources, image), only its
  labels and selectors differ; the workers' effective configurations are
  equal;
- the PrometheusRule is docker/prometheus/alerts.yaml, and the chart's copy
  files/alerts.yaml is that file byte for byte;
- values.schema.json refuses bad values (helm template fails naming them);
- Chart.yaml's appVersion is `ak2vault --version`; every value of
  values.yaml has a row, with its default, in the chart's README table;
  the README's example values render, and name only Secrets its commands
  create.

`test_helm.py --write-alerts` copies docker/prometheus/alerts.yaml into
the chart again. Without build/k8s/bin/helm every test fails: run
`make k8s-tools`.
"""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import akvtest  # noqa: E402
from akvtest import REPO  # noqa: E402
import test_deploy_assets as assets  # noqa: E402
from test_deploy_assets import (COORDINATES, KEDA_SASL, POD_NAME,  # noqa: E402
                                TRIGGER_KEYS, broker_ports, check_config,
                                kustomize_build, listen_port, mounted_file,
                                pod_env, rel, selects, url_port,
                                volume_items)

try:
    import yaml  # python3-yaml (Debian), installed by `make deps`
except ImportError:  # reported by setup
    yaml = None

CHART = REPO / "docker" / "helm" / "ak2vault"
ALERTS = REPO / "docker" / "prometheus" / "alerts.yaml"
CHART_ALERTS = CHART / "files" / "alerts.yaml"
CHART_README = CHART / "README.md"
# The release name of the renders: the chart's objects are then named as
# docker/kubernetes names its own.
RELEASE = "ak2vault"
NAMESPACE = "ak2vault"
RECOMMENDED = ["app.kubernetes.io/" + l for l in assets.RECOMMENDED] + \
    ["helm.sh/chart"]

RUN = None

# Each toggle of the chart, as the values that switch it on.
SASL = {"kafka": {"brokers": "kafka-0.example.net:9093,"
                             "kafka-1.example.net:9094",
                  "securityProtocol": "SASL_SSL",
                  "sasl": {"mechanism": "SCRAM-SHA-256",
                           "username": "ak2vault-worker",
                           "existingSecret": "kafka-credentials",
                           "passwordKey": "sasl-password"},
                  "tls": {"caSecret": "kafka-ca", "caKey": "ca.pem"}},
        "keda": {"enabled": True}, "networkPolicy": {"enabled": True}}
TOGGLES = {
    "defaults": {},
    "keda": {"keda": {"enabled": True, "maxReplicaCount": 8}},
    "podmonitor": {"prometheus": {"monitor": {"enabled": True},
                                  "rules": {"enabled": True}}},
    "servicemonitor": {"prometheus": {"monitor": {
        "enabled": True, "kind": "ServiceMonitor",
        "labels": {"release": "kube-prometheus-stack"}}}},
    "networkpolicy": {"networkPolicy": {"enabled": True},
                      "vault": {"addr": "http://vault.vault.svc"},
                      "authentik": {"url": "https://sso.example.com:9443"}},
    "sasl_ssl": SASL,
    "vault_approle": {"vault": {"auth": {
        "method": "approle", "mount": "apps",
        "approle": {"existingSecret": "ak2vault-approle"}}}},
    "vault_token": {"vault": {"auth": {
        "method": "token", "token": {"existingSecret": "ak2vault-vault"}},
        "tls": {"caSecret": "vault-ca"}, "namespace": "team"}},
    "vault_kubernetes": {"vault": {"auth": {"kubernetes": {
        "role": "sync", "audience": "https://vault.example.com",
        "tokenReviewer": True}}}},
    "everything": dict(SASL, **{
        "prometheus": {"monitor": {"enabled": True},
                       "rules": {"enabled": True}},
        "authentik": {"url": "https://sso.example.com",
                      "tls": {"caSecret": "authentik-ca"}},
        "config": {"logLevel": "debug",
                   "extra": {"sync": {"max_in_flight": 128,
                                      "retry_multiplier": 1.5},
                             "reconcile": {"on_start": True},
                             "vault": {"extra_fields": ["description",
                                                        "user"]}}},
        "kafka": dict(SASL["kafka"], dlqTopic="ak2vault.dead",
                      extraProperties={"client.id": "ak2vault"}),
        "extraEnv": [{"name": "AK2VAULT_EXTRA", "value": "1"}],
        "podLabels": {"team": "identity"}}),
}
# What each toggle must render besides the defaults' objects.
TOGGLE_KINDS = {"keda": {"ScaledObject"},
                "podmonitor": {"PodMonitor", "PrometheusRule"},
                "servicemonitor": {"ServiceMonitor"},
                "networkpolicy": {"NetworkPolicy"},
                "sasl_ssl": {"ScaledObject", "TriggerAuthentication",
                             "NetworkPolicy"},
                "vault_kubernetes": {"ServiceAccount", "Secret",
                                     "ClusterRoleBinding"},
                "everything": {"ScaledObject", "TriggerAuthentication",
                               "NetworkPolicy", "PodMonitor",
                               "PrometheusRule"}}
DEFAULT_KINDS = {"ServiceAccount", "ConfigMap", "Deployment", "Service",
                 "PodDisruptionBudget"}


# ---------------------------------------------------------------------------
# helm


def helm_bin():
    return assets.k8s_tool("helm")


def helm(*args, timeout=60):
    return subprocess.run([helm_bin()] + list(args), capture_output=True,
                          text=True, timeout=timeout, cwd=str(RUN.path))


def values_file(name, values):
    path = RUN.path / ("values-%s.yaml" % name)
    path.write_text(yaml.safe_dump(values, sort_keys=True))
    return str(path)


_rendered = {}


def render(name, values=None):
    """The documents `helm template` renders for toggle \\p name (or for
    \\p values under that name)."""
    if name not in _rendered:
        values = TOGGLES[name] if values is None else values
        r = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE,
                 "-f", values_file(name, values))
        assert r.returncode == 0, "helm template (%s): %s" % (
            name, r.stderr.strip()[-800:])
        _rendered[name] = [d for d in yaml.safe_load_all(r.stdout) if d]
    return _rendered[name]


def of_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def one(docs, kind):
    found = of_kind(docs, kind)
    assert len(found) == 1, "%d %s rendered, expected one" % (len(found),
                                                             kind)
    return found[0]


def configmaps(docs):
    return {d["metadata"]["name"]: d.get("data", {})
            for d in of_kind(docs, "ConfigMap")}


def merged(*dicts):
    """The values a render had: the toggles' values merged over
    values.yaml's."""
    out = {}
    for d in dicts:
        for k, v in d.items():
            if isinstance(v, dict) and isinstance(out.get(k), dict):
                out[k] = merged(out[k], v)
            else:
                out[k] = v
    return out


def defaults():
    return yaml.safe_load((CHART / "values.yaml").read_text())


def effective_values(name):
    return merged(defaults(), TOGGLES[name])


def rendered_config(name):
    """The effective configuration of a worker of the render: the mounted
    ak2vault.cfg with the environment the Deployment gives the pods."""
    docs = render(name)
    dep = one(docs, "Deployment")
    vol, key = mounted_file("/etc/ak2vault/ak2vault.cfg", dep)
    assert vol and "configMap" in vol, "%s: /etc/ak2vault is not a " \
        "ConfigMap" % name
    cms = configmaps(docs)
    data = cms.get(vol["configMap"]["name"], {})
    assert key in data, "%s: ConfigMap %s holds no %s" % (
        name, vol["configMap"]["name"], key)
    return check_config(data[key], pod_env(dep, cms), "helm-" + name)


# ---------------------------------------------------------------------------


def setup(rundir):
    global RUN
    RUN = rundir
    assets.RUN = rundir
    assert yaml is not None, "PyYAML is missing (apt-get install " \
        "python3-yaml, or `make deps`)"
    helm_bin()


def test_chart_lints():
    problems = []
    for strict in ([], ["--strict"]):
        for name, values in TOGGLES.items():
            r = helm("lint", *strict, str(CHART), "--namespace", NAMESPACE,
                     "-f", values_file(name, values))
            if r.returncode != 0 or "[ERROR]" in r.stdout or \
                    (strict and "[WARNING]" in r.stdout):
                problems.append("helm lint %s(%s): %s" % (
                    " ".join(strict) + " " if strict else "", name,
                    " ".join((r.stdout + r.stderr).split())[-400:]))
    assert not problems, "; ".join(problems)


def test_every_toggle_renders_what_it_asks_for():
    problems = []
    for name in TOGGLES:
        docs = render(name)
        seen = set()
        kinds = {d.get("kind") for d in docs}
        for d in docs:
            meta = d.get("metadata") or {}
            what = "%s: %s %s" % (name, d.get("kind"), meta.get("name"))
            if not d.get("apiVersion") or not d.get("kind") or \
                    not meta.get("name"):
                problems.append("%s: no apiVersion, kind or name" % what)
            key = (d.get("kind"), meta.get("name"))
            if key in seen:
                problems.append("%s twice" % what)
            seen.add(key)
            labels = meta.get("labels") or {}
            missing = [l for l in RECOMMENDED if not labels.get(l)]
            if missing:
                problems.append("%s lacks the labels %s" % (what, missing))
            if labels.get("app.kubernetes.io/managed-by") != "Helm" or \
                    labels.get("app.kubernetes.io/instance") != RELEASE:
                problems.append("%s: managed-by %r, instance %r" % (
                    what, labels.get("app.kubernetes.io/managed-by"),
                    labels.get("app.kubernetes.io/instance")))
        want = DEFAULT_KINDS | TOGGLE_KINDS.get(name, set())
        if not want <= kinds:
            problems.append("%s renders no %s" % (name,
                                                  sorted(want - kinds)))
        extra = kinds - DEFAULT_KINDS - TOGGLE_KINDS.get(name, set())
        if extra:
            problems.append("%s renders %s, which it does not ask for" % (
                name, sorted(extra)))
    assert not problems, "; ".join(problems)


def secret_names(values):
    """Every Secret name the values give (existingSecret, caSecret)."""
    out = set()
    for k, v in values.items():
        if isinstance(v, dict):
            out |= secret_names(v)
        elif k in ("existingSecret", "caSecret") and v:
            out.add(v)
    return out


def test_references_resolve_and_selectors_select_the_pods():
    problems = []
    for name in TOGGLES:
        docs = render(name)
        values = effective_values(name)
        dep = one(docs, "Deployment")
        pod = dep["spec"]["template"]
        labels = pod["metadata"]["labels"]
        where = name + ": "

        def check_selector(what, sel):
            if not selects(sel, labels):
                problems.append(where + "%s selector %s does not select "
                                "the pods" % (what, sel))
            stable = {"app.kubernetes.io/name", "app.kubernetes.io/instance",
                      "app.kubernetes.io/component"}
            if sel and set(sel) != stable:
                problems.append(where + "%s selects by %s (a version or "
                                "chart label would change with upgrades)"
                                % (what, sorted(sel)))

        check_selector("Deployment", dep["spec"]["selector"]["matchLabels"])
        for t in pod["spec"].get("topologySpreadConstraints", []):
            check_selector("topologySpread", t["labelSelector"]
                           ["matchLabels"])
        check_selector("Service", one(docs, "Service")["spec"]["selector"])
        check_selector("PodDisruptionBudget", one(
            docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"])
        for kind in ("PodMonitor", "ServiceMonitor"):
            for m in of_kind(docs, kind):
                check_selector(kind, m["spec"]["selector"]["matchLabels"])
                eps = m["spec"].get("podMetricsEndpoints",
                                    m["spec"].get("endpoints", []))
                if [e.get("port") for e in eps] != ["metrics"] or \
                        m["spec"].get("jobLabel") != "app.kubernetes.io/name":
                    problems.append(where + "%s scrapes %s, job from %s" % (
                        kind, eps, m["spec"].get("jobLabel")))
                if not labels.get(m["spec"].get("jobLabel", ""), "") \
                        .startswith("ak2vault"):
                    problems.append(where + "the job would not match the "
                                    "alert rules' job=~\"ak2vault.*\"")
        for np in of_kind(docs, "NetworkPolicy"):
            check_selector("NetworkPolicy", np["spec"]["podSelector"]
                           ["matchLabels"])
        # What the pods refer to.
        names = {(d["kind"], d["metadata"]["name"]) for d in docs}
        sa = pod["spec"].get("serviceAccountName")
        if ("ServiceAccount", sa) not in names:
            problems.append(where + "serviceAccountName %s is not rendered"
                            % sa)
        if pod["spec"].get("automountServiceAccountToken") is not False:
            problems.append(where + "the Kubernetes API token is mounted")
        secrets = secret_names(values)
        for v in pod["spec"].get("volumes", []):
            if "configMap" in v and \
                    ("ConfigMap", v["configMap"]["name"]) not in names:
                problems.append(where + "volume %s: ConfigMap %s is not "
                                "rendered" % (v["name"],
                                              v["configMap"]["name"]))
            if "secret" in v and v["secret"]["secretName"] not in secrets:
                problems.append(where + "volume %s: Secret %s is named by "
                                "no value" % (v["name"],
                                              v["secret"]["secretName"]))
        for e in pod["spec"]["containers"][0].get("env", []):
            ref = (e.get("valueFrom") or {}).get("configMapKeyRef")
            if ref and ("ConfigMap", ref["name"]) not in names:
                problems.append(where + "%s: ConfigMap %s is not rendered"
                                % (e["name"], ref["name"]))
        for so in of_kind(docs, "ScaledObject"):
            t = so["spec"]["scaleTargetRef"]
            if (t.get("kind"), t.get("name")) != \
                    ("Deployment", dep["metadata"]["name"]):
                problems.append(where + "scaleTargetRef %s" % t)
            for trig in so["spec"]["triggers"]:
                ref = (trig.get("authenticationRef") or {}).get("name")
                if ref and ("TriggerAuthentication", ref) not in names:
                    problems.append(where + "authenticationRef %s is not "
                                    "rendered" % ref)
            if so["spec"]["maxReplicaCount"] != values["keda"][
                    "maxReplicaCount"]:
                problems.append(where + "maxReplicaCount %s" %
                                so["spec"]["maxReplicaCount"])
        if of_kind(docs, "ScaledObject") and "replicas" in dep["spec"]:
            problems.append(where + "replicas set although KEDA owns them")
        if not of_kind(docs, "ScaledObject") and \
                dep["spec"].get("replicas") != values["replicaCount"]:
            problems.append(where + "replicas %s, not replicaCount" %
                            dep["spec"].get("replicas"))
        for ta in of_kind(docs, "TriggerAuthentication"):
            for r in ta["spec"].get("secretTargetRef", []):
                if r["name"] not in secrets:
                    problems.append(where + "TriggerAuthentication reads "
                                    "Secret %s, named by no value" %
                                    r["name"])
        for crb in of_kind(docs, "ClusterRoleBinding"):
            for s in crb["subjects"]:
                if ("ServiceAccount", s["name"]) not in names or \
                        s.get("namespace") != NAMESPACE or s["name"] == sa:
                    problems.append(where + "ClusterRoleBinding subject %s"
                                    % s)
    assert not problems, "; ".join(problems)


def secret_file(dep, path):
    """(Secret name, key) of the mounted file \\p path, or ("projected",
    audience) for a projected ServiceAccount token, or None."""
    vol, key = mounted_file(path, dep)
    item = volume_items(vol or {}).get(key) or {}
    if "secret" in item:
        return item["secret"]["secretName"], item["key"]
    if "serviceAccountToken" in item:
        return "projected", item["serviceAccountToken"].get("audience")
    return None


def test_rendered_configuration_is_what_the_values_say():
    problems = []
    for name in TOGGLES:
        docs = render(name)
        v = effective_values(name)
        cfg = rendered_config(name)
        dep = one(docs, "Deployment")
        c = dep["spec"]["template"]["spec"]["containers"][0]
        where = name + ": "
        # Written once: what the worker reads, what KEDA watches.
        for setting, want in (("kafka.brokers", v["kafka"]["brokers"]),
                              ("kafka.topic", v["kafka"]["topic"]),
                              ("kafka.group", v["kafka"]["group"]),
                              ("kafka.instance_id", POD_NAME),
                              ("authentik.url", v["authentik"]["url"]),
                              ("vault.addr", v["vault"]["addr"]),
                              ("vault.auth.method",
                               v["vault"]["auth"]["method"]),
                              ("vault.kv_mount", v["vault"]["kvMount"]),
                              ("vault.prefix", v["vault"]["prefix"]),
                              ("vault.on_delete", v["vault"]["onDelete"]),
                              ("log.level", v["config"]["logLevel"]),
                              ("dlq.topic", v["kafka"]["dlqTopic"] or
                               v["kafka"]["topic"] + ".dlq"),
                              ("sync.shutdown_timeout_ms",
                               v["config"]["shutdownTimeoutMs"])):
            if cfg.get(setting) != want:
                problems.append(where + "the worker's %s is %r, the values "
                                "say %r" % (setting, cfg.get(setting), want))
        for group, settings in v["config"]["extra"].items():
            for k, want in settings.items():
                got = cfg.get("%s.%s" % (group, k))
                if isinstance(want, bool):
                    want = "true" if want else "false"
                elif isinstance(want, list):
                    want = "[%s]" % ", ".join('"%s"' % x for x in want)
                elif isinstance(want, float):
                    got = float(got)
                if got != want:
                    problems.append(where + "config.extra %s.%s: %r, not %r"
                                    % (group, k, got, want))
        for so in of_kind(docs, "ScaledObject"):
            md = so["spec"]["triggers"][0]["metadata"]
            for var, key in TRIGGER_KEYS.items():
                if md.get(key) != cfg[COORDINATES[var]]:
                    problems.append(where + "KEDA's %s %r, the worker's %s "
                                    "%r" % (key, md.get(key),
                                            COORDINATES[var],
                                            cfg[COORDINATES[var]]))
        # The metrics port, once.
        port = listen_port(cfg["metrics.listen"])
        cport = {p["name"]: p["containerPort"] for p in c["ports"]}
        sport = [p for p in one(docs, "Service")["spec"]["ports"]
                 if p.get("targetPort") == "metrics"]
        if port != v["config"]["metricsPort"] or cport.get("metrics") != \
                port or not sport or sport[0]["port"] != port:
            problems.append(where + "metrics.listen %s, container port %s, "
                            "Service %s" % (cfg["metrics.listen"], cport,
                                            sport))
        # The files the worker reads, from what the values name.
        if secret_file(dep, cfg["authentik.token_file"]) != (
                v["authentik"]["existingSecret"],
                v["authentik"]["tokenKey"]):
            problems.append(where + "authentik.token_file is not the "
                            "Secret's key")
        auth = v["vault"]["auth"]
        method = auth["method"]
        if method == "kubernetes":
            got = secret_file(dep, cfg["vault.auth.jwt_file"] or "")
            want = ("projected", auth["kubernetes"]["audience"])
            if got != want or cfg["vault.auth.role"] != \
                    auth["kubernetes"]["role"]:
                problems.append(where + "kubernetes login: %s, role %r" % (
                    got, cfg["vault.auth.role"]))
        elif method == "approle":
            for setting, key in (("vault.auth.role_id_file", "roleIdKey"),
                                 ("vault.auth.secret_id_file",
                                  "secretIdKey")):
                if secret_file(dep, cfg[setting] or "") != (
                        auth["approle"]["existingSecret"],
                        auth["approle"][key]):
                    problems.append(where + "%s is not the Secret's key"
                                    % setting)
        else:
            if secret_file(dep, cfg["vault.token_file"] or "") != (
                    auth["token"]["existingSecret"], auth["token"]["key"]):
                problems.append(where + "vault.token_file is not the "
                                "Secret's key")
        if cfg.get("vault.auth.mount") != (auth["mount"] or method) and \
                method != "token":
            problems.append(where + "vault.auth.mount %r" %
                            cfg.get("vault.auth.mount"))
        for group in ("vault", "authentik"):
            ca = v[group]["tls"]["caSecret"]
            got = cfg.get(group + ".tls.ca_file")
            if bool(ca) != bool(got) or (ca and secret_file(dep, got) != (
                    ca, v[group]["tls"]["caKey"])):
                problems.append(where + "%s.tls.ca_file %r, the values' CA "
                                "%r" % (group, got, ca))
        # Kafka's security: the worker's properties, KEDA's trigger.
        props = dict(cfg["kafka.properties"] or [])
        proto = v["kafka"]["securityProtocol"]
        if props.get("security.protocol", "PLAINTEXT") != proto:
            problems.append(where + "security.protocol %r" %
                            props.get("security.protocol"))
        for k, want in v["kafka"]["extraProperties"].items():
            if props.get(k) != want:
                problems.append(where + "property %s %r" % (k, props.get(k)))
        reads = {}
        if proto.startswith("SASL_"):
            sasl = v["kafka"]["sasl"]
            env = pod_env(dep, configmaps(docs))
            user = props.get("sasl.username", "")
            if props.get("sasl.mechanism") != sasl["mechanism"] or \
                    user != "@env:KAFKA_SASL_USERNAME" or \
                    env.get("KAFKA_SASL_USERNAME") != sasl["username"]:
                problems.append(where + "SASL mechanism %r, user %r" % (
                    props.get("sasl.mechanism"), user))
            pw = props.get("sasl.password", "")
            reads["password"] = secret_file(
                dep, pw[6:]) if pw.startswith("@file:") else pw
            if reads["password"] != (sasl["existingSecret"],
                                     sasl["passwordKey"]):
                problems.append(where + "sasl.password %r is not the "
                                "Secret's key" % pw)
        if props.get("ssl.ca.location"):
            reads["ca"] = secret_file(dep, props["ssl.ca.location"])
            if reads["ca"] != (v["kafka"]["tls"]["caSecret"],
                               v["kafka"]["tls"]["caKey"]):
                problems.append(where + "ssl.ca.location is not the CA "
                                "Secret's key")
        for so in of_kind(docs, "ScaledObject"):
            trig = so["spec"]["triggers"][0]
            md = trig["metadata"]
            if md.get("sasl") != KEDA_SASL.get(props.get("sasl.mechanism")):
                problems.append(where + "KEDA's sasl %r for %r" % (
                    md.get("sasl"), props.get("sasl.mechanism")))
            if (md.get("tls") == "enable") != (proto in ("SSL",
                                                         "SASL_SSL")):
                problems.append(where + "KEDA's tls %r for %s" % (
                    md.get("tls"), proto))
            tas = {t["metadata"]["name"]: t for t in
                   of_kind(docs, "TriggerAuthentication")}
            ta = tas.get((trig.get("authenticationRef") or {}).get("name"))
            if bool(reads) != bool(ta):
                problems.append(where + "the worker reads %s, KEDA's "
                                "authenticationRef is %s" % (
                                    reads, trig.get("authenticationRef")))
            if ta:
                hands = {r["parameter"]: (r["name"], r["key"]) for r in
                         ta["spec"].get("secretTargetRef", [])}
                if hands != reads:
                    problems.append(where + "KEDA gets %s, the worker "
                                    "reads %s" % (hands, reads))
                envs = {e["parameter"]: (e["name"], e.get("containerName"))
                        for e in ta["spec"].get("env", [])}
                want = {"username": ("KAFKA_SASL_USERNAME", c["name"])} \
                    if "password" in reads else {}
                if envs != want:
                    problems.append(where + "KEDA's user name from %s" %
                                    envs)
        # The NetworkPolicy: exactly what the worker calls, and scrapes in.
        for np in of_kind(docs, "NetworkPolicy"):
            outs = {(int(p["port"]), p.get("protocol", "TCP"))
                    for r in np["spec"]["egress"] for p in r["ports"]}
            want = {(53, "UDP"), (53, "TCP"),
                    (url_port(cfg["vault.addr"]), "TCP"),
                    (url_port(cfg["authentik.url"]), "TCP")} | \
                {(p, "TCP") for p in broker_ports(cfg["kafka.brokers"])}
            if outs != want:
                problems.append(where + "egress %s, the worker needs %s" % (
                    sorted(outs), sorted(want)))
            ins = [p for r in np["spec"]["ingress"] for p in
                   r.get("ports", [])]
            if ins != [{"port": "metrics", "protocol": "TCP"}] or \
                    sorted(np["spec"]["policyTypes"]) != ["Egress",
                                                          "Ingress"]:
                problems.append(where + "ingress %s" % ins)
    assert not problems, "; ".join(problems)


HASH = re.compile(r"-[a-z0-9]{10}$")  # kustomize's generated name suffix


def normalized_deployment(dep, hashed):
    """The Deployment's spec for comparison: metadata left out (labels and
    annotations are checked elsewhere), selectors reduced to a marker once
    they are seen to select the pods, kustomize's name hashes
    (\\p hashed) taken off the ConfigMap names."""
    spec = json.loads(json.dumps(dep["spec"]))
    pod_labels = spec["template"]["metadata"]["labels"]
    assert selects(spec["selector"]["matchLabels"], pod_labels)
    spec["selector"] = "<selects the pods>"
    del spec["template"]["metadata"]
    ps = spec["template"]["spec"]
    for t in ps.get("topologySpreadConstraints", []):
        assert selects(t["labelSelector"]["matchLabels"], pod_labels)
        t["labelSelector"] = "<selects the pods>"

    def unhash(name):
        return HASH.sub("", name) if hashed else name
    for v in ps.get("volumes", []):
        if "configMap" in v:
            v["configMap"]["name"] = unhash(v["configMap"]["name"])
    for c in ps["containers"]:
        for e in c.get("env", []):
            ref = (e.get("valueFrom") or {}).get("configMapKeyRef")
            if ref:
                ref["name"] = unhash(ref["name"])
    return spec


def differences(a, b, path=""):
    """The paths where \\p a and \\p b differ, with both values."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += differences(a.get(k, "<absent>"), b.get(k, "<absent>"),
                               "%s.%s" % (path, k) if path else k)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += differences(x, y, "%s[%d]" % (path, i))
        return out
    return [] if a == b else ["%s: chart %s, kustomize %s" % (
        path, json.dumps(a), json.dumps(b))]


def test_deployment_is_the_kustomize_one():
    """The defaults (with KEDA, as docker/kubernetes has it) against
    `kustomize build docker/kubernetes`: one spec, one configuration."""
    chart = render("keda-only", {"keda": {"enabled": True}})
    kust = kustomize_build()
    a = normalized_deployment(one(chart, "Deployment"), False)
    b = normalized_deployment(one(kust, "Deployment"), True)
    diff = differences(a, b)
    assert not diff, "the chart's Deployment drifted from " \
        "docker/kubernetes/deployment.yaml: %s" % "; ".join(diff)
    # The fields the comparison must have seen (a normalization that threw
    # them away would pass anything).
    c = a["template"]["spec"]["containers"][0]
    for field in ("livenessProbe", "readinessProbe", "securityContext",
                  "args", "ports", "env", "volumeMounts", "resources"):
        assert c.get(field), "the compared container has no %s" % field
    for field in ("strategy", "revisionHistoryLimit"):
        assert a.get(field), "the compared spec has no %s" % field
    for field in ("securityContext", "terminationGracePeriodSeconds",
                  "volumes", "serviceAccountName"):
        assert a["template"]["spec"].get(field), \
            "the compared pod has no %s" % field
    # The workers' effective configurations.
    mine = rendered_config("defaults")
    theirs = assets.built_config(kust)
    diff = ["%s: chart %r, kustomize %r" % (k, mine.get(k), theirs.get(k))
            for k in sorted(set(mine) | set(theirs))
            if mine.get(k) != theirs.get(k)]
    assert not diff, "the workers' configurations differ: %s" % "; ".join(
        diff)
    # The objects around the pods say the same too.
    for kind in ("Service", "PodDisruptionBudget", "ScaledObject"):
        x = json.loads(json.dumps(one(chart, kind)["spec"]))
        y = json.loads(json.dumps(one(kust, kind)["spec"]))
        for s in (x, y):
            s.get("selector", {}).pop("matchLabels", None)
            if kind == "Service":
                s.pop("selector", None)
        diff = differences(x, y)
        assert not diff, "the chart's %s drifted from docker/kubernetes: " \
            "%s" % (kind, "; ".join(diff))


def test_prometheusrule_is_the_alert_rules():
    assert CHART_ALERTS.read_bytes() == ALERTS.read_bytes(), \
        "%s differs from %s: copy it again with %s --write-alerts" % (
            rel(CHART_ALERTS), rel(ALERTS), rel(__file__))
    rule = one(render("podmonitor"), "PrometheusRule")
    want = yaml.safe_load(ALERTS.read_text())
    assert rule["spec"] == want, "the rendered PrometheusRule's spec is " \
        "not docker/prometheus/alerts.yaml"
    assert want.get("groups") and all(g.get("rules") for g in
                                      want["groups"]), "no rules compared"


def test_schema_refuses_bad_values():
    bad = {
        "unknown value": ({"kafka": {"broker": "k:9092"}}, "broker"),
        "port out of range": ({"config": {"metricsPort": 70000}},
                              "metricsPort"),
        "unknown Vault method": ({"vault": {"auth": {"method": "ldap"}}},
                                 "method"),
        "a string for a boolean": ({"keda": {"enabled": "yes"}}, "enabled"),
        "SASL without credentials": ({"kafka": {
            "securityProtocol": "SASL_SSL"}}, "username"),
        "broker list with spaces": ({"kafka": {"brokers": "a:1, b:2"}},
                                    "brokers"),
        "approle without a Secret": ({"vault": {"auth": {
            "method": "approle"}}}, "existingSecret"),
        "a URL without scheme": ({"vault": {"addr": "vault:8200"}}, "addr"),
    }
    problems = []
    for what, (values, word) in bad.items():
        r = helm("template", RELEASE, str(CHART), "-f",
                 values_file("bad-" + re.sub(r"\W+", "-", what), values))
        if r.returncode == 0:
            problems.append("%s: rendered" % what)
        elif word not in r.stderr:
            problems.append("%s: refused without naming %s: %s" % (
                what, word, " ".join(r.stderr.split())[-300:]))
    assert not problems, "; ".join(problems)


def test_chart_versions():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    r = subprocess.run([akvtest.binary("ak2vault"), "--version"],
                       capture_output=True, text=True, timeout=10)
    m = re.match(r"ak2vault (\S+)", r.stdout)
    assert m, "ak2vault --version printed %r" % r.stdout[:100]
    assert str(chart.get("appVersion")) == m.group(1), \
        "Chart.yaml's appVersion %r is not ak2vault's version %s" % (
            chart.get("appVersion"), m.group(1))
    dep = one(render("defaults"), "Deployment")
    image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith(":" + m.group(1)), "the default image %s is not " \
        "of version %s" % (image, m.group(1))
    assert chart.get("apiVersion") == "v2" and chart.get("version"), \
        "Chart.yaml: apiVersion v2 and a version"


def value_paths(d, prefix=""):
    """{dotted path: default} of values.yaml's leaves (an empty map or any
    list is a leaf)."""
    out = {}
    for k, v in d.items():
        p = prefix + k
        if isinstance(v, dict) and v:
            out.update(value_paths(v, p + "."))
        out[p] = v
    return out


def readme_rows():
    """{path: default cell} of the chart README's values table."""
    rows = {}
    for m in re.finditer(r"^\| `([\w.]+)` \| `([^`]*)` \|",
                         CHART_README.read_text(), re.M):
        assert m.group(1) not in rows, "%s has two rows" % m.group(1)
        rows[m.group(1)] = m.group(2)
    assert rows, "the chart README has no values table"
    return rows


def test_readme_documents_every_value():
    paths = value_paths(defaults())
    rows = readme_rows()
    problems = []
    for p, v in paths.items():
        # A row for the leaf, or for a map that holds it (resources).
        covered = [r for r in rows if p == r or p.startswith(r + ".")]
        leaf = not isinstance(v, dict) or not v
        if leaf and not covered:
            problems.append("%s has no row" % p)
    for r, cell in rows.items():
        if r not in paths:
            problems.append("the row %s is no value of values.yaml" % r)
        elif yaml.safe_load(cell) != paths[r]:
            problems.append("the row %s says %s, values.yaml %s" % (
                r, cell, json.dumps(paths[r])))
    assert not problems, "; ".join(problems)


def test_readme_example_renders():
    """The values of the README's "Installing" render, their worker's
    configuration passes check-config, and every Secret they name is one
    the README's commands create."""
    text = CHART_README.read_text()
    m = re.search(r"\*\*The values\*\*.*?```yaml\n(.*?)```", text, re.S)
    assert m, "the chart README shows no example values"
    example = yaml.safe_load(m.group(1))
    TOGGLES["readme"] = example
    docs = render("readme")
    cfg = rendered_config("readme")
    assert cfg["kafka.brokers"] == example["kafka"]["brokers"], \
        "the example's brokers did not reach the worker"
    created = set(re.findall(r"create secret generic ([\w.-]+)", text))
    named = secret_names(effective_values("readme"))
    assert named <= created, "the example names Secrets %s the README " \
        "does not create" % sorted(named - created)
    assert of_kind(docs, "ScaledObject") and \
        of_kind(docs, "TriggerAuthentication"), "the example's KEDA"


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-alerts"]:
        shutil.copyfile(ALERTS, CHART_ALERTS)
        print("copied %s to %s" % (rel(ALERTS), rel(CHART_ALERTS)))
        sys.exit(0)
    akvtest.run_tests(globals(), "helm", setup=setup)
