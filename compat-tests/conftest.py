"""Fixtures that run real `cxlkafka serve` processes, and the suite's reporter.

Fixtures (all function-scoped: every test gets fresh gateways, a fresh
region and fresh data directories, cleaned up afterwards):

- ``gateway``: one running gateway with default flags.
- ``start_gateway(**flags)``: starts one gateway with extra flags
  (``default_partitions=3`` becomes ``--default-partitions 3``).
- ``cluster(n, **flags)``: n gateways on one region (same ``--region-path``
  and ``--cluster``, ``--node-id`` 0..n-1, distinct ports), returned once
  every one of them is ready and, where Metadata is served, lists all n.

Each gateway gets a free loopback port, its own ``--metrics-addr`` port,
its own ``--data-dir`` (under the test's tmp_path) and a region file under
/dev/shm named after this run, removed at teardown. Its stdout/stderr go to a
log file whose tail is attached to the report of a failing test. Teardown
kills the gateway's process group (SIGTERM, then SIGKILL); the gateways also
get PR_SET_PDEATHSIG so that they die with pytest even if it is killed.

Reporter: one line per test, ``test <nodeid> ... ok`` or
``test <nodeid> ... FAILED`` (setup, call and teardown all count), which is
what ../run-tests counts.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import cxk_wire as wire

RUN_ID = os.environ.get("CXK_RUN_ID") or uuid.uuid4().hex[:6]
REGION_DIR = Path(os.environ.get("CXK_REGION_DIR", "/dev/shm"))
REGION_SIZE = os.environ.get("CXK_REGION_SIZE", "256MiB")
GATEWAY_LOG_LEVEL = os.environ.get("CXK_GATEWAY_LOG_LEVEL", "info")
READY_TIMEOUT_S = float(os.environ.get("CXK_READY_TIMEOUT", "20"))
LOG_TAIL_LINES = 150
HOST = "127.0.0.1"

_counter = iter(range(1, 1 << 30))
_ports_handed_out: set[int] = set()


# ------------------------------------------------------------------ helpers


def gateway_binary() -> str:
    path = os.environ.get("CXLKAFKA_BIN")
    if not path:
        root = Path(__file__).resolve().parent.parent
        target = Path(os.environ.get("CARGO_TARGET_DIR", root / "target"))
        if not target.is_absolute():
            target = root / target
        path = str(target / "release" / "cxlkafka")
    if not os.access(path, os.X_OK):
        pytest.fail(f"gateway binary {path} not found or not executable; "
                    "run compat-tests/run, or set CXLKAFKA_BIN", pytrace=False)
    return path


def free_port() -> int:
    """A loopback port that is free now and not handed out before in this run."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if port not in _ports_handed_out:
            _ports_handed_out.add(port)
            return port
    raise RuntimeError("no free loopback port")


def _die_with_parent() -> None:
    """preexec_fn: own process group, and SIGKILL when pytest dies."""
    os.setsid()
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def flag_args(flags: dict) -> list[str]:
    args = []
    for k, v in flags.items():
        if v is None:
            continue
        name = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            v = "true" if v else "false"
        args += [name, str(v)]
    return args


@dataclass
class Gateway:
    """One `cxlkafka serve` process."""

    name: str
    node_id: int | None
    port: int
    metrics_port: int
    region_path: Path
    cluster_name: str
    data_dir: Path
    log_path: Path
    argv: list[str]
    proc: subprocess.Popen | None = None
    api_versions: wire.ApiVersions | None = None
    killed: bool = False
    # Set by a test that made the gateway exit on purpose (and checked how).
    exit_expected: bool = False
    _log_file: object = None
    extra: dict = field(default_factory=dict)

    host = HOST

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{HOST}:{self.metrics_port}/metrics"

    def start(self) -> None:
        self._log_file = open(self.log_path, "ab", buffering=0)
        env = dict(os.environ, NO_COLOR="1", RUST_BACKTRACE="1")
        # Flags are passed explicitly; don't let the caller's CXLKAFKA_* leak in.
        for k in list(env):
            if k.startswith("CXLKAFKA_") and k != "CXLKAFKA_BIN":
                del env[k]
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=self._log_file,
            stderr=subprocess.STDOUT, env=env, cwd=self.data_dir.parent,
            preexec_fn=_die_with_parent)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        text = self.log_text().splitlines()
        head = f"(last {lines} of {len(text)} lines of {self.log_path})\n" if len(text) > lines else ""
        return head + "\n".join(text[-lines:])

    def signal(self, sig: int) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL the gateway's process group (a crash, for failover tests)."""
        self.killed = True
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.signal(signal.SIGKILL)  # whatever is left of the group
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if self._log_file:
            self._log_file.close()
            self._log_file = None

    # -- Kafka-level helpers

    def connect(self, timeout: float = 10.0) -> wire.Connection:
        return wire.Connection(HOST, self.port, timeout=timeout)

    def serves(self, api: str) -> bool:
        return self.api_versions is not None and wire.API_KEYS[api] in self.api_versions.apis

    def require(self, *apis: str) -> None:
        """Fails the test at once, naming what is missing, unless the gateway
        advertises every API listed (by Kafka name)."""
        missing = [a for a in apis if not self.serves(a)]
        if missing:
            served = sorted(wire.API_NAMES.get(k, str(k)) for k in self.api_versions.apis)
            pytest.fail(f"gateway {self.name} does not advertise {', '.join(missing)} "
                        f"in ApiVersions (it serves: {', '.join(served)})", pytrace=False)

    def metadata(self, topics: list[str] | None = None, version: int | None = None,
                 allow_auto_create: bool = True) -> wire.Metadata:
        self.require("Metadata")
        if version is None:
            version = self.api_versions.pick(wire.API_METADATA, 1, 12)
            if version is None:
                pytest.fail("gateway serves no Metadata version in 1..12", pytrace=False)
        with self.connect() as c:
            return wire.metadata(c, version, topics, allow_auto_create)


class _NotReady(Exception):
    """The gateway answered, but wrongly: waiting longer will not help."""


def _probe(gw: Gateway) -> str | None:
    """One readiness attempt: None when ready, else why not (worth retrying).
    Raises _NotReady when the answer itself is wrong."""
    try:
        with gw.connect(timeout=3) as c:
            av = wire.api_versions(c, 0)
            if av.error_code != 0:
                raise _NotReady(f"ApiVersions v0 answered error {av.error_code}")
            gw.api_versions = av
            v = av.pick(wire.API_METADATA, 1, 12)
            if v is not None:
                md = wire.metadata(c, v, [], allow_auto_create=False)
                if not any(b.port == gw.port for b in md.brokers):
                    return f"Metadata v{v} does not list this gateway yet: {md.brokers}"
        return None
    except wire.WireError as e:
        if "closed by the broker" in str(e):
            return f"{type(e).__name__}: {e}"
        raise _NotReady(f"bad answer to the readiness probe: {e}") from e
    except OSError as e:
        return f"{type(e).__name__}: {e}"


class GatewayPool:
    """Starts gateways for one test and tears all of them down."""

    def __init__(self, tmp_path: Path, request):
        self.tmp_path = tmp_path
        self.request = request
        self.gateways: list[Gateway] = []
        self.regions: set[Path] = set()
        request.node._cxk_gateways = self.gateways

    def new_region(self) -> tuple[Path, str]:
        n = next(_counter)
        cluster = f"ck{RUN_ID}{n}"[:16]  # the region format holds 16 bytes
        path = REGION_DIR / f"cxk-{RUN_ID}-{n}"
        self.regions.add(path)
        return path, cluster

    def start(self, *, region: tuple[Path, str] | None = None,
              node_id: int | None = None, wait_ready: bool = True,
              name: str | None = None, **flags) -> Gateway:
        binary = gateway_binary()
        region_path, cluster = region or self.new_region()
        idx = len(self.gateways)
        name = name or (f"g{idx}" if node_id is None else f"node{node_id}")
        last_error = None
        for attempt in range(3):
            port, mport = free_port(), free_port()
            data_dir = self.tmp_path / f"{name}-{attempt}" / "data"
            data_dir.mkdir(parents=True)
            log_path = self.tmp_path / f"{name}-{attempt}.log"
            base = {
                "listen": f"{HOST}:{port}",
                "metrics_addr": f"{HOST}:{mport}",
                "region_path": str(region_path),
                "region_size": REGION_SIZE,
                "cluster": cluster,
                "data_dir": str(data_dir),
                "log_level": GATEWAY_LOG_LEVEL,
                "node_id": node_id,
            }
            base.update(flags)
            argv = [binary, "serve"] + flag_args(base)
            gw = Gateway(name, node_id, port, mport, region_path, cluster,
                         data_dir, log_path, argv)
            self.gateways.append(gw)
            gw.start()
            if not wait_ready:
                return gw
            last_error = self.wait_ready(gw, fail=False)
            if last_error is None:
                return gw
            gw.stop()
            self.gateways.remove(gw)
            if not re.search(r"(?i)address (already )?in use", gw.log_text()):
                break  # not a port race: retrying would not help
        pytest.fail(f"gateway {name} did not become ready: {last_error}\n"
                    f"command: {' '.join(gw.argv)}\n--- gateway log ---\n{gw.log_tail()}",
                    pytrace=False)

    def wait_ready(self, gw: Gateway, timeout: float = READY_TIMEOUT_S,
                   fail: bool = True) -> str | None:
        deadline = time.monotonic() + timeout
        why = "not probed"
        while time.monotonic() < deadline:
            if not gw.alive():
                why = f"exited with code {gw.proc.returncode}"
                break
            try:
                why = _probe(gw)
            except _NotReady as e:
                why = str(e)
                break
            if why is None:
                return None
            time.sleep(0.1)
        else:
            why = f"not ready after {timeout}s: {why}"
        if fail:
            pytest.fail(f"gateway {gw.name}: {why}\n--- gateway log ---\n{gw.log_tail()}",
                        pytrace=False)
        return why

    def cluster(self, n: int, **flags) -> list[Gateway]:
        region = self.new_region()
        gws = [self.start(region=region, node_id=i, **flags) for i in range(n)]
        # Where Metadata is served, wait until every gateway lists all n.
        if all(g.serves("Metadata") for g in gws):
            deadline = time.monotonic() + READY_TIMEOUT_S
            ports = {g.port for g in gws}
            while True:
                seen = {}
                for g in gws:
                    try:
                        seen[g.name] = {b.port for b in g.metadata([], allow_auto_create=False).brokers}
                    except (OSError, wire.WireError) as e:
                        seen[g.name] = repr(e)
                if all(v == ports for v in seen.values()):
                    break
                if time.monotonic() > deadline:
                    logs = "\n".join(f"--- {g.name} log ---\n{g.log_tail(60)}" for g in gws)
                    pytest.fail(f"cluster of {n} not formed in {READY_TIMEOUT_S}s: "
                                f"gateway ports {sorted(ports)}, Metadata brokers seen {seen}\n{logs}",
                                pytrace=False)
                time.sleep(0.2)
        return gws

    def teardown(self) -> list[str]:
        problems = []
        for gw in self.gateways:
            if (gw.proc is not None and not gw.killed and not gw.exit_expected
                    and gw.proc.poll() is not None):
                problems.append(f"gateway {gw.name} exited during the test "
                                f"with code {gw.proc.returncode}")
            gw.stop()
            if not gw.killed and re.search(r"panicked at", gw.log_text()):
                problems.append(f"gateway {gw.name} logged a panic")
        for path in self.regions:
            for p in path.parent.glob(path.name + "*"):
                try:
                    p.unlink()
                except OSError:
                    pass
        for gw in self.gateways:
            shutil.rmtree(gw.data_dir, ignore_errors=True)
        return problems


# ------------------------------------------------------------------ fixtures


@pytest.fixture
def _gateway_pool(tmp_path, request):
    pool = GatewayPool(tmp_path, request)
    yield pool
    problems = pool.teardown()
    if problems:
        logs = "\n".join(f"--- {g.name} log ---\n{g.log_tail(80)}" for g in pool.gateways)
        pytest.fail("; ".join(problems) + "\n" + logs, pytrace=False)


@pytest.fixture
def start_gateway(_gateway_pool):
    """Factory: ``start_gateway(default_partitions=3)`` -> Gateway."""
    return _gateway_pool.start


@pytest.fixture
def gateway(start_gateway) -> Gateway:
    """One ready gateway with default flags."""
    return start_gateway()


@pytest.fixture
def cluster(_gateway_pool):
    """Factory: ``cluster(3, default_partitions=3)`` -> [Gateway, ...]."""
    return _gateway_pool.cluster


@pytest.fixture
def topic_name(request) -> str:
    """A topic name unique to this test."""
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name).strip("-")[:120]
    return f"{base}-{uuid.uuid4().hex[:6]}"


# ------------------------------------------------------------------ reporting


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for gw in getattr(item, "_cxk_gateways", []):
            report.sections.append((f"gateway {gw.name} ({gw.bootstrap}) log", gw.log_tail()))


_outcomes: dict[str, str] = {}


def _emit(config, line: str) -> None:
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        tr.write_line(line)
    else:
        print(line, flush=True)


def pytest_report_teststatus(report, config):
    """Keep pytest's own per-test letters quiet: our lines replace them."""
    if report.when in ("setup", "teardown"):
        if report.failed:
            return "error", "", "ERROR"
        if report.skipped:
            return "skipped", "", "SKIPPED"
        return "", "", ""
    if report.passed:
        return "passed", "", "PASSED"
    if report.failed:
        return "failed", "", "FAILED"
    if report.skipped:
        return "skipped", "", "SKIPPED"
    return None


def pytest_runtest_logreport(report):
    state = _outcomes.get(report.nodeid, "ok")
    if report.failed:
        state = "FAILED"
    elif report.skipped and state == "ok":
        state = "ignored"
    _outcomes[report.nodeid] = state
    if report.when == "teardown":
        _emit(_config, f"test {report.nodeid} ... {state}")


def pytest_collectreport(report):
    if report.failed:
        _emit(_config, f"test {report.nodeid or 'collection'} ... FAILED")


_config = None


def pytest_configure(config):
    global _config
    _config = config
