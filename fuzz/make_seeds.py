#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpus (fuzz/seeds/TARGET/) from the
repository's own files: the reports and sealed blocks of the store fixture
crates/tailmon-server/tests/fixtures/store-e2b19af (written by a real
server), the README's report, the example configuration files of
packaging/ (as shipped, and with every key uncommented), and the TOML
examples of docs/alert-channels.md and the README. Run from anywhere;
needs python3 and the zstd command. The seeds are committed: run it again
only when those sources change. Inputs the fuzzer found worth keeping are
added to the seeds by hand (batch/invalid-utf8-in-an-unknown-key.json)."""

import json
import pathlib
import re
import sqlite3
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEEDS = ROOT / "fuzz" / "seeds"
FIXTURE = ROOT / "crates/tailmon-server/tests/fixtures/store-e2b19af"


def write(target, name, data):
    folder = SEEDS / target
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (folder / name).write_bytes(data)


def compact(value):
    return json.dumps(value, separators=(",", ":"))


def reports():
    answers = json.loads((FIXTURE / "answers.json").read_text())
    latest = answers["latest"]
    for report in latest:
        report.pop("received_at", None)
    readme = (ROOT / "README.md").read_text()
    small = re.search(r"### `POST /api/metrics`.*?```json\n(.*?)```", readme, re.S).group(1)
    write("report", "readme-small.json", small)
    for report in latest:
        write("report", f"full-{report['device_id']}.json", compact(report))
    first = dict(latest[0])
    write("report", "refused-cpu.json", compact({**first, "cpu_usage": 101}))
    write("report", "refused-ram.json", compact({**first, "ram_used_mb": first["ram_total_mb"] + 1}))
    write("report", "future.json", compact({**first, "last_seen": "2026-01-07T00:00:00Z"}))

    write("batch", "empty.json", "[]")
    write("batch", "latest.json", compact(latest))
    write("batch", "one-small.json", "[" + small + "]")
    write("batch", "one-refused.json", compact([latest[0], {**first, "cpu_usage": -1}]))


def configs():
    for name in ("tailmon-server", "tailmon-agent"):
        target = "server_config" if name == "tailmon-server" else "agent_config"
        text = (ROOT / "packaging" / f"{name}.toml").read_text()
        write(target, "packaging.toml", text)
        # Every `# key = value` line uncommented (values as documented).
        keys = re.sub(r"(?m)^# ?([a-z_]+ = .*)$", r"\1", text)
        write(target, "packaging-uncommented.toml", keys)
    examples = []
    for doc in ("docs/alert-channels.md", "README.md"):
        text = (ROOT / doc).read_text()
        examples += [block for block in re.findall(r"```toml\n(.*?)```", text, re.S) if "[alerts" in block]
    for index, example in enumerate(examples):
        write("alerts_config", f"example-{index}.toml", example)
        write("server_config", f"alerts-{index}.toml", example)


def blocks():
    database = sqlite3.connect(f"file:{FIXTURE / 'tailmon.db'}?mode=ro", uri=True)
    for block_id, data in database.execute("SELECT id, data FROM raw_blocks WHERE id IN (1, 7, 8)"):
        write("block_decoder", f"sealed-{block_id}.bin", data)
        unsealed = subprocess.run(["zstd", "-d", "-c"], input=data, capture_output=True, check=True).stdout
        write("block_decoder", f"unsealed-{block_id}.bin", unsealed)


if __name__ == "__main__":
    reports()
    configs()
    blocks()
