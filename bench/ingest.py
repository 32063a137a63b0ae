"""ingest: wrk POSTs a one-recipient in-app send, keep-alive, 32 connections.

Tidings (``tidings serve``, one process, embedded runner on) against the bare FastAPI
app of ``bench/bare_app.py`` running the same statements with the raw driver (the aim's
baseline), and against the same app running only the three inserts of the send, its
notification and its delivery (for comparison with figures before 2026-12-07), each on
a freshly migrated database.
"""

from __future__ import annotations

import json

from bench.harness import (
    Options,
    Server,
    Workspace,
    WrkResult,
    bare_server,
    create_database,
    post_script,
    running,
    tidings_server,
    token,
    wrk,
)
from bench.profiling import Profiler
from bench.report import Figure, ScenarioResult

NAME = "ingest"
TITLE = "POST /v1/notifications, one in-app recipient, wrk -t1 -c32"
BODY = json.dumps(
    {"recipients": ["r1"], "title": "t", "body": "b", "channels": ["in_app"]},
    separators=(",", ":"),
)
AIM_RATIO = 0.35
AIM_PG_RPS = 1500.0
AIM_PG_P99_MS = 50.0


async def _load(
    server: Server, bearer: str | None, duration: int, profiler: Profiler, label: str
) -> WrkResult:
    script = post_script(server.cwd / "ingest.lua", BODY, bearer)
    url = f"{server.base_url}/v1/notifications"
    await wrk(url, script, duration=2 if duration > 5 else 1)  # warm-up, discarded
    task = await profiler.record(label, server.pid, duration)
    result = await wrk(url, script, duration=duration)
    await Profiler.finish(task)
    return result


async def run(ws: Workspace, opts: Options) -> ScenarioResult:
    duration = 5 if opts.quick else 20
    profiler = Profiler(opts.profile_dir)
    result = ScenarioResult(
        NAME,
        TITLE,
        command="python -m bench --scenario ingest" + (" --quick" if opts.quick else ""),
    )
    for kind in opts.databases:
        db = create_database(ws, kind, "ingest-tidings")
        bearer = token(ws, db, "ats", service=True)
        async with running(tidings_server(ws, db)) as server:
            ours = await _load(server, bearer, duration, profiler, f"ingest-{kind}")
        bare_db = create_database(ws, kind, "ingest-bare")
        async with running(bare_server(bare_db)) as server:
            bare = await _load(server, None, duration, Profiler(None), f"ingest-bare-{kind}")
        inserts_db = create_database(ws, kind, "ingest-bare-inserts")
        async with running(bare_server(inserts_db, BENCH_BARE_STATEMENTS="inserts")) as server:
            inserts = await _load(server, None, duration, Profiler(None), "ingest-inserts")
        for label, res in (("Tidings", ours), ("bare app", bare), ("inserts only", inserts)):
            if res.non_2xx or res.socket_errors:
                result.notes.append(
                    f"{kind}, {label}: {res.non_2xx} non-2xx responses and "
                    f"{res.socket_errors} socket errors out of {res.requests} requests."
                )
        pg = kind == "postgresql"
        cmd = f"{ours.command} (Tidings) / same against bench.bare_app (baseline)"
        result.figures += [
            Figure(
                kind,
                "throughput",
                "req/s",
                "higher",
                ours.requests_per_second,
                bare.requests_per_second,
                aim_ratio=AIM_RATIO,
                aim_value=AIM_PG_RPS if pg else None,
                command=cmd,
            ),
            Figure(kind, "latency p50", "ms", "lower", ours.p50_ms, bare.p50_ms, command=cmd),
            Figure(
                kind,
                "latency p99",
                "ms",
                "lower",
                ours.p99_ms,
                bare.p99_ms,
                aim_value=AIM_PG_P99_MS if pg else None,
                command=cmd,
            ),
            Figure(
                kind,
                "throughput, against the three inserts only",
                "req/s",
                "higher",
                ours.requests_per_second,
                inserts.requests_per_second,
                command=f"{ours.command} (Tidings) / same against bench.bare_app with "
                "BENCH_BARE_STATEMENTS=inserts (baseline)",
            ),
        ]
        result.notes.append(
            f"{kind}: {ours.requests:,} Tidings requests, {bare.requests:,} bare requests "
            f"(every statement) and {inserts.requests:,} (three inserts) in {duration}s "
            "each, after a discarded warm-up run."
        )
    result.notes.append(
        "Body: `" + BODY + "`; Tidings is called with a service token (`tidings token "
        "--tenant bench --sub ats --role service`), the bare app without one."
    )
    result.notes.append(
        "The baseline runs the statements Tidings runs for this send: the send row, the "
        "audience read, the notification and delivery rows, the live counter upsert and "
        "the two live events. The last row compares with the three inserts alone (the "
        "baseline of the figures before 2026-12-07)."
    )
    return result
