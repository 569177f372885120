"""The pure parts of bench/pipeline.py: percentiles, the stepping decision, /proc parsing.

The benchmark itself runs for minutes against real processes; these take milliseconds.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest


def _load() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "bench" / "pipeline.py"
    spec = importlib.util.spec_from_file_location("bench_pipeline", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


pipeline = _load()


def step(**changes: float) -> object:
    fields: dict[str, float] = {
        "rate": 1000,
        "expected": 400,
        "on_time": 400,
        "arrived": 400,
        "early_p50_s": 0.05,
        "late_p50_s": 0.06,
        "late_p95_s": 0.09,
    }
    fields.update(changes)
    fields.setdefault("offered", fields["rate"] * 0.998)
    return pipeline.StepResult(**fields)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        pytest.param(list(range(1, 101)), 50, 50, id="p50-of-1-to-100"),
        pytest.param(list(range(1, 101)), 99, 99, id="p99-of-1-to-100"),
        pytest.param(list(range(1, 101)), 100, 100, id="p100-is-the-max"),
        pytest.param([3.0, 1.0, 2.0], 50, 2.0, id="unsorted-input"),
        pytest.param([7.0], 99, 7.0, id="one-value"),
        pytest.param([1.0, 2.0], 0, 1.0, id="p0-is-the-min"),
    ],
)
def test_percentile_is_the_nearest_rank(values: list[float], q: float, expected: float) -> None:
    assert pipeline.percentile(values, q) == expected


def test_percentile_of_nothing_is_nan() -> None:
    assert math.isnan(pipeline.percentile([], 50))


def test_a_step_with_everything_on_time_and_a_flat_lag_is_kept_up() -> None:
    ok, why = pipeline.kept_up(step())
    assert ok
    assert why.startswith("kept up")


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        pytest.param({"offered": 900}, "the simulator offered only", id="rate-not-offered"),
        pytest.param({"arrived": 399, "on_time": 399}, "lost 1 of 400", id="a-webhook-lost"),
        pytest.param({"on_time": 390}, "10 webhooks later than the grace", id="late"),
        pytest.param({"early_p50_s": 0.05, "late_p50_s": 0.31}, "lag grew", id="lag-grew"),
        pytest.param(
            {"early_p50_s": 0.5, "late_p50_s": 0.76, "late_p95_s": 0.9},
            "lag grew",
            id="lag-half-again",
        ),
        pytest.param(
            {"early_p50_s": 2.0, "late_p50_s": 2.0, "late_p95_s": 2.2},
            "last quarter's p95 2,200 ms > 1,000 ms",
            id="a-steady-2-s-lag",
        ),
        pytest.param({"late_p95_s": 1.01}, "p95 1,010 ms", id="p95-just-over-the-bound"),
    ],
)
def test_a_step_is_not_kept_up(changes: dict[str, float], why: str) -> None:
    ok, reason = pipeline.kept_up(step(**changes))
    assert not ok
    assert why in reason


def test_a_lag_within_noise_is_kept_up() -> None:
    assert pipeline.kept_up(step(early_p50_s=0.5, late_p50_s=0.74, late_p95_s=0.9))[0]


def test_a_last_quarter_p95_at_the_bound_is_kept_up_and_the_bound_is_stated() -> None:
    ok, why = pipeline.kept_up(step(late_p95_s=1.0))
    assert ok
    assert "p95 1,000 ms <= 1,000 ms" in why


def test_a_steady_lag_under_a_looser_bound_is_kept_up() -> None:
    lagging = step(early_p50_s=2.0, late_p50_s=2.0, late_p95_s=2.2)
    assert pipeline.kept_up(lagging, late_p95_bound_s=3.0)[0]
    assert pipeline.sustained_rate([lagging]) == 0


def test_the_generated_workload_names_what_the_simulator_makes() -> None:
    from herald_dev.fakekube import generated_uid

    items, templates = pipeline.generated_workload(100, seed="s1")
    assert [i.uid for i in items[:3]] == [generated_uid("s1", n) for n in range(3)]
    assert len(templates) == 100
    assert all("uid" not in t["metadata"] and "name" not in t["metadata"] for t in templates)
    argo = [n for n, i in enumerate(items) if i.webhook_id]
    assert argo == [n for n in range(100) if pipeline.mix_event(n, tag="")[1]]
    assert len({i.webhook_id for i in items if i.webhook_id}) == 10


def test_the_sustained_rate_is_the_last_step_kept_up_before_the_first_that_was_not() -> None:
    steps = [step(rate=250), step(rate=500), step(rate=1000, arrived=1), step(rate=1500)]
    assert pipeline.sustained_rate(steps) == 500


def test_no_step_kept_up_sustains_nothing() -> None:
    assert pipeline.sustained_rate([step(rate=250, on_time=0)]) == 0


def test_cpu_seconds_add_user_and_system_time_past_a_command_with_spaces() -> None:
    ticks = pipeline.os.sysconf("SC_CLK_TCK")
    # fields 4-13 (ppid to cmajflt), then utime and stime (14, 15)
    rest = " ".join(["0"] * 10 + [str(3 * ticks), str(ticks)] + ["0"] * 30)
    stat = f"4242 (python -m x) S {rest}"
    assert pipeline.cpu_seconds(stat) == pytest.approx(4.0)


def test_arrivals_keep_the_first_of_each_webhook_per_subscription(tmp_path: Path) -> None:
    out = tmp_path / "arrivals.txt"
    out.write_text("/hooks/a id-1 10.5\n/hooks/b id-1 10.6\n/hooks/a id-1 12.0\n/hooks/a id-2 1")
    arrivals = pipeline.Arrivals(out)
    arrivals.read()
    assert arrivals.first == {("/hooks/a", "id-1"): 10.5, ("/hooks/b", "id-1"): 10.6}
    assert arrivals.duplicates == 1
    with out.open("a") as f:
        f.write("3.0\n")  # the partial line completed
    arrivals.read()
    assert arrivals.first[("/hooks/a", "id-2")] == 13.0


def test_the_mix_has_one_argo_event_in_ten_each_naming_its_domain_event() -> None:
    catalogues = [pipeline.mix_event(i, tag="t")[1] for i in range(100)]
    assert catalogues.count("rollout.step_advanced") == 5
    assert catalogues.count("application.sync_changed") == 5
    assert sum(c is None for c in catalogues) == 90


def test_a_step_kept_up_when_tried_again_lets_the_stepping_go_on() -> None:
    steps = [step(rate=500), step(rate=1000, on_time=0), step(rate=1000), step(rate=1500)]
    assert pipeline.sustained_rate(steps) == 1500


def test_a_step_failed_twice_ends_the_stepping() -> None:
    steps = [step(rate=500), step(rate=1000, on_time=0), step(rate=1000, on_time=0)]
    assert pipeline.sustained_rate(steps) == 500


def stat_line(
    pid: int, ppid: int, *, utime: int, stime: int, cutime: int = 0, cstime: int = 0
) -> str:
    # fields 3-13 (state to cmajflt), then utime, stime, cutime, cstime (14-17), then the rest
    rest = " ".join([str(ppid)] + ["0"] * 9 + [str(v) for v in (utime, stime, cutime, cstime)])
    return f"{pid} (postgres: herald bench 127.0.0.1(5) idle) S {rest} 20 0 1 0 " + "0 " * 30


def test_a_process_trees_cpu_adds_its_live_descendants_and_the_children_it_reaped() -> None:
    stats = {
        1: stat_line(1, 0, utime=999, stime=999),  # init: not in the tree
        100: stat_line(100, 1, utime=10, stime=5, cutime=300, cstime=100),  # postmaster
        101: stat_line(101, 100, utime=40, stime=10),  # a backend
        102: stat_line(102, 100, utime=20, stime=0, cutime=7, cstime=3),  # with a reaped child
        103: stat_line(103, 102, utime=5, stime=5),  # a grandchild
        200: stat_line(200, 1, utime=50, stime=50),  # another engineer's process
    }
    # 15 + 400 + 50 + 20 + 10 + 10 ticks
    assert pipeline.tree_cpu_seconds(stats, 100, ticks=100) == pytest.approx(5.05)
    assert pipeline.tree_cpu_seconds(stats, 103, ticks=100) == pytest.approx(0.10)


def test_a_process_tree_that_is_gone_is_not_measured() -> None:
    assert (
        pipeline.tree_cpu_seconds({1: stat_line(1, 0, utime=1, stime=1)}, 4242, ticks=100) is None
    )


TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:A4A9 00000000:0000 0A 00000000:00000000 00:00000000 00000000   101        0 3817144 1 0000 100 0 0 10 0
   1: 0100007F:A4A9 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000   101        0 3900001 1 0000 20 4 30 10 -1
   2: 0100007F:C131 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1065 1 0000 100 0 0 10 0
"""
TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:A4A9 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000   101        0 3817150 1 0000 100 0 0 10 0
"""


def test_the_sockets_listening_on_a_port_are_read_from_proc_net_tcp() -> None:
    assert pipeline.listening_inodes(TCP, 0xA4A9) == {3817144}  # not the established one
    assert pipeline.listening_inodes(TCP6, 0xA4A9) == {3817150}
    assert pipeline.listening_inodes(TCP, 5432) == set()


def test_the_process_serving_a_port_is_the_one_holding_its_socket() -> None:
    stats = {
        100: stat_line(100, 1, utime=1, stime=1),
        101: stat_line(101, 100, utime=1, stime=1),
        300: stat_line(300, 1, utime=1, stime=1),
    }
    links = [
        (100, "socket:[3817144]"),
        (100, "pipe:[77]"),
        (101, "socket:[3817144]"),  # a child that inherited the listening socket
        (300, "socket:[3900001]"),
    ]
    assert pipeline.serving_pid(links, {3817144}, stats) == 100
    assert pipeline.serving_pid(links, {555}, stats) is None


def test_two_unrelated_processes_on_one_port_are_not_guessed_between() -> None:
    stats = {pid: stat_line(pid, 1, utime=1, stime=1) for pid in (100, 200)}
    links = [(100, "socket:[1]"), (200, "socket:[2]")]
    assert pipeline.serving_pid(links, {1, 2}, stats) is None


def test_the_machines_busy_cpu_leaves_out_idle_and_iowait() -> None:
    proc_stat = "cpu  300 10 100 500 90 0 0 0 40 0\ncpu0 150 5 50 250 45 0 0 0 20 0\n"
    assert pipeline.machine_cpu_seconds(proc_stat, ticks=100) == pytest.approx((4.1, 10.0))


def test_the_relays_cpu_is_counted_per_raw_event_of_the_mix() -> None:
    # 2 s on 10,000 deliveries; a raw Event makes 0.2 of a delivery: 50,000 raw Events' worth
    assert math.isclose(pipeline.DELIVERIES_PER_RAW, 0.2)
    per_raw = pipeline.ms_per_1000_raw(2.0, 10_000, units_per_raw=pipeline.DELIVERIES_PER_RAW)
    assert per_raw == pytest.approx(40.0)
    assert pipeline.ms_per_1000_raw(2.0, 10_000) == pytest.approx(200.0)


def test_the_ceiling_is_the_cores_divided_by_the_cpu_per_event() -> None:
    assert pipeline.ceiling_rate(800.0, 2) == pytest.approx(2500.0)  # 0.8 ms an Event
    assert pipeline.ceiling_rate(2000.0, 2) == pytest.approx(1000.0)


def test_the_bare_client_budget_replaces_the_services_by_their_bare_loops() -> None:
    services = {"collector": 300.0, "processor": 850.0, "dispatcher": 670.0}
    bare = {"collector": 200.0, "processor": 150.0, "dispatcher": 50.0}
    assert pipeline.bare_budget(2500.0, services, bare) == pytest.approx(1080.0)
    with pytest.raises(ValueError, match="bare loops"):
        pipeline.bare_budget(2500.0, services, {"collector": 1.0})


def test_the_cost_above_idle_leaves_out_what_the_process_spends_with_no_events() -> None:
    # idle: 1 CPU s in 10 s (0.1 core); the window: 5 CPU s in 20 s for 10,000 Events, of
    # which 2 s is the idle load over 20 s: 3 s for 10,000 Events
    assert pipeline.above_idle_ms(5.0, 20.0, 1.0, 10.0, 10_000) == pytest.approx(300.0)


def test_the_ceiling_above_idle_pays_the_idle_load_once() -> None:
    # half a core idle, 0.6 ms an Event above it: 1.5 cores / 0.6 ms
    assert pipeline.ceiling_above_idle(0.5, 600.0, 2) == pytest.approx(2500.0)
    assert pipeline.ceiling_above_idle(2.5, 600.0, 2) == 0
    assert math.isnan(pipeline.ceiling_above_idle(0.5, -5.0, 2))


def test_cpu_spent_is_counted_only_for_processes_measured_at_both_readings() -> None:
    before = {"collector": (1.0, 50.0), "kafka": None, "postgres": (3.0, 30.0)}
    after = {"collector": (2.5, 60.0), "kafka": (9.0, 400.0), "postgres": None}
    assert pipeline.cpu_deltas(before, after) == {"collector": pytest.approx(1.5)}
