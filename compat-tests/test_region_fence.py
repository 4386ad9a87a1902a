"""A gateway whose region file is unlinked stops acknowledging and exits
(issue 20, split brain after region loss).

Two gateways share one region file. Records are produced with acks=all and
acknowledged; then the file is unlinked while a raw connection keeps
producing to one gateway. Each gateway must notice, answer nothing but
NOT_LEADER_OR_FOLLOWER (6) from then on, log why, and exit with status 75
("restart me to join the region at the path"). Restarted together on their data
dirs, the gateways format a new region, the most complete segments rebuild
it, and every acknowledged record (the raw connection's included) is still
there.
"""

from __future__ import annotations

import os
import time
import urllib.request

import cxk_clients as cc
import cxk_wire as wire

EXIT_REGION_LOST = 75
NOT_LEADER_OR_FOLLOWER = 6
PARTITIONS = 1
COUNT = 300


def scraped(gw, series: str) -> float | None:
    """One sample of the gateway's /metrics, None when absent."""
    with urllib.request.urlopen(gw.metrics_url, timeout=10) as resp:
        body = resp.read().decode()
    for line in body.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def produce_until_closed(conn, version: int, topic: str, deadline: float) -> list[tuple[int, int]]:
    """Raw acks=all Produce requests on `conn`, one after another, until the
    gateway closes it; returns (error code, base offset) per answer."""
    answers = []
    try:
        with conn:
            n = 0
            while time.monotonic() < deadline:
                batch = wire.build_batch([(int(time.time() * 1000), None, f"raw-{n}".encode(), [])])
                result = wire.produce(conn, version, topic, {0: batch}, acks=-1, timeout_ms=10000)
                answers.append((result[0].error_code, result[0].base_offset))
                n += 1
    except (OSError, wire.WireError):
        pass  # the gateway went away: what it answered before is the record
    return answers


def test_gateways_on_an_unlinked_region_stop_acknowledging_exit_and_rejoin(_gateway_pool,
                                                                           topic_name):
    gws = _gateway_pool.cluster(2, default_replication_factor=3, default_partitions=PARTITIONS)
    for g in gws:
        g.require("Metadata", "Produce", "Fetch")
    # Every gateway holds a disk copy (replication factor 3 = region + 2), so
    # either one can rebuild the region alone.
    msgs = cc.make_messages(COUNT, PARTITIONS, seed=20)
    p, perrors = cc.producer(",".join(g.bootstrap for g in gws))
    tracker = cc.DeliveryTracker(COUNT)
    cc.produce_all(p, topic_name, msgs, tracker)
    cc.flush(p, tracker, timeout=60)
    assert tracker.failures() == [], (tracker.failures()[:3], perrors[:3])
    for g in gws:
        assert scraped(g, "cxlkafka_region_fenced") == 0.0, g.name

    region = gws[0].region_path
    conn = gws[1].connect(timeout=15)
    os.unlink(region)
    version = gws[1].api_versions.pick(wire.API_PRODUCE, 3, 7)
    answers = produce_until_closed(conn, version, topic_name, time.monotonic() + 60)
    print(f"raw produce answers after the unlink: {len(answers)}, "
          f"acknowledged {sum(1 for c, _ in answers if c == 0)}, "
          f"refused {sum(1 for c, _ in answers if c == NOT_LEADER_OR_FOLLOWER)}")

    # Both exit with the distinctive status, having said why.
    deadline = time.monotonic() + 60
    for g in gws:
        g.exit_expected = True
        while g.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not g.alive(), f"{g.name} still serves its unlinked region\n{g.log_tail()}"
        assert g.proc.returncode == EXIT_REGION_LOST, \
            f"{g.name} exited with {g.proc.returncode}\n{g.log_tail()}"
        log = g.log_text()
        assert f"region file {region} was unlinked" in log, g.log_tail()
        assert "no longer acknowledges anything" in log, g.log_tail()
        assert "must be restarted to join the region at its path" in log, g.log_tail()
        assert "exit_code=75" in log, g.log_tail()

    # The raw connection saw acknowledgements, then only retriable refusals:
    # never an acknowledgement after the first refusal.
    codes = [code for code, _ in answers]
    assert set(codes) <= {0, NOT_LEADER_OR_FOLLOWER}, codes
    if NOT_LEADER_OR_FOLLOWER in codes:
        first_refusal = codes.index(NOT_LEADER_OR_FOLLOWER)
        assert 0 not in codes[first_refusal:], codes
    raw_acked = {offset for code, offset in answers if code == 0}

    # Restarted on their data dirs: the first formats a new region and
    # rebuilds it from its segments; nothing acknowledged is lost.
    # (No node id: the pool names a gateway by it and would reuse the old
    # one's directories; started in turn, they take slots 0 and 1 again.)
    # Restarted together, as a supervisor does: each waits for the other
    # (both were live when the region went) before the most complete
    # segments rebuild the region.
    restarted = [_gateway_pool.start(region=(region, gws[0].cluster_name), node_id=i,
                                     name=f"restarted{i}",
                                     default_replication_factor=3, data_dir=str(g.data_dir),
                                     wait_ready=False)
                 for i, g in enumerate(gws)]
    for g in restarted:
        _gateway_pool.wait_ready(g)
    assert [g.metadata().brokers and g.api_versions is not None for g in restarted]
    for g in restarted:
        assert scraped(g, "cxlkafka_region_fenced") == 0.0, g.name
    got = cc.consume_from_beginning(restarted[1].bootstrap, topic_name, PARTITIONS,
                                    COUNT + len(raw_acked), timeout=60)
    cc.check_round_trip(msgs, tracker, got, allow_duplicates=True)
    offsets = {g.offset for g in got[0]}
    assert raw_acked <= offsets, f"acknowledged raw produces lost: {sorted(raw_acked - offsets)[:5]}"
