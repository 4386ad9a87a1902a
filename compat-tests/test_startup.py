"""Starting a gateway the way a newcomer does (issue 24): names resolve, a
refused start says what to do and leaves nothing behind (no region file, no
bound port), and `--log-format json` writes one JSON object per line.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time

import pytest

from conftest import HOST, free_port, gateway_binary


def wait_exit(gw, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while gw.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not gw.alive(), f"{gw.name} still runs\n{gw.log_tail()}"
    gw.exit_expected = True
    return gw.proc.returncode


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
        return True


def test_a_region_of_another_cluster_is_refused_naming_both(start_gateway, _gateway_pool):
    owner = start_gateway()
    region_path, owner_cluster = owner.region_path, owner.cluster_name
    stranger = start_gateway(region=(region_path, "stranger"), wait_ready=False)
    assert wait_exit(stranger) != 0
    log = stranger.log_text()
    assert f'belongs to cluster "{owner_cluster}"' in log, stranger.log_tail()
    assert 'serves cluster "stranger"' in log, stranger.log_tail()
    assert f"--cluster {owner_cluster}" in log, "says how to join it instead"
    assert owner.alive(), "the region's own gateway is untouched"
    assert region_path.exists()
    # Its new data dir is left unclaimed: fixing --cluster then works.
    assert not (stranger.data_dir / "cluster").exists()


def test_a_start_refused_after_formatting_leaves_no_region(start_gateway, _gateway_pool):
    """The data dir belongs to another cluster: refused before the region is
    formatted, so no region is left that no gateway serves."""
    first = start_gateway()
    first.exit_expected = True
    first.stop()
    region_path, cluster = _gateway_pool.new_region()
    refused = start_gateway(region=(region_path, cluster), data_dir=str(first.data_dir),
                            wait_ready=False)
    assert wait_exit(refused) != 0
    assert f'holds cluster "{first.cluster_name}"' in refused.log_text(), refused.log_tail()
    assert not region_path.exists(), f"{region_path} left behind\n{refused.log_tail()}"


@pytest.mark.parametrize("flags, says", [
    ({"cluster": "a-cluster-name-of-more-than-sixteen-bytes"}, "--cluster"),
    ({"queued_max_request_bytes": "1MiB"}, "--queued-max-request-bytes"),
    ({"node_id": 100000}, "--node-id"),
])
def test_an_invalid_configuration_binds_nothing_and_maps_nothing(start_gateway, _gateway_pool,
                                                                  flags, says):
    region_path, cluster = _gateway_pool.new_region()
    flags = {"cluster": cluster, **flags}
    refused = start_gateway(region=(region_path, flags.pop("cluster")), wait_ready=False, **flags)
    assert wait_exit(refused) == 2, refused.log_tail()
    assert "invalid configuration" in refused.log_text(), refused.log_tail()
    assert says in refused.log_text(), refused.log_tail()
    assert not region_path.exists(), "no region for a configuration that cannot work"
    assert port_is_free(refused.port) and port_is_free(refused.metrics_port), \
        "nothing was bound"


def test_listen_and_metrics_addresses_take_host_names(start_gateway, _gateway_pool):
    first = socket.getaddrinfo("localhost", None, type=socket.SOCK_STREAM)[0][4][0]
    if first != HOST:
        pytest.skip(f"localhost resolves to {first} first here, the tests probe {HOST}")
    port, metrics_port = free_port(), free_port()
    gw = start_gateway(listen=f"localhost:{port}", metrics_addr=f"localhost:{metrics_port}",
                       wait_ready=False)
    gw.port, gw.metrics_port = port, metrics_port
    _gateway_pool.wait_ready(gw)
    with socket.create_connection((HOST, metrics_port), timeout=10) as conn:
        conn.sendall(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n", 1)[0], reply[:200]
    assert b"cxlkafka_" in reply
    # The Kafka listener answers Metadata with the broker it advertises.
    md = gw.metadata([])
    assert [b.port for b in md.brokers] == [port]


def test_log_format_json_writes_one_object_per_line(start_gateway):
    gw = start_gateway(log_format="json", log_level="info")
    gw.exit_expected = True
    gw.stop()
    lines = [line for line in gw.log_text().splitlines() if line.strip()]
    assert lines, "the gateway logged nothing"
    events = [json.loads(line) for line in lines]  # every line is JSON
    assert all({"timestamp", "level", "target"} <= set(e) for e in events), events[:3]
    ready = [e for e in events if e.get("message") == "Kafka listener ready"]
    assert ready and ready[0]["node_id"] is not None, events
    assert "\x1b[" not in gw.log_text(), "no terminal escapes in a log file"


def test_bench_consume_of_a_missing_topic_creates_nothing(gateway, topic_name):
    run = subprocess.run(
        [gateway_binary(), "bench", "consume", "--bootstrap", f"localhost:{gateway.port}",
         "--topic", topic_name, "--records", "10"],
        capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "does not exist" in run.stderr and "UNKNOWN_TOPIC_OR_PARTITION" in run.stderr, run.stderr
    md = gateway.metadata([topic_name], allow_auto_create=False)
    topic = md.topic(topic_name)
    assert topic is None or topic.error_code == 3, "the topic was not created"


def test_a_config_file_sets_the_flags_the_command_line_leaves_out(start_gateway, tmp_path, topic_name):
    config = tmp_path / "gateway.toml"
    config.write_text('# serve flags\ndefault-partitions = 3\nlog_format = "json"\n'
                      'listen = "127.0.0.1:1"\n')
    gw = start_gateway(config=str(config))  # its --listen wins over the file's
    md = gw.metadata([topic_name])  # auto-creates it with the file's partitions
    assert len(md.topic(topic_name).partitions) == 3
    gw.exit_expected = True
    gw.stop()
    first = gw.log_text().splitlines()[0]
    assert json.loads(first)["message"] == "starting gateway", first

    config.write_text('regoin-size = "1GiB"\n')
    refused = start_gateway(config=str(config), wait_ready=False)
    assert wait_exit(refused) == 2
    assert 'unknown key "regoin-size"' in refused.log_text(), refused.log_tail()
