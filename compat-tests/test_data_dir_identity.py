"""A data dir records the cluster that wrote it (issue 20: `serve --cluster B
--data-dir <A's data>` silently served A's topics).

Gateway A creates a topic and stops. A gateway of cluster B pointed at A's
data dir exits at once with an error naming both clusters and the
override; with --adopt-data-dir it starts and serves A's topic as B's.
"""

from __future__ import annotations

import time


def test_another_clusters_data_dir_is_refused_unless_adopted(start_gateway, _gateway_pool,
                                                             topic_name):
    a = start_gateway()
    a.require("Metadata")
    md = a.metadata([topic_name])  # auto-creates it
    assert md.topic(topic_name) is not None and md.topic(topic_name).error_code == 0
    a.exit_expected = True
    a.stop()
    identity = (a.data_dir / "cluster").read_text()
    assert f"cluster.name={a.cluster_name}\n" in identity, identity

    b_region = _gateway_pool.new_region()
    refused = start_gateway(region=b_region, data_dir=str(a.data_dir), wait_ready=False)
    refused.exit_expected = True
    deadline = time.monotonic() + 30
    while refused.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not refused.alive(), f"cluster B serves A's data dir\n{refused.log_tail()}"
    assert refused.proc.returncode != 0
    log = refused.log_text()
    assert f'holds cluster "{a.cluster_name}"' in log, refused.log_tail()
    assert f'serves cluster "{b_region[1]}"' in log, refused.log_tail()
    assert "--adopt-data-dir" in log, refused.log_tail()
    assert (a.data_dir / "cluster").read_text() == identity, "refused, not rewritten"

    adopted = start_gateway(region=b_region, data_dir=str(a.data_dir), adopt_data_dir=True)
    md = adopted.metadata([topic_name], allow_auto_create=False)
    assert md.topic(topic_name) is not None and md.topic(topic_name).error_code == 0, \
        "the adopted data dir's topic is served"
    assert f"cluster.name={b_region[1]}\n" in (a.data_dir / "cluster").read_text()
