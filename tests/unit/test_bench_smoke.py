"""The benchmark package imports, lists its scenarios and writes its markdown (no servers)."""

from __future__ import annotations

import importlib
import pkgutil
from datetime import UTC, datetime

import bench
import pytest
from bench import SCENARIOS
from bench.__main__ import parse_args
from bench.harness import parse_wrk
from bench.profiling import top_frames
from bench.report import (
    Figure,
    Machine,
    ScenarioResult,
    percentile,
    render_section,
    update_document,
)

MACHINE = Machine(cores=2, cpu="Test CPU", memory_gib=24, python="3.11.7", sqlite="3.40.1")
ORDER = list(SCENARIOS)


def _result(name: str = "ingest") -> ScenarioResult:
    return ScenarioResult(
        name,
        "a title",
        command=f"python -m bench --scenario {name}",
        figures=[
            Figure("sqlite", "throughput", "req/s", "higher", 700, 1400, aim_ratio=0.35),
            Figure("postgresql", "latency p99", "ms", "lower", 60, 30, aim_value=50),
        ],
        notes=["a note | with a pipe"],
        measured_at=datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
    )


def test_registry_lists_the_scenarios_in_order() -> None:
    assert ORDER == [
        "ingest",
        "fanout",
        "inbox",
        "email",
        "push",
        "sms",
        "live_latency",
        "live_fanout",
        "celery_drain",
    ]
    for name, scenario in SCENARIOS.items():
        assert scenario.name == name
        assert scenario.title
        assert callable(scenario.run)


def test_arguments() -> None:
    args = parse_args(["--scenario", "inbox", "--quick", "--database", "sqlite"])
    assert (args.scenario, args.quick, args.database) == (["inbox"], True, "sqlite")
    assert parse_args([]).database == "both"
    with pytest.raises(SystemExit):
        parse_args(["--scenario", "nope"])


def test_ratio_is_oriented_so_that_higher_is_better() -> None:
    rate, latency = _result().figures
    assert rate.ratio == pytest.approx(0.5)
    assert rate.met is True
    assert latency.ratio == pytest.approx(0.5)
    assert latency.met is False  # 60 ms is not under 50 ms
    assert Figure("x", "m", "s", "lower", 1.0).met is None


def test_section_has_machine_command_table_and_shared_cores_sentence() -> None:
    text = render_section(_result(), MACHINE)
    assert text.startswith("## ingest: a title")
    assert "2026-01-02 03:04 UTC" in text
    assert "`python -m bench --scenario ingest`" in text
    assert "2 cores (`nproc`), CPU `Test CPU`" in text
    assert "share these 2 cores" in text
    assert "| sqlite | throughput | 700 req/s | 1,400 req/s | 0.50x | >= 0.35x | yes |" in text
    assert "| postgresql | latency p99 | 60.0 ms | 30.0 ms | 0.50x | < 50.0 ms | **no** |" in text


def test_document_keeps_hand_written_text_and_replaces_only_run_blocks() -> None:
    first = update_document(None, {"ingest": render_section(_result(), MACHINE)}, ORDER)
    assert first.startswith("# Benchmarks")
    for name in ORDER:
        assert f"<!-- bench:{name}:begin -->" in first
    assert "## fanout\n\nNot measured yet." in first
    edited = first.replace("Not written yet.", "py-spy says: hand-written findings.")
    fanout = render_section(_result("fanout"), MACHINE)
    second = update_document(edited, {"fanout": fanout}, ORDER)
    assert "py-spy says: hand-written findings." in second
    assert "## ingest: a title" in second  # untouched
    assert "## fanout: a title" in second
    assert "Not measured yet" in second  # inbox and email still placeholders
    assert update_document(second, {"fanout": fanout}, ORDER) == second


def test_missing_block_is_inserted_after_the_one_before_it() -> None:
    text = "# B\n\n<!-- bench:ingest:begin -->\nI\n<!-- bench:ingest:end -->\n\n## Findings\n"
    out = update_document(text, {"inbox": "X"}, ORDER)
    assert out.index("bench:ingest:end") < out.index("bench:inbox:begin") < out.index("## Find")


def test_wrk_output_is_parsed() -> None:
    output = """Running 5s test @ http://127.0.0.1:1234/v1/notifications
  1 threads and 32 connections
  Latency Distribution
     50%  812.00us
     75%    1.20ms
     90%    2.50ms
     99%   12.34ms
  8123 requests in 5.00s, 1.2MB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 4
Requests/sec:   1624.50
"""
    result = parse_wrk(output, "wrk ...")
    assert result.requests_per_second == pytest.approx(1624.5)
    assert result.p50_ms == pytest.approx(0.812)
    assert result.p99_ms == pytest.approx(12.34)
    assert (result.requests, result.non_2xx, result.socket_errors) == (8123, 4, 3)


def test_percentile_and_profile_summary() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.0
    assert percentile(list(map(float, range(1, 101))), 99) == 99.0
    collapsed = (
        "thread (1): MainThread;run (uvicorn/main.py:1);execute (site-packages/sa/x.py:5) 3\n"
        "thread (1): MainThread;run (uvicorn/main.py:1) 1\n"
        "thread (2): Thread-1;sleep (threading.py:9) 4\n"
    )
    summary = top_frames(collapsed, seconds=1, rate=8)
    assert "== MainThread: 4 samples (on CPU 50% of the time)" in summary
    assert "75.0  execute (sa/x.py)" in summary
    assert "== other threads: 4 samples" in summary


def test_user_tokens_are_minted_with_the_runs_secret() -> None:
    import jwt
    from bench.harness import Workspace
    from bench.live import user_token

    ws = Workspace()
    try:
        claims = jwt.decode(user_token(ws, "u00001"), ws.jwt_secret, algorithms=["HS256"])
    finally:
        ws.close()
    assert (claims["sub"], claims["tenant"], claims["roles"]) == ("u00001", "bench", [])


def test_push_baseline_signs_vapid_once_per_audience() -> None:
    import jwt
    from bench.push import SUBJECT, VapidSigner

    from tidings.channels.webpush import (
        generate_vapid_private_key,
        load_vapid_private_key,
        vapid_public_key,
    )

    private = generate_vapid_private_key()
    key = load_vapid_private_key(private)
    signer = VapidSigner(key, vapid_public_key(private))
    header = signer.header("http://127.0.0.1:1234/push/abc")
    assert signer.header("http://127.0.0.1:1234/push/def") == header  # cached per audience
    assert signer.header("http://127.0.0.1:5678/push/abc") != header
    token, public = header.removeprefix("vapid t=").split(", k=")
    assert public == vapid_public_key(private)
    claims = jwt.decode(
        token, key.public_key(), algorithms=["ES256"], audience="http://127.0.0.1:1234"
    )
    assert claims["sub"] == SUBJECT


def test_stand_in_cpu_time_is_read_from_proc() -> None:
    import os

    from bench.standins import StandInProcess, process_cpu_seconds

    assert process_cpu_seconds(os.getpid()) > 0
    assert process_cpu_seconds(2**22 + 12345) == 0.0  # no such process
    with pytest.raises(RuntimeError, match="unknown stand-in"):
        StandInProcess("nope")


@pytest.mark.parametrize(
    "module", sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name != "__main__")
)
def test_every_bench_module_imports(module: str) -> None:
    """Servers and stand-ins are started by name in other processes: an import that
    breaks shows here rather than in the middle of a run."""
    importlib.import_module(f"bench.{module}")
