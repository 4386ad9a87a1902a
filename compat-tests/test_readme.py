"""README.md's quickstart, run verbatim (issue 24): the first ```sh block
under "## Quickstart", from a clean working directory, with `cxlkafka` on
PATH as the README tells, against a live gateway. The gateway is chosen
with CXLKAFKA_BOOTSTRAP (the README's own way to pick one), so the block
runs unchanged while the test's gateway listens on a free port.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from conftest import gateway_binary

README = Path(__file__).resolve().parent.parent / "README.md"


def quickstart_block() -> str:
    text = README.read_text()
    section = text.split("## Quickstart", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "README's Quickstart has no ```sh block"
    return match.group(1)


def test_the_readme_keeps_its_two_commands_at_the_top_and_stays_short():
    text = README.read_text()
    assert len(text) < 8000, f"README.md is {len(text)} characters"
    run = text.index("cargo run --release -p cxlkafka-gateway --bin cxlkafka -- serve")
    test = text.index("./run-tests")
    assert run < test < text.index("## What it is")


def test_the_quickstart_runs_verbatim(start_gateway, tmp_path):
    gw = start_gateway(default_partitions=1)
    block = quickstart_block()
    env = dict(os.environ, CXLKAFKA_BOOTSTRAP=gw.bootstrap,
               PATH=f"{Path(gateway_binary()).parent}:{os.environ['PATH']}")
    env = {k: v for k, v in env.items()
           if not k.startswith("CXLKAFKA_") or k == "CXLKAFKA_BOOTSTRAP"}
    work = tmp_path / "clean"
    work.mkdir()
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=work, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"exit {run.returncode}\n{run.stdout}\n{run.stderr}"
    out = run.stdout
    # The two records come back as key=value, in whatever partition order.
    consumed = [line for line in out.splitlines() if re.fullmatch(r"k\d=v\d", line)]
    assert sorted(consumed) == ["k1=v1", "k2=v2"], out
    # The group's description names it, its topic, and no lag left.
    assert "quickstart-group" in out and "quickstart" in out, out
    header = next(line.split() for line in out.splitlines() if line.startswith("TOPIC"))
    rows = [dict(zip(header, line.split())) for line in out.splitlines()
            if line.split()[:1] == ["quickstart"]]
    assert rows, f"no per-partition rows in the group description\n{out}"
    assert sum(int(row["COMMITTED"]) for row in rows) == 2, out
    assert all(row["LAG"] == "0" for row in rows), out
    assert list(work.iterdir()) == [], "the quickstart leaves nothing in its directory"
