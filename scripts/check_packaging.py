#!/usr/bin/env python3
"""Checks the packaging files, as far as they can be checked without a
container engine or a cluster (none runs here):

- packaging/docker/*.Dockerfile: multi-stage, built with the official Rust
  image at the workspace's rust-version, a final stage without a shell run
  as a non-root user, COPY sources that exist, the binary a workspace
  package builds;
- docker-compose.yml: parsed, and `docker compose config -q` (or the older
  `docker-compose config -q`, which needs no engine either) where present;
- deploy/: each Kustomize directory rendered with `kubectl kustomize`,
  validated with `kubernetes-validate --strict`, and what the manifests
  promise checked on the rendered objects;
- .github/workflows/ci.yml: runs .ci/run on push and pull request.

A missing tool skips its checks with a note, unless CI is set (then it is a
failure). Exits 0 when every check passed, 1 otherwise.

Usage: python3 scripts/check_packaging.py   (from anywhere in the repository)
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover - reported below
    yaml = None

ROOT = Path(__file__).resolve().parent.parent
CI = os.environ.get("CI", "") not in ("", "0", "false")

failures = []
notes = []


def fail(what):
    failures.append(what)


def check(condition, what):
    if not condition:
        fail(what)
    return condition


def missing_tool(name, why):
    if CI:
        fail(f"{name} is not installed ({why}); .ci/run installs it")
    else:
        notes.append(f"skipped: {why} ({name} not installed)")


# ---------------------------------------------------------------- Cargo


def workspace():
    """The workspace's rust-version and {bin name: package name}."""
    root = tomllib.loads((ROOT / "Cargo.toml").read_text())
    rust_version = root["workspace"]["package"]["rust-version"]
    bins = {}
    for member in root["workspace"]["members"]:
        manifest = tomllib.loads((ROOT / member / "Cargo.toml").read_text())
        for b in manifest.get("bin", []):
            bins[b["name"]] = manifest["package"]["name"]
    return rust_version, bins


# ----------------------------------------------------------- Dockerfiles


def dockerfile_instructions(path):
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments
    and the parser directive left out."""
    out = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def check_dockerfile(path, rust_version, bins):
    name = path.name
    binary = name.removesuffix(".Dockerfile")
    if not check(binary in bins, f"{name}: no workspace package builds a binary {binary!r}"):
        return
    package = bins[binary]
    stages = []  # [{"name", "from", "instructions"}]
    for word, args in dockerfile_instructions(path):
        if word == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", args, re.IGNORECASE)
            check(m is not None, f"{name}: unreadable FROM {args!r}")
            stages.append({"from": m.group(1), "name": m.group(2), "body": []})
        else:
            check(stages, f"{name}: {word} before any FROM")
            if stages:
                stages[-1]["body"].append((word, args))
    if not check(len(stages) >= 2, f"{name}: not multi-stage ({len(stages)} stage)"):
        return
    build, final = stages[0], stages[-1]
    check(
        re.fullmatch(rf"rust:{re.escape(rust_version)}(\.\d+)?(-[a-z-]+)?", build["from"]) is not None,
        f"{name}: the build stage is {build['from']}, not the official rust:{rust_version} image",
    )
    check(
        final["from"].startswith("gcr.io/distroless/") or final["from"] == "scratch",
        f"{name}: the final image {final['from']} is not distroless or scratch",
    )
    names = {s["name"] for s in stages if s["name"]}
    build_runs = " ".join(a for w, a in build["body"] if w == "RUN")
    check(
        f"-p {package} " in build_runs + " " and f"--bin {binary}" in build_runs,
        f"{name}: the build stage does not build package {package}, binary {binary}",
    )
    check("--locked" in build_runs, f"{name}: cargo build without --locked")
    for stage in stages:
        for word, args in stage["body"]:
            if word not in ("COPY", "ADD"):
                continue
            parts = args.split()
            flags = [p for p in parts if p.startswith("--")]
            paths = [p for p in parts if not p.startswith("--")]
            check(len(paths) >= 2, f"{name}: {word} {args!r} needs a source and a destination")
            from_stage = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
            if from_stage is not None:
                check(from_stage in names, f"{name}: COPY --from={from_stage}: no such stage")
                continue
            check(word == "COPY", f"{name}: ADD from the context (use COPY)")
            for source in paths[:-1]:
                check((ROOT / source).exists(), f"{name}: COPY source {source} is not in the repository")
    users = [a for w, a in final["body"] if w == "USER"]
    check(users, f"{name}: the final stage sets no USER")
    if users:
        user = users[-1].split(":")[0]
        check(user not in ("0", "root", ""), f"{name}: the final stage runs as {users[-1]}")
    entry = [a for w, a in final["body"] if w == "ENTRYPOINT"]
    check(
        entry and entry[-1] == f'["/usr/local/bin/{binary}"]',
        f"{name}: ENTRYPOINT is not the exec form of /usr/local/bin/{binary}",
    )
    copied = [a for w, a in final["body"] if w == "COPY" and a.split()[-1] == f"/usr/local/bin/{binary}"]
    check(copied, f"{name}: the final stage does not copy the binary to /usr/local/bin/{binary}")
    check(
        not any(w in ("RUN", "HEALTHCHECK") for w, _ in final["body"]),
        f"{name}: RUN or HEALTHCHECK in a final stage that has no shell",
    )
    return final


def check_dockerfiles(rust_version, bins):
    docker = ROOT / "packaging" / "docker"
    files = sorted(docker.glob("*.Dockerfile"))
    check(
        {f.name for f in files} == {"tailmon-server.Dockerfile", "tailmon-agent.Dockerfile"},
        f"packaging/docker holds {[f.name for f in files]}",
    )
    for f in files:
        final = check_dockerfile(f, rust_version, bins)
        if final and f.name == "tailmon-server.Dockerfile":
            body = dict((w, a) for w, a in final["body"])
            check(body.get("EXPOSE") == "3000", "server image: EXPOSE 3000")
            check(body.get("VOLUME") == '["/var/lib/tailmon"]', "server image: VOLUME /var/lib/tailmon")
            check("TAILMON_DATA_DIR=/var/lib/tailmon" in body.get("ENV", ""), "server image: TAILMON_DATA_DIR")
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    for needed in ("target/", ".git/"):
        check(needed in ignore, f".dockerignore does not leave out {needed}")


# ---------------------------------------------------------------- Compose


def check_compose():
    path = ROOT / "docker-compose.yml"
    compose = yaml.safe_load(path.read_text())
    services = compose.get("services", {})
    check(set(services) == {"server", "agent"}, f"compose services: {sorted(services)}")
    for name, image in (("server", "tailmon-server"), ("agent", "tailmon-agent")):
        s = services.get(name, {})
        dockerfile = s.get("build", {}).get("dockerfile", "")
        check(dockerfile == f"packaging/docker/{image}.Dockerfile", f"compose {name}: builds {dockerfile!r}")
        check((ROOT / dockerfile).is_file(), f"compose {name}: {dockerfile} missing")
        check(s.get("read_only") is True, f"compose {name}: not read_only")
        check(s.get("cap_drop") == ["ALL"], f"compose {name}: capabilities not dropped")
    server, agent = services.get("server", {}), services.get("agent", {})
    check("3000:3000" in server.get("ports", []), "compose server: port 3000 not published")
    check(
        "tailmon-data:/var/lib/tailmon" in server.get("volumes", [])
        and "tailmon-data" in (compose.get("volumes") or {}),
        "compose server: its data is not on the volume tailmon-data",
    )
    check(server.get("environment", {}).get("TAILMON_DATA_DIR") == "/var/lib/tailmon", "compose server: TAILMON_DATA_DIR")
    check("/tmp" in server.get("tmpfs", []), "compose server: no writable /tmp for SQLite")
    check(agent.get("pid") == "host", "compose agent: not pid: host")
    check("/sys:/sys:ro" in agent.get("volumes", []), "compose agent: /sys not mounted read-only")
    check(
        all(v.endswith(":ro") for v in agent.get("volumes", [])),
        "compose agent: a volume is not read-only",
    )
    env = agent.get("environment", {})
    check(env.get("TAILMON_TOKEN") == "${TAILMON_AGENT_TOKEN:-}", "compose agent: token not from TAILMON_AGENT_TOKEN")
    check(env.get("TAILMON_SERVER_URL", "").startswith("http://127.0.0.1:3000"), "compose agent: server URL")

    if shutil.which("docker") and subprocess.run(
        ["docker", "compose", "version"], capture_output=True
    ).returncode == 0:
        command = ["docker", "compose"]
    elif shutil.which("docker-compose"):
        command = ["docker-compose"]
    else:
        missing_tool("docker compose / docker-compose", "compose config check")
        return
    out = subprocess.run(
        command + ["-f", str(path), "config", "-q"], capture_output=True, text=True, cwd=ROOT
    )
    check(out.returncode == 0, f"{' '.join(command)} config -q: {out.stderr.strip()}")


# ------------------------------------------------------------- Kubernetes


def render(directory):
    out = subprocess.run(
        ["kubectl", "kustomize", str(directory)], capture_output=True, text=True
    )
    if not check(out.returncode == 0, f"kubectl kustomize {directory}: {out.stderr.strip()}"):
        return None, []
    return out.stdout, [d for d in yaml.safe_load_all(out.stdout) if d]


def validate(text, label, tmp):
    file = Path(tmp) / f"{label.replace('/', '_')}.yaml"
    file.write_text(text)
    out = subprocess.run(
        ["kubernetes-validate", "--strict", "--quiet", str(file)], capture_output=True, text=True
    )
    return out.returncode == 0, (out.stdout + out.stderr).strip()


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}


def check_manifests(objects, label):
    by_kind = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    deployment = by_kind.get(("Deployment", "tailmon-server"))
    daemonset = by_kind.get(("DaemonSet", "tailmon-agent"))
    service = by_kind.get(("Service", "tailmon-server"))
    pvc = by_kind.get(("PersistentVolumeClaim", "tailmon-data"))
    if not check(all((deployment, daemonset, service, pvc)), f"{label}: missing objects in {sorted(by_kind)}"):
        return
    spec = deployment["spec"]
    check(spec["replicas"] == 1, f"{label}: server replicas {spec['replicas']}")
    check(spec["strategy"]["type"] == "Recreate", f"{label}: server strategy not Recreate")
    pod = spec["template"]["spec"]
    (server,) = pod["containers"]
    check(server["livenessProbe"]["httpGet"]["path"] == "/healthz", f"{label}: liveness not /healthz")
    check(server["readinessProbe"]["httpGet"]["path"] == "/readyz", f"{label}: readiness not /readyz")
    check(pod["securityContext"].get("runAsNonRoot") is True, f"{label}: server may run as root")
    sc = server["securityContext"]
    check(sc.get("readOnlyRootFilesystem") is True, f"{label}: server root filesystem writable")
    check(sc.get("allowPrivilegeEscalation") is False, f"{label}: server may escalate")
    check("limits" in server.get("resources", {}), f"{label}: server without resource limits")
    claim = [v for v in pod["volumes"] if v.get("persistentVolumeClaim", {}).get("claimName") == "tailmon-data"]
    check(claim, f"{label}: server does not mount the claim tailmon-data")
    data_dir = env_of(server)["TAILMON_DATA_DIR"]["value"]
    mounts = [m["mountPath"] for m in server["volumeMounts"] if claim and m["name"] == claim[0]["name"]]
    check(mounts and data_dir.startswith(mounts[0]), f"{label}: data dir {data_dir} not on the volume {mounts}")
    check(
        any(m["mountPath"] == "/tmp" for m in server["volumeMounts"]),
        f"{label}: no writable /tmp for SQLite under a read-only root filesystem",
    )
    # The Service reaches the server's pods on its named port.
    labels = spec["template"]["metadata"]["labels"]
    check(
        all(labels.get(k) == v for k, v in service["spec"]["selector"].items()),
        f"{label}: the Service selects no server pod",
    )
    (port,) = service["spec"]["ports"]
    check(port["targetPort"] == server["ports"][0]["name"], f"{label}: Service targetPort")
    # The agents: every node, its /proc and /sys, its name, the token.
    pod = daemonset["spec"]["template"]["spec"]
    check(pod.get("hostPID") is True, f"{label}: agent without hostPID")
    (agent,) = pod["containers"]
    env = env_of(agent)
    check(
        env["TAILMON_DEVICE_ID"].get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName",
        f"{label}: agent device id is not the node name",
    )
    check("secretKeyRef" in env["TAILMON_TOKEN"].get("valueFrom", {}), f"{label}: agent token not from a Secret")
    check(
        env["TAILMON_SERVER_URL"]["value"] == f"http://{service['metadata']['name']}:{port['port']}/",
        f"{label}: agent server URL {env['TAILMON_SERVER_URL']['value']} is not the Service",
    )
    host_paths = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    for m in agent["volumeMounts"]:
        check(m.get("readOnly") is True, f"{label}: agent mount {m['mountPath']} writable")
    check(
        any(host_paths.get(m["name"]) == "/sys" and m["mountPath"] == "/sys" for m in agent["volumeMounts"]),
        f"{label}: agent does not read the host's /sys",
    )
    check(agent["securityContext"].get("readOnlyRootFilesystem") is True, f"{label}: agent root filesystem writable")
    check(agent["securityContext"]["capabilities"]["drop"] == ["ALL"], f"{label}: agent keeps capabilities")


def check_kubernetes():
    if not shutil.which("kubectl"):
        missing_tool("kubectl", "rendering deploy/ with kubectl kustomize")
        return
    validator = shutil.which("kubernetes-validate")
    if not validator:
        missing_tool("kubernetes-validate", "validating the rendered manifests")
    directories = [ROOT / "deploy" / "base"] + sorted((ROOT / "deploy" / "overlays").iterdir())
    with tempfile.TemporaryDirectory() as tmp:
        for directory in directories:
            label = str(directory.relative_to(ROOT))
            text, objects = render(directory)
            if text is None:
                continue
            check_manifests(objects, label)
            if validator:
                ok, said = validate(text, label, tmp)
                check(ok, f"{label}: kubernetes-validate: {said}")
                if label == "deploy/base":
                    # The validator must catch a misspelt field, or it proves nothing.
                    broken = text.replace("readOnlyRootFilesystem", "readOnlyRootFilesytem", 1)
                    ok, _ = validate(broken, "broken", tmp)
                    check(not ok, "kubernetes-validate --strict accepted a misspelt field")


# --------------------------------------------------------------------- CI


def check_workflow():
    path = ROOT / ".github" / "workflows" / "ci.yml"
    workflow = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    triggers = workflow.get("on", workflow.get(True))
    check(
        isinstance(triggers, dict) and "push" in triggers and "pull_request" in triggers,
        f"ci.yml: not run on push and pull_request: {triggers}",
    )
    runs = [
        step.get("run", "")
        for job in workflow.get("jobs", {}).values()
        for step in job.get("steps", [])
    ]
    check(any(r.strip() == "bash .ci/run" for r in runs), "ci.yml: no step runs `bash .ci/run`")
    rust_version, _ = workspace()
    check(
        any(rust_version in str(step) for job in workflow["jobs"].values() for step in job["steps"]),
        f"ci.yml: the toolchain is not {rust_version}",
    )


def main():
    if yaml is None:
        if CI:
            print("check_packaging: PyYAML is missing")
            return 1
        print("check_packaging: skipped (PyYAML is missing)")
        return 0
    rust_version, bins = workspace()
    check_dockerfiles(rust_version, bins)
    check_compose()
    check_kubernetes()
    check_workflow()
    for note in notes:
        print(f"check_packaging: {note}")
    for f in failures:
        print(f"check_packaging: FAILED: {f}")
    if failures:
        return 1
    print("check_packaging: Dockerfiles, compose, deploy/ and the CI workflow check out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
