#!/usr/bin/env python3
"""Checks the shipped deployment files against each other and against fusproxy itself:

- deploy/docker-compose.yml, deploy/k8s/*.yaml parse (PyYAML) and are wired right: volumes,
  probes on /healthz and /readyz, ports, labels and selectors, the token from a Secret,
  a grace period longer than fusproxy's --shutdown-grace, a non-root user;
- every FUSPROXY_* variable they (and the Dockerfile) set names a flag of `fusproxy --help`,
  and both trust the proxies in front (FUSPROXY_TRUSTED_PROXY, since nginx sends
  X-Forwarded-For) with a value fusproxy starts with and reports,
  and the Kubernetes ConfigMap's and Compose's settings start a real fusproxy that answers
  /healthz and /readyz, refuses an unauthenticated request when the token is set, and exits
  0 on SIGTERM;
- deploy/nginx/fusproxy.conf passes `nginx -t` (ports rewritten to loopback) and has what
  scale-out needs (consistent hash, streaming, fail-over, keep-alive upstreams).
Exit 0 passed, 1 failed, 77 skipped (PyYAML missing: scripts/setup.sh --test installs python3-yaml).
"""
import argparse
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scaleout_test import Failure, check, http_get, nginx_main_conf, rewrite_nginx_conf, wait_until  # noqa: E402

try:
    import yaml
except ImportError:
    print("check_manifests: SKIPPED: PyYAML is missing (Debian's python3-yaml)")
    sys.exit(77)

failures = []


def ok(msg):
    print(f"check_manifests: ok: {msg}", flush=True)


def step(fn, *args):
    """Runs one group of checks; a failure is recorded and the next group still runs."""
    try:
        return fn(*args)
    except (Failure, KeyError, TypeError, ValueError, IndexError, StopIteration) as e:
        failures.append(f"{fn.__name__}: {type(e).__name__}: {e}")
        print(f"check_manifests: FAIL: {failures[-1]}", flush=True)
        return None


def fusproxy_flags(binary):
    out = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True, timeout=30)
    flags = set(re.findall(r"--([a-z0-9][a-z0-9-]*)", out.stdout))
    check(len(flags) > 10, f"`fusproxy serve --help` lists no flags: {out.stdout[:300]!r}")
    return flags


def env_names_are_flags(where, names, flags):
    for name in names:
        check(name.startswith("FUSPROXY_"), f"{where}: {name} is not a FUSPROXY_ setting")
        flag = name[len("FUSPROXY_"):].lower().replace("_", "-")
        check(flag in flags, f"{where}: {name} names no flag of fusproxy (--{flag})")


def port_of(listen):
    return int(listen.rsplit(":", 1)[1])


def run_fusproxy(binary, env_settings, what, token="check-token"):
    """Starts fusproxy with these FUSPROXY_* settings (listen and cache moved to a temporary
    place), checks health, readiness, the token and a clean SIGTERM exit."""
    tmp = tempfile.mkdtemp(prefix="fusproxy-manifest-")
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FUSPROXY_")}
        env.update({k: str(v) for k, v in env_settings.items()})
        env["FUSPROXY_LISTEN"] = "127.0.0.1:0"
        env["FUSPROXY_CACHE_DIR"] = os.path.join(tmp, "cache")
        env["FUSPROXY_TOKEN"] = token
        port_file = os.path.join(tmp, "port")
        log_path = os.path.join(tmp, "log")
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([binary, "--port-file", port_file], env=env, stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            def port():
                if proc.poll() is not None:
                    raise Failure(f"{what}: fusproxy exited with {proc.returncode}: "
                                  f"{open(log_path, errors='replace').read()[-600:]}")
                if os.path.exists(port_file):
                    text = open(port_file).read()
                    return int(text) if text.endswith("\n") else None
                return None
            p = wait_until(port, f"{what}: fusproxy's port file", 15)
            for path in ("/healthz", "/readyz"):
                status = http_get(p, path, timeout=5)[0]
                check(status == 200, f"{what}: {path} answered {status} (open without the token)")
            status = http_get(p, "/firmware/SM-A207F/SER", timeout=5)[0]
            check(status == 401, f"{what}: a firmware route without the token answered {status}")
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=40)
            check(code == 0, f"{what}: exit code {code} after SIGTERM")
            if env_settings.get("FUSPROXY_TRUSTED_PROXY"):
                # The start-up line lists the effective settings.
                text = open(log_path, errors="replace").read()
                check("trusted-proxy=" in text and "trusted-proxy=none" not in text,
                      f"{what}: FUSPROXY_TRUSTED_PROXY is set but fusproxy reports no trusted proxy")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        ok(f"{what}: fusproxy starts with these settings, /healthz and /readyz 200, "
           "401 without the token, exit 0 on SIGTERM")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def trusts_nginx(where, settings, repo):
    """nginx in front sends X-Forwarded-For: without trusted proxies every client would share
    nginx's address for --rate-limit and --max-downloads-per-client."""
    conf = open(os.path.join(repo, "deploy", "nginx", "fusproxy.conf")).read()
    if re.search(r"proxy_set_header\s+X-Forwarded-For\s", conf):
        check(settings.get("FUSPROXY_TRUSTED_PROXY"),
              f"{where}: nginx sends X-Forwarded-For but FUSPROXY_TRUSTED_PROXY is not set")


def resolve_compose_defaults(value):
    # ${VAR:-default} -> default (the value a shell without VAR gives).
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", str(value))


# ---------------------------------------------------------------------------------------


def check_dockerfile(repo, flags):
    text = open(os.path.join(repo, "Dockerfile")).read()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    check(len(froms) >= 2, f"Dockerfile: {len(froms)} stage(s), expected a multi-stage build")
    check(all(re.match(r"debian:(\$\{DEBIAN_RELEASE\}|bookworm)", f) for f in froms),
          f"Dockerfile: stages FROM {froms}, expected debian:bookworm*")
    check(re.search(r"--mount=type=cache,target=/root/.cache/ccache", text), "Dockerfile: no ccache mount")
    user = re.findall(r"^USER\s+(\d+)", text, re.M)
    check(user and int(user[-1]) != 0, "Dockerfile: the runtime USER must be a numeric non-root uid")
    check(re.search(r"^VOLUME\s+/var/cache/fusproxy", text, re.M), "Dockerfile: no VOLUME for the cache")
    check(re.search(r"^EXPOSE\s+8080", text, re.M), "Dockerfile: no EXPOSE 8080")
    check(re.search(r"^HEALTHCHECK[^\n]*(\\\n[^\n]*)*?/healthz", text, re.M), "Dockerfile: no HEALTHCHECK on /healthz")
    check(re.search(r"^STOPSIGNAL\s+SIGTERM", text, re.M), "Dockerfile: no STOPSIGNAL SIGTERM")
    env_names_are_flags("Dockerfile", set(re.findall(r"\b(FUSPROXY_[A-Z0-9_]+)=", text)), flags)
    ok("Dockerfile: two bookworm stages, ccache mount, non-root USER, VOLUME, EXPOSE, HEALTHCHECK, STOPSIGNAL")
    return int(user[-1])


def check_compose(repo, flags, binary):
    path = os.path.join(repo, "deploy", "docker-compose.yml")
    doc = yaml.safe_load(open(path))
    services = doc["services"]
    replicas = {n: s for n, s in services.items() if n.startswith("fusproxy")}
    check(len(replicas) >= 2, f"compose: replicas {sorted(replicas)}, expected two (one in a profile)")
    volumes_used = []
    for name, s in replicas.items():
        env = s["environment"]
        env_names_are_flags(f"compose {name}", env.keys(), flags)
        mounts = [v for v in s["volumes"] if v.endswith(":/var/cache/fusproxy")]
        check(len(mounts) == 1, f"compose {name}: no volume on /var/cache/fusproxy")
        volume = mounts[0].split(":")[0]
        check(volume in (doc.get("volumes") or {}), f"compose {name}: volume {volume} is not declared")
        volumes_used.append(volume)
        check(any("/healthz" in str(t) for t in s["healthcheck"]["test"]), f"compose {name}: healthcheck")
        check(s.get("stop_signal") == "SIGTERM", f"compose {name}: stop_signal")
    check(len(set(volumes_used)) == len(volumes_used), f"compose: replicas share a cache volume: {volumes_used}")
    nginx = services["nginx"]
    check("scale-out" in nginx.get("profiles", []), "compose: nginx is not in the scale-out profile")
    conf = [v for v in nginx["volumes"] if "fusproxy.conf" in v][0].split(":")[0]
    check(os.path.exists(os.path.join(repo, "deploy", conf)), f"compose: nginx config {conf} is missing")
    upstream_hosts = set(re.findall(r"^\s*server\s+([a-z0-9-]+):8080", open(os.path.join(repo, "deploy", conf)).read(), re.M))
    check(upstream_hosts == set(replicas), f"nginx upstream {sorted(upstream_hosts)} != compose replicas {sorted(replicas)}")
    ok(f"compose: replicas {sorted(replicas)} with their own cache volumes, healthchecks, nginx in the scale-out profile")
    first = next(iter(replicas.values()))["environment"]
    trusts_nginx("compose", {k: resolve_compose_defaults(v) for k, v in first.items() if v is not None}, repo)
    run_fusproxy(binary, {k: resolve_compose_defaults(v) for k, v in first.items() if v is not None}, "compose settings")


def check_kubernetes(repo, flags, binary, docker_uid):
    k8s = os.path.join(repo, "deploy", "k8s")
    objects = {}
    for f in sorted(glob.glob(os.path.join(k8s, "*.yaml"))):
        for o in yaml.safe_load_all(open(f)):
            if not o:
                continue
            for field in ("apiVersion", "kind"):
                check(field in o, f"{os.path.basename(f)}: no {field}")
            if o["kind"] != "Kustomization":
                check(o.get("metadata", {}).get("name"), f"{os.path.basename(f)}: {o['kind']} without a name")
            objects.setdefault(o["kind"], []).append(o)
    kustomization = objects["Kustomization"][0]
    for r in kustomization["resources"]:
        check(os.path.exists(os.path.join(k8s, r)), f"kustomization: resource {r} is missing")

    (sts,) = objects["StatefulSet"]
    (cm,) = objects["ConfigMap"]
    (secret,) = objects["Secret"]
    spec, pod = sts["spec"], sts["spec"]["template"]["spec"]
    labels = sts["spec"]["template"]["metadata"]["labels"]
    check(all(labels.get(k) == v for k, v in spec["selector"]["matchLabels"].items()),
          "StatefulSet: selector does not match the pod labels")
    (c,) = pod["containers"]
    settings = cm["data"]
    env_names_are_flags("ConfigMap", settings.keys(), flags)
    env_names_are_flags("StatefulSet env", [e["name"] for e in c.get("env", [])], flags)

    claim = spec["volumeClaimTemplates"][0]
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == settings["FUSPROXY_CACHE_DIR"])
    check(mount["name"] == claim["metadata"]["name"], "StatefulSet: the cache dir is not on the volumeClaimTemplate")
    storage = claim["spec"]["resources"]["requests"]["storage"]
    units = {"Gi": 2**30, "Ti": 2**40, "Mi": 2**20}
    m = re.fullmatch(r"(\d+)(Gi|Ti|Mi)", storage)
    check(m and int(settings.get("FUSPROXY_CACHE_MAX_BYTES", "0")) not in (0,) and
          int(settings["FUSPROXY_CACHE_MAX_BYTES"]) < int(m.group(1)) * units[m.group(2)],
          f"ConfigMap FUSPROXY_CACHE_MAX_BYTES must be set and below the volume's {storage}")

    port = next(p for p in c["ports"] if p["name"] == "http")["containerPort"]
    check(port == port_of(settings["FUSPROXY_LISTEN"]), "StatefulSet port != FUSPROXY_LISTEN's")
    check(c["readinessProbe"]["httpGet"]["path"] == "/readyz", "readinessProbe is not /readyz")
    check(c["livenessProbe"]["httpGet"]["path"] == "/healthz", "livenessProbe is not /healthz")
    for kind in ("requests", "limits"):
        check({"cpu", "memory"} <= set(c["resources"][kind]), f"resources.{kind} lacks cpu or memory")
    token = next(e for e in c["env"] if e["name"] == "FUSPROXY_TOKEN")["valueFrom"]["secretKeyRef"]
    check(token["name"] == secret["metadata"]["name"] and token["key"] in secret["stringData"],
          "FUSPROXY_TOKEN does not come from the example Secret's key")
    check(c["envFrom"][0]["configMapRef"]["name"] == cm["metadata"]["name"], "envFrom is not the ConfigMap")
    psc, csc = pod["securityContext"], c["securityContext"]
    check(psc["runAsNonRoot"] is True and psc["runAsUser"] == docker_uid,
          f"securityContext: runAsNonRoot and runAsUser {docker_uid} (the image's USER)")
    check(csc["allowPrivilegeEscalation"] is False and csc["readOnlyRootFilesystem"] is True,
          "container securityContext: no privilege escalation, read-only root")
    pre_stop = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    pre_stop_s = int(pre_stop[1]) if pre_stop[:1] == ["sleep"] else 0
    grace = int(settings.get("FUSPROXY_SHUTDOWN_GRACE", 30))
    check(pod["terminationGracePeriodSeconds"] > grace + pre_stop_s,
          f"terminationGracePeriodSeconds {pod['terminationGracePeriodSeconds']} must exceed "
          f"preStop {pre_stop_s} s + shutdown grace {grace} s")

    services = {s["metadata"]["name"]: s for s in objects["Service"]}
    headless = services[spec["serviceName"]]
    check(headless["spec"].get("clusterIP") == "None", "the StatefulSet's serviceName is not headless")
    check(any(s["spec"].get("clusterIP") != "None" for s in services.values()), "no normal Service")
    for name, s in services.items():
        check(all(labels.get(k) == v for k, v in s["spec"]["selector"].items()), f"Service {name}: selector matches no pod")
        for p in s["spec"]["ports"]:
            check(p["targetPort"] in ("http", port), f"Service {name}: targetPort {p['targetPort']}")
    ok(f"kubernetes: {sum(len(v) for v in objects.values())} objects; StatefulSet with a {storage} cache "
       f"claim per replica, probes, resources, token from a Secret, non-root, grace "
       f"{pod['terminationGracePeriodSeconds']} s > {pre_stop_s} + {grace} s; headless + normal Service")
    trusts_nginx("ConfigMap", settings, repo)
    run_fusproxy(binary, dict(settings), "Kubernetes ConfigMap settings")


def check_nginx(repo, nginx):
    text = open(os.path.join(repo, "deploy", "nginx", "fusproxy.conf")).read()
    for needle in (r"hash\s+\$\S+\s+consistent;", r"proxy_buffering\s+off;", r"proxy_request_buffering\s+off;",
                   r"proxy_http_version\s+1\.1;", r'proxy_set_header\s+Connection\s+"";', r"keepalive\s+\d+;",
                   r"proxy_next_upstream\s+error\s+timeout\s+http_502\s+http_503\s+http_504;",
                   r"proxy_read_timeout\s+\d+s;", r"client_max_body_size\s+\S+;"):
        check(re.search(needle, text), f"nginx/fusproxy.conf lacks {needle}")
    check(not re.search(r"^\s*proxy_cache\s", text, re.M), "nginx/fusproxy.conf caches (Range would need care)")
    if not os.access(nginx, os.X_OK):
        print(f"check_manifests: nginx -t not run: no nginx at {nginx}")
        return
    tmp = tempfile.mkdtemp(prefix="fusproxy-nginx-")
    try:
        site = os.path.join(tmp, "fusproxy.conf")
        with open(site, "w") as f:
            f.write(rewrite_nginx_conf(text, 18080, [18081, 18082]))
        main = os.path.join(tmp, "nginx.conf")
        with open(main, "w") as f:
            f.write(nginx_main_conf(tmp, site))
        r = subprocess.run([nginx, "-t", "-p", tmp, "-c", main], capture_output=True, text=True)
        check(r.returncode == 0, f"nginx -t: {r.stderr}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ok("nginx/fusproxy.conf: nginx -t passes; consistent hash, no buffering, keep-alive, fail-over")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", required=True)
    ap.add_argument("--fusproxy", required=True)
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    a = ap.parse_args()
    flags = step(fusproxy_flags, a.fusproxy) or set()
    uid = step(check_dockerfile, a.repo, flags)
    step(check_compose, a.repo, flags, a.fusproxy)
    step(check_kubernetes, a.repo, flags, a.fusproxy, uid)
    step(check_nginx, a.repo, a.nginx)
    if failures:
        print(f"check_manifests: FAILED: {len(failures)} group(s)")
        return 1
    print("check_manifests: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
