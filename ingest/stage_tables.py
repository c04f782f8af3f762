"""Staging tables that name their owner, so the leftovers of a killed load can be dropped.

A load writes into `raw._stage_<kind>_h<host>p<pid>_<random>` and drops it when done; a
process killed in between leaves it behind. The next load drops every staging table whose
owner is not a live process on this host. With the embedded engine only one process can open
the warehouse at a time, so there every staging table not owned by this process is a leftover
(including those named before owners were recorded); a ClickHouse server may be shared by
loads on other hosts, whose tables are left alone.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import uuid

from clickhouse_connect.driver.client import Client

from pipeline.runlock import process_alive

log = logging.getLogger(__name__)

PREFIX = "_stage_"
_OWNER = re.compile(r"_h([0-9a-f]{6})p([0-9]+)_[0-9a-f]+$")


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def stage_name(kind: str, pid: int | None = None) -> str:
    """A fresh `raw.` staging table name for `kind` (e.g. "order_filled"), owned by `pid`
    (this process by default) on this host."""
    owner = f"h{_host_tag()}p{os.getpid() if pid is None else pid}"
    return f"raw.{PREFIX}{kind}_{owner}_{uuid.uuid4().hex[:8]}"


def _orphaned(name: str, embedded: bool) -> bool:
    match = _OWNER.search(name)
    if match is None:  # named before owners were recorded
        return embedded
    host, pid = match.group(1), int(match.group(2))
    if host != _host_tag():
        return embedded  # a shared server: another host's load may be running
    return pid != os.getpid() and not process_alive(pid)


def drop_orphans(client: Client, embedded: bool) -> list[str]:
    """Drop the `raw._stage_*` tables no live process owns; returns their names."""
    names = [
        row[0]
        for row in client.query(
            "SELECT name FROM system.tables WHERE database = 'raw' AND startsWith(name, {p:String})",
            parameters={"p": PREFIX},
        ).result_rows
    ]
    dropped = []
    for name in names:
        if _orphaned(name, embedded):
            client.command(f"DROP TABLE IF EXISTS raw.`{name}`")
            dropped.append(name)
    if dropped:
        log.warning(
            "dropped staging tables left by killed loads",
            extra={"ctx": {"tables": dropped}},
        )
    return dropped
