"""The Markdown table that bench/run.py prints and bench/README.md quotes: each figure beside
the baseline measured in the same run, their ratio, and the target."""

from __future__ import annotations


def markdown(result: dict) -> str:
    lines = [
        "| figure | measured | baseline (same run) | ratio | target |",
        "|---|---|---|---|---|",
    ]
    if "trigger" in result:
        lines += _trigger_lines(result["trigger"])
    if "status" in result:
        s = result["status"]
        look, pk = s["check_grading_status"], s["baseline_pk_select"]
        lines.append(
            f"| status at {s['rows']:,} rows p50 / p99 | {look['p50_ms']} / {look['p99_ms']} ms "
            f"| PK SELECT {pk['p50_ms']} / {pk['p99_ms']} ms "
            f"| {look['p99_ms'] / pk['p99_ms']:.1f}x | p99 ≤ 5 ms |"
        )
    for row in result.get("throughput", []):
        target = "≥ 0.8" if (row["latency_ms"], row["concurrency"]) == (1000, 50) else "curve"
        flow, plain = row["prefect"], row["baseline"]
        lines.append(
            f"| throughput {row['jobs']} jobs, {row['latency_ms']} ms model, "
            f"c={row['concurrency']} | {flow['jobs_per_s']} jobs/s "
            f"({flow['cpu_ms_per_job']} CPU ms/job) | asyncio {plain['jobs_per_s']} jobs/s "
            f"({plain['cpu_ms_per_job']} CPU ms/job) | {row['ratio']} | {target} |"
        )
    if "result_latency" in result:
        notify, poll = (
            result["result_latency"]["listen_notify"],
            result["result_latency"]["polling_2s"],
        )
        lines.append(
            f"| result latency, LISTEN/NOTIFY p50 / p99 | {notify['p50_ms']} / "
            f"{notify['p99_ms']} ms | polling every 2 s: {poll['p50_ms']} / {poll['p99_ms']} ms "
            f"| {notify['p99_ms'] / poll['p99_ms']:.3f} | ≤ 100 ms |"
        )
    rep = result.get("report", {})
    if "report_seconds" in rep:
        lines.append(
            f"| report over {rep['jobs']:,} jobs | {rep['report_seconds']} s, "
            f"{rep['report_peak_rss_mb']} MB peak "
            f"| percentile_cont query {rep['sql_baseline_seconds']} s "
            f"| {rep['ratio_report_to_sql']}x | ≤ 10 s, ≤ 1 GB |"
        )
    if "batch" in result:
        b = result["batch"]
        for variant, name in (("batch", "grade-pending-batch"), ("prefect", "grade-pending")):
            v, base = b[variant], b["baseline"]
            lines.append(
                f"| {name}, {b['jobs']:,} jobs: CPU ms/job, task runs per 1,000, $ per 1,000 "
                f"({b['priced_as']}) | {v['cpu_ms_per_job']}, {v['task_runs_per_1000']}, "
                f"{v['usd_per_1000_essays']} ({v['seconds']} s) "
                f"| asyncio {base['cpu_ms_per_job']}, 0, {base['usd_per_1000_essays']} "
                f"({base['seconds']} s) "
                f"| {v['cpu_ms_per_job'] / base['cpu_ms_per_job']:.2f}x CPU "
                f"| {'≤ 2x CPU' if variant == 'batch' else 'baseline'} |"
            )
    return "\n".join(lines) + "\n"


def _trigger_lines(t: dict) -> list[str]:
    trig, base = t["start_grading_job"], t["baseline_insert"]
    lines = [
        f"| trigger p50 / p99 | {trig['p50_ms']} / {trig['p99_ms']} ms "
        f"| INSERT … RETURNING {base['p50_ms']} / {base['p99_ms']} ms "
        f"| {trig['p99_ms'] / base['p99_ms']:.1f}x (p99) | p99 ≤ 5 ms |",
    ]
    h = t.get("start_grading_job_with_handoff")
    if h:
        lines.append(
            f"| trigger with hand-off p50 / p99 | {h['p50_ms']} / {h['p99_ms']} ms "
            f"({h['flow_runs_created']} flow runs created) | without hand-off "
            f"{t['start_grading_job']['p99_ms']} ms p99 | "
            f"{h['p99_ms'] / t['start_grading_job']['p99_ms']:.1f}x | p99 ≤ 20 ms |"
        )
    return lines
