"""The bandwidth ladder: run by bench/ladder (which installs what it needs).

Each run starts a fresh broker process (a new region file and data
directory), loads it with one tool, samples the broker's memory while it
runs, reads its peak RSS (VmHWM) at the end, and stops it. Each rung and
tool runs against cxlkafka and against the sink, alternating which goes
first, so that the machine's noise falls on both sides; the figure is the
ratio. The 100 MB and 1 GB rungs run --repeat pairs (default 3), the
10 GB rung --repeat-10gb (default 1); each pair gives a ratio, and the
summary (summary.csv, the chart, the last table printed) takes the median.

Tools:
  bench     cxlkafka bench produce (acks=all, 256 KiB batches, 16 in flight)
  rdkafka   rdkafka_performance -P -a -1 -X linger.ms=5 -X batch.size=1000000 -u -l
  kcat      kcat -P -l FILE -X acks=all -X linger.ms=5 (1 KiB lines)
  consume   cxlkafka bench consume of what a bench produce left, against
            cxlkafka serve and against cxlkafka bench sink (the sink whose
            fetches return data)

"acked %" is the share of the rung's records acknowledged: the tool's own
count (bench, rdkafka) or the partition's high watermark afterwards (kcat).
MB is 2^20 bytes of record values, as kafka-producer-perf-test counts
(batch bytes for consume). p99 is per record: from the tool's latencies
(bench), from rdkafka_performance's per-message latency file (-l -A), and
not available for kcat.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECORD_SIZE = 1024
RUNGS = {"100MB": 100_000_000, "1GB": 1_000_000_000, "2GB": 2_000_000_000,
         "10GB": 10_000_000_000}
TOOLS = ["bench", "rdkafka", "kcat", "consume"]
MIB = 1024 * 1024


@dataclass
class Row:
    rung: str
    tool: str
    target: str
    records: int
    trial: int = 1
    acked: int = 0
    acked_pct: float = 0.0
    seconds: float = 0.0
    mb_per_s: float = 0.0
    p99_ms: float | None = None
    rss_peak_mib: float = 0.0
    rss_anon_peak_mib: float = 0.0
    ratio: float | None = None
    note: str = ""


def parse_size(text: str) -> int:
    text = text.strip().upper()
    for name, value in RUNGS.items():
        if text == name:
            return value
    match = re.fullmatch(r"(\d+)\s*(B|KB|MB|GB|TB)?", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text}")
    unit = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}[match.group(2) or "B"]
    return int(match.group(1)) * unit


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"broker not listening on {port} after {limit}s")


def status_kib(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Broker:
    """One broker process: `serve`, `serve --sink`, or `bench sink`."""

    def __init__(self, binary: Path, kind: str, work: Path, region_size: str, log_dir: Path):
        self.kind = kind
        self.port = free_port()
        self.work = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=work))
        # At most 16 bytes (the region keeps the name).
        cluster = f"ladder{self.port}"
        self.region = Path(f"/dev/shm/cxlkafka-{cluster}")
        metrics = f"127.0.0.1:{free_port()}"
        listen = f"127.0.0.1:{self.port}"
        if kind == "fetch-sink":
            argv = [str(binary), "bench", "sink", "--listen", listen, "--metrics-addr", metrics]
        else:
            argv = [
                str(binary), "serve", "--listen", listen, "--cluster", cluster,
                "--region-path", str(self.region), "--region-size", region_size,
                "--data-dir", str(self.work / "data"), "--metrics-addr", metrics,
                "--log-level", "warn",
            ]
            if kind == "sink":
                argv.append("--sink")
        self.log = open(log_dir / f"{kind}-{self.port}.log", "w")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        self.anon_peak_kib = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        try:
            wait_for_port(self.port, self.proc)
        except Exception:
            self.stop()
            raise

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.anon_peak_kib = max(self.anon_peak_kib, status_kib(self.proc.pid, "RssAnon"))
            time.sleep(0.2)

    def peak(self) -> tuple[float, float]:
        """(VmHWM, sampled RssAnon peak) in MiB."""
        return status_kib(self.proc.pid, "VmHWM") / 1024, self.anon_peak_kib / 1024

    def stop(self) -> None:
        self._stop.set()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.work, ignore_errors=True)
        self.region.unlink(missing_ok=True)


def run(argv: list[str], log: Path, timeout: float) -> tuple[str, float]:
    """Runs a tool; returns its stdout and wall time."""
    started = time.monotonic()
    with open(log, "w") as err:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=err, text=True, timeout=timeout)
    elapsed = time.monotonic() - started
    with open(log, "a") as out:
        out.write(done.stdout)
    if done.returncode != 0:
        raise RuntimeError(f"{Path(argv[0]).name} exited with {done.returncode} (see {log})")
    return done.stdout, elapsed


FINAL = re.compile(
    r"(\d+) records (?:sent|received), ([\d.]+) records/sec \(([\d.]+) MB/sec\), "
    r"([\d.]+) ms avg latency, ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, "
    r"(\d+) ms 99th, (\d+) ms 99.9th\."
)


def parse_bench(stdout: str) -> tuple[int, float, float]:
    """(records, MB/s, p99 ms) from a bench tool's final line."""
    lines = [m for m in FINAL.finditer(stdout)]
    if not lines:
        raise RuntimeError("no final line from cxlkafka bench")
    last = lines[-1]
    return int(last.group(1)), float(last.group(3)), float(last.group(8))


def high_watermark(bootstrap: str, topic: str) -> int:
    done = subprocess.run(
        ["kcat", "-b", bootstrap, "-Q", "-t", f"{topic}:0:-1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60,
    )
    match = re.search(r"\[0\]\s+offset\s+(-?\d+)", done.stdout)
    if not match:
        raise RuntimeError(f"cannot read the high watermark: {done.stdout.strip()}")
    return int(match.group(1))


def percentile(values: list[int], q: float) -> float:
    if not values:
        return float("nan")
    values.sort()
    return values[min(len(values) - 1, int(q * len(values)))]


class Ladder:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = Path(args.work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.logs = self.out / "logs"
        self.logs.mkdir(exist_ok=True)
        self.rows: list[Row] = []
        self.turn = 0
        self.trial = 1

    def broker(self, kind: str) -> Broker:
        return Broker(Path(self.args.binary), kind, self.work, self.args.region_size, self.logs)

    def log_path(self, tool: str, rung: str, target: str) -> Path:
        return self.logs / f"{tool}-{rung}-{self.trial}-{target}.log"

    def topic(self) -> str:
        self.turn += 1
        return f"ladder{self.turn}"

    # One run of each tool against a fresh broker.

    def bench(self, rung: str, target: str, records: int) -> Row:
        row = Row(rung, "bench", target, records)
        broker = self.broker("serve" if target == "cxlkafka" else "sink")
        try:
            stdout, elapsed = run(
                [self.args.binary, "bench", "produce", "--bootstrap", broker.bootstrap,
                 "--topic", self.topic(), "--records", str(records),
                 "--record-size", str(RECORD_SIZE), "--acks", self.args.acks,
                 "--in-flight", str(self.args.bench_in_flight)],
                self.log_path("bench", rung, target), self.args.timeout,
            )
            row.acked, row.mb_per_s, row.p99_ms = parse_bench(stdout)
            row.seconds = elapsed
        except Exception as error:  # noqa: BLE001 - recorded in the row
            row.note = str(error)
        finally:
            row.rss_peak_mib, row.rss_anon_peak_mib = broker.peak()
            broker.stop()
        return row

    def rdkafka(self, rung: str, target: str, records: int) -> Row:
        row = Row(rung, "rdkafka", target, records)
        tool = Path(self.args.rdkafka_performance)
        if not tool.exists():
            row.note = "rdkafka_performance not built"
            return row
        broker = self.broker("serve" if target == "cxlkafka" else "sink")
        latencies = self.work / f"latency-{os.getpid()}.txt"
        try:
            stdout, elapsed = run(
                [str(tool), "-P", "-t", self.topic(), "-p", "0", "-b", broker.bootstrap,
                 "-s", str(RECORD_SIZE), "-c", str(records), "-a", self.args.acks,
                 "-X", "linger.ms=5", "-X", f"batch.size={self.args.rdkafka_batch_size}",
                 "-u", "-l", "-A", str(latencies)],
                self.log_path("rdkafka", rung, target), self.args.timeout,
            )
            # The last table row: elapsed ms, msgs, bytes, rtt, dr, dr_m/s,
            # dr_MB/s, dr_err, tx_err, outq, offset, lat_*.
            rows = [
                [c.strip() for c in line.strip().strip("|").split("|")]
                for line in stdout.splitlines()
                if line.startswith("|") and re.match(r"\|\s+\d", line)
            ]
            if not rows:
                raise RuntimeError("no table row from rdkafka_performance")
            last = rows[-1]
            elapsed_ms, delivered = int(last[0]), int(last[4])
            row.acked = delivered
            row.seconds = elapsed_ms / 1000
            row.mb_per_s = delivered * RECORD_SIZE / MIB / max(row.seconds, 1e-9)
            with open(latencies) as f:
                values = [int(line) for line in f if line.strip()]
            row.p99_ms = percentile(values, 0.99) / 1000
        except Exception as error:  # noqa: BLE001
            row.note = str(error)
        finally:
            latencies.unlink(missing_ok=True)
            row.rss_peak_mib, row.rss_anon_peak_mib = broker.peak()
            broker.stop()
        return row

    def kcat_input(self, records: int) -> Path:
        """A file of `records` lines of RECORD_SIZE letters (made once)."""
        path = self.work / f"kcat-{records}.txt"
        if path.exists() and path.stat().st_size == records * (RECORD_SIZE + 1):
            return path
        line = (b"ABCDEFGHIJKLMNOPQRSTUVWXYZ" * (RECORD_SIZE // 26 + 1))[:RECORD_SIZE] + b"\n"
        chunk = line * 4096
        with open(path, "wb") as f:
            left = records
            while left >= 4096:
                f.write(chunk)
                left -= 4096
            f.write(line * left)
        return path

    def kcat(self, rung: str, target: str, records: int) -> Row:
        row = Row(rung, "kcat", target, records)
        source = self.kcat_input(records)
        broker = self.broker("serve" if target == "cxlkafka" else "sink")
        topic = self.topic()
        try:
            _, elapsed = run(
                ["kcat", "-P", "-b", broker.bootstrap, "-t", topic, "-p", "0",
                 "-X", f"acks={'all' if self.args.acks == '-1' else self.args.acks}",
                 "-X", "linger.ms=5", "-l", str(source)],
                self.log_path("kcat", rung, target), self.args.timeout,
            )
            row.seconds = elapsed
            row.acked = high_watermark(broker.bootstrap, topic)
            row.mb_per_s = row.acked * RECORD_SIZE / MIB / max(elapsed, 1e-9)
        except Exception as error:  # noqa: BLE001
            row.note = str(error)
        finally:
            row.rss_peak_mib, row.rss_anon_peak_mib = broker.peak()
            broker.stop()
        return row

    def consume_pair(self, rung: str, records: int, order: list[str]) -> list[Row]:
        """bench consume of what bench produce left in cxlkafka (whatever
        the broker still serves), and the same count from the fetch sink."""
        rows: dict[str, Row] = {}
        count = None
        # Read at least about 400 MB, so the small rung is not all start-up.
        repeat = self.args.consume_repeat or max(1, 400_000_000 // RUNGS[rung])
        # cxlkafka first: the sink reads as many records as it could serve.
        for target in ["cxlkafka", "sink"]:
            row = Row(rung, "consume", target, records)
            broker = self.broker("serve" if target == "cxlkafka" else "fetch-sink")
            topic = self.topic()
            try:
                run(
                    [self.args.binary, "bench", "produce", "--bootstrap", broker.bootstrap,
                     "--topic", topic, "--records", str(records if target == "cxlkafka" else count),
                     "--record-size", str(RECORD_SIZE), "--acks", "-1"],
                    self.log_path("consume-produce", rung, target), self.args.timeout,
                )
                stdout, elapsed = run(
                    [self.args.binary, "bench", "consume", "--bootstrap", broker.bootstrap,
                     "--topic", topic, "--connections", "2", "--in-flight", "4",
                     "--repeat", str(repeat)],
                    self.log_path("consume", rung, target), self.args.timeout,
                )
                received, row.mb_per_s, row.p99_ms = parse_bench(stdout)
                row.records = received
                row.acked = received
                row.seconds = elapsed
                if target == "cxlkafka":
                    count = received // repeat
                    row.note = f"read {count} of {records} records (what the broker served)"
            except Exception as error:  # noqa: BLE001
                row.note = str(error)
            finally:
                row.rss_peak_mib, row.rss_anon_peak_mib = broker.peak()
                broker.stop()
            rows[target] = row
            if count is None:
                break
        return [rows[t] for t in order if t in rows]

    def go(self) -> None:
        rungs = [r for r in self.args.rungs if RUNGS[r] <= self.args.max]
        pairs = 0
        for rung in rungs:
            records = RUNGS[rung] // RECORD_SIZE
            trials = self.args.repeat_10gb if rung == "10GB" else self.args.repeat
            for self.trial in range(1, trials + 1):
                for tool in self.args.tools:
                    order = ["cxlkafka", "sink"] if pairs % 2 == 0 else ["sink", "cxlkafka"]
                    pairs += 1
                    # A 10 GB pair runs for minutes: say what is running.
                    print(f"[{time.strftime('%H:%M:%S')}] running {rung} {tool}, "
                          f"trial {self.trial}/{trials}: {order[0]} then {order[1]}", flush=True)
                    if tool == "consume":
                        pair = self.consume_pair(rung, records, order)
                    else:
                        pair = [getattr(self, tool)(rung, target, records) for target in order]
                    for row in pair:
                        row.trial = self.trial
                        if row.records and row.tool != "consume":
                            row.acked_pct = 100.0 * row.acked / row.records
                        elif row.tool == "consume":
                            row.acked_pct = 100.0 if row.acked else 0.0
                        self.rows.append(row)
                        print(self.describe(row), flush=True)
                    self.ratios()
                    self.write()
        print(summary_table(summarize(self.rows)), flush=True)

    @staticmethod
    def describe(row: Row) -> str:
        p99 = "n/a" if row.p99_ms is None else f"{row.p99_ms:.1f} ms"
        text = (
            f"{row.rung:>5} #{row.trial} {row.tool:<8} {row.target:<8} {row.acked_pct:6.2f}% acked "
            f"{row.mb_per_s:9.1f} MB/s p99 {p99:>9} RSS peak {row.rss_peak_mib:7.1f} MiB "
            f"(anon {row.rss_anon_peak_mib:6.1f})"
        )
        return text + (f"  [{row.note}]" if row.note else "")

    def ratios(self) -> None:
        sinks = {(r.rung, r.tool, r.trial): r for r in self.rows if r.target == "sink"}
        for row in self.rows:
            sink = sinks.get((row.rung, row.tool, row.trial))
            if row.target == "cxlkafka" and sink and sink.mb_per_s > 0:
                row.ratio = row.mb_per_s / sink.mb_per_s

    def write(self) -> None:
        write_csv(self.out / "ladder.csv", self.rows)
        summary = summarize(self.rows)
        write_csv(self.out / "summary.csv", summary)
        chart(summary, self.out / "ladder.png")


def write_csv(path: Path, records: list) -> None:
    """Dataclass records as CSV, floats with 3 decimals."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(asdict(records[0]).keys()))
        writer.writeheader()
        for record in records:
            fields = asdict(record)
            for key, value in fields.items():
                if isinstance(value, float):
                    fields[key] = f"{value:.3f}"
            writer.writerow(fields)


@dataclass
class Summary:
    """One rung and tool over its pairs: medians, and the worst of each
    pass/fail figure."""
    rung: str
    tool: str
    pairs: int
    cxlkafka_mb_per_s: float
    sink_mb_per_s: float
    ratio: float | None
    ratio_min: float | None
    ratio_max: float | None
    acked_pct_min: float
    p99_ms_max: float | None
    rss_peak_mib_max: float


def median(values: list[float]) -> float:
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def summarize(rows: list[Row]) -> list[Summary]:
    out = []
    for rung in RUNGS:
        for tool in TOOLS:
            cxl = [r for r in rows if r.rung == rung and r.tool == tool and r.target == "cxlkafka"]
            sink = [r for r in rows if r.rung == rung and r.tool == tool and r.target == "sink"]
            if not cxl:
                continue
            ratios = [r.ratio for r in cxl if r.ratio is not None]
            p99s = [r.p99_ms for r in cxl if r.p99_ms is not None]
            out.append(Summary(
                rung, tool, len(cxl),
                median([r.mb_per_s for r in cxl]),
                median([r.mb_per_s for r in sink]) if sink else 0.0,
                median(ratios) if ratios else None,
                min(ratios) if ratios else None,
                max(ratios) if ratios else None,
                min(r.acked_pct for r in cxl),
                max(p99s) if p99s else None,
                max(r.rss_peak_mib for r in cxl),
            ))
    return out


def summary_table(summary: list[Summary]) -> str:
    """The summary as a Markdown table (what a closing note quotes)."""
    def fmt(value, spec):
        return "n/a" if value is None else format(value, spec)
    lines = [
        "| rung | tool | pairs | cxlkafka MB/s | sink MB/s | ratio (median) | ratio range "
        "| acked (min) | cxlkafka p99 (max) | peak RSS (max) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        lines.append(
            f"| {s.rung} | {s.tool} | {s.pairs} | {s.cxlkafka_mb_per_s:.0f} | "
            f"{s.sink_mb_per_s:.0f} | **{fmt(s.ratio, '.2f')}** | "
            f"{fmt(s.ratio_min, '.2f')}-{fmt(s.ratio_max, '.2f')} | {s.acked_pct_min:.0f} % | "
            f"{fmt(s.p99_ms_max, '.0f') + ' ms' if s.p99_ms_max is not None else 'n/a'} | "
            f"{s.rss_peak_mib_max:.0f} MiB |"
        )
    return "\n".join(lines)


def chart(rows: list[Summary], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rungs = [r for r in RUNGS if any(row.rung == r for row in rows)]
    tools = [t for t in TOOLS if any(row.tool == t for row in rows)]
    by = {(r.rung, r.tool): r for r in rows}
    fig, (bars, memory) = plt.subplots(
        2, 1, figsize=(11, 8.5), gridspec_kw={"height_ratios": [3, 1.4]}
    )
    width = 0.8 / max(1, len(tools))
    colours = {"bench": "#1f77b4", "rdkafka": "#ff7f0e", "kcat": "#2ca02c", "consume": "#9467bd"}
    for t_index, tool in enumerate(tools):
        for r_index, rung in enumerate(rungs):
            x = r_index + (t_index - (len(tools) - 1) / 2) * width
            line = by.get((rung, tool))
            if line is None:
                continue
            if line.sink_mb_per_s:
                bars.bar(x, line.sink_mb_per_s, width * 0.95, color="none",
                         edgecolor=colours[tool], hatch="//", linewidth=1.2)
            bars.bar(x, line.cxlkafka_mb_per_s, width * 0.6, color=colours[tool],
                     label=tool if r_index == 0 else None)
            if line.ratio is not None:
                top = max(line.cxlkafka_mb_per_s, line.sink_mb_per_s)
                bars.annotate(f"{line.ratio:.2f}", (x, top), ha="center", va="bottom",
                              fontsize=9, xytext=(0, 2), textcoords="offset points")
            memory.bar(x, line.rss_peak_mib_max, width * 0.8, color=colours[tool])
    bars.set_xticks(range(len(rungs)), [f"{r} of 1 KiB records, acks=all" for r in rungs])
    bars.set_ylabel("MB/s (2^20 bytes)")
    bars.set_title(
        "cxlkafka (solid) vs the sink (hatched), same client, same run;\n"
        "medians over each rung's pairs; label = median ratio"
    )
    top = max([1.0] + [max(r.cxlkafka_mb_per_s, r.sink_mb_per_s) for r in rows])
    bars.set_ylim(0, top * 1.22)
    bars.legend(loc="upper center", ncol=len(tools), fontsize=9)
    bars.grid(axis="y", alpha=0.3)
    memory.axhline(256, color="red", linestyle="--", linewidth=1)
    memory.text(len(rungs) - 0.55, 256, "256 MiB", color="red", va="bottom", ha="right", fontsize=8)
    memory.set_xlim(-0.5, len(rungs) - 0.5)
    bars.set_xlim(-0.5, len(rungs) - 0.5)
    memory.set_ylim(0, max([300] + [r.rss_peak_mib_max * 1.15 for r in rows]))
    memory.set_xticks(range(len(rungs)), rungs)
    memory.set_ylabel("gateway peak RSS\n(VmHWM, MiB)")
    memory.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="bench/ladder", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--max", type=parse_size, default=RUNGS["10GB"],
                        help="largest rung to run (100MB, 1GB, 10GB); default 10GB")
    parser.add_argument("--rungs", type=lambda s: s.split(","), default=list(RUNGS),
                        help="comma-separated rungs (default: 100MB,1GB,2GB,10GB)")
    parser.add_argument("--tools", type=lambda s: s.split(","), default=TOOLS,
                        help=f"comma-separated tools (default: {','.join(TOOLS)})")
    parser.add_argument("--acks", default="-1", choices=["-1", "1", "0"],
                        help="acks of the producing tools (default -1: all)")
    parser.add_argument("--rdkafka-batch-size", type=int, default=1_000_000,
                        help="librdkafka's batch.size for rdkafka_performance (default 1000000, "
                             "as issue 19 measures it)")
    parser.add_argument("--region-size", default="1GiB",
                        help="region of the cxlkafka gateway (default 1GiB: 8 slots, "
                             "about 120 MiB of arena for the one gateway)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="pairs (cxlkafka and sink) per tool on the 100MB and 1GB rungs "
                             "(default 3; the summary takes the median ratio)")
    parser.add_argument("--repeat-10gb", type=int, default=1,
                        help="pairs per tool on the 10GB rung (default 1)")
    parser.add_argument("--consume-repeat", type=int, default=0,
                        help="times bench consume reads what the broker holds "
                             "(default: enough to read about 400 MB)")
    parser.add_argument("--bench-in-flight", type=int, default=16,
                        help="requests in flight per connection for bench produce (default 16: "
                             "with 5, an acks=all answer that waits for an fsync makes the "
                             "run latency-bound rather than bandwidth-bound)")
    parser.add_argument("--work", default=str(HERE / ".work"),
                        help="where gateways keep their data and kcat its input "
                             "(default bench/.work, on disk; a tmpfs path takes the disk out)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per tool run")
    parser.add_argument("--out", default=str(HERE / "results"), help="where to write results")
    parser.add_argument("--chart-only", action="store_true",
                        help="redraw the chart from OUT/ladder.csv")
    parser.add_argument("--binary", default=str(HERE.parent / "target/release/cxlkafka"),
                        help="the cxlkafka binary (default: the release build)")
    parser.add_argument("--rdkafka-performance",
                        default=str(HERE.parent / "target/librdkafka/bin/rdkafka_performance"),
                        help="rdkafka_performance (built by compat-tests/librdkafka/build)")
    parser.add_argument("--keep-inputs", action="store_true",
                        help="keep kcat's input files (up to 10 GB) in WORK for the next run")
    parser.add_argument("--no-build", action="store_true",
                        help="use the release binary as it is (bench/ladder)")
    args = parser.parse_args()
    if args.repeat < 1 or args.repeat_10gb < 1:
        parser.error("--repeat and --repeat-10gb take at least 1 pair")
    for rung in args.rungs:
        if rung not in RUNGS:
            parser.error(f"unknown rung {rung}; use {','.join(RUNGS)}")
    for tool in args.tools:
        if tool not in TOOLS:
            parser.error(f"unknown tool {tool}; use {','.join(TOOLS)}")
    if args.chart_only:
        rows = []
        with open(Path(args.out) / "ladder.csv") as f:
            for record in csv.DictReader(f):
                def num(key):
                    return float(record[key]) if record[key] not in ("", "None") else None
                rows.append(Row(
                    record["rung"], record["tool"], record["target"], int(record["records"]),
                    trial=int(record.get("trial") or 1), acked=int(record["acked"]),
                    acked_pct=num("acked_pct"), seconds=num("seconds"), mb_per_s=num("mb_per_s"),
                    p99_ms=num("p99_ms"), rss_peak_mib=num("rss_peak_mib"),
                    rss_anon_peak_mib=num("rss_anon_peak_mib"), ratio=num("ratio"),
                    note=record["note"],
                ))
        summary = summarize(rows)
        print(summary_table(summary))
        chart(summary, Path(args.out) / "ladder.png")
        return
    ladder = Ladder(args)
    try:
        ladder.go()
    finally:
        if not args.keep_inputs:
            for made in Path(args.work).glob("kcat-*.txt"):
                made.unlink(missing_ok=True)
    print(f"wrote {ladder.out / 'ladder.csv'}, {ladder.out / 'summary.csv'} and {ladder.out / 'ladder.png'}")


if __name__ == "__main__":
    sys.exit(main())
