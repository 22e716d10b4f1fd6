"""Tables and a latency plot from one scripts/bench.sh run.

    python3 tests/bench/report.py build/bench [--smoke]

Reads relays.json, and when present callgrind.json, memory.json, policy.json
and e2e.json from the directory; writes report.md (markdown tables, ratios
first) and latency.png (p50 / p99 / p99.9 per contender and connection
count) beside them, and prints the tables. Exit status 1 when any figure is
not sane: a contender that carried no traffic, saw error replies or failed
connections, gave missing or non-finite percentiles, an instruction count or
a resident size that is missing or not positive, idle connections that did
not all open. There are no timing thresholds.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import statistics
import sys

RELAYS = ["mongoguard", "haproxy", "mongobetween"]


def med(values):
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return statistics.median(values) if values else None


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt(v, spec):
    return "–" if v is None else format(v, spec)


def relay_summary(relays: dict, problems: list[str]) -> list[dict]:
    runs = relays["runs"]
    clk = relays["clock_ticks_per_s"]
    present = [c for c in relays["contenders"] if any(r["contender"] == c for r in runs)]
    summary = []
    for n in sorted({r["connections"] for r in runs}):
        for who in present:
            rs = [r for r in runs if r["connections"] == n and r["contender"] == who]
            lg = [r["loadgen"] for r in rs]
            for r in rs:
                g, where = r["loadgen"], f"{who} @ {r['connections']} conn round {r['round']}"
                lat = g.get("latency_us", {})
                if not g.get("throughput_msgs_per_s"):
                    problems.append(f"{where}: no throughput")
                if any(not isinstance(lat.get(k), (int, float)) or not math.isfinite(lat[k])
                       for k in ("p50", "p99", "p999")):
                    problems.append(f"{where}: percentiles missing")
                if g.get("errors", 1) or g.get("failed_connections", 1):
                    problems.append(f"{where}: {g.get('errors')} error replies, "
                                    f"{g.get('failed_connections')} failed connections")
                if who != "direct" and r["relay_cpu_ticks"] <= 0:
                    problems.append(f"{where}: the relay used no CPU time")
            messages = sum(g.get("messages", 0) for g in lg)
            ticks = sum(r["relay_cpu_ticks"] for r in rs)
            summary.append({
                "connections": n, "contender": who, "rounds": len(rs), "messages": messages,
                "throughput": med([g.get("throughput_msgs_per_s") for g in lg]),
                "p50": med([g.get("latency_us", {}).get("p50") for g in lg]),
                "p99": med([g.get("latency_us", {}).get("p99") for g in lg]),
                "p999": med([g.get("latency_us", {}).get("p999") for g in lg]),
                "cpu_us_per_msg": (ticks * 1e6 / clk / messages)
                if who != "direct" and messages else None,
            })

    def row(n, who):
        return next((s for s in summary if s["connections"] == n and s["contender"] == who), {})

    for s in summary:
        d, h, m = (row(s["connections"], c) for c in ("direct", "haproxy", "mongobetween"))
        s["vs_direct"] = ratio(s["throughput"], d.get("throughput"))
        s["vs_haproxy"] = ratio(s["throughput"], h.get("throughput"))
        s["vs_mongobetween"] = ratio(s["throughput"], m.get("throughput"))
        s["added_p50"] = (s["p50"] - d["p50"]) if s["p50"] is not None and d.get("p50") else None
        s["cpu_vs_haproxy"] = ratio(s["cpu_us_per_msg"], h.get("cpu_us_per_msg"))
    return summary


def relay_table(summary: list[dict]) -> list[str]:
    lines = ["| conns | contender | thr / direct | thr / haproxy | thr / mongobetween "
             "| added p50 µs | CPU µs/msg (/ haproxy) | msg/s | p50 µs | p99 µs | p99.9 µs |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in summary:
        cpu = fmt(s["cpu_us_per_msg"], ".2f")
        if s["cpu_vs_haproxy"] is not None and s["contender"] != "haproxy":
            cpu += f" ({s['cpu_vs_haproxy']:.2f}×)"
        lines.append(
            f"| {s['connections']} | {s['contender']} | {fmt(s['vs_direct'], '.2f')} "
            f"| {fmt(s['vs_haproxy'], '.2f')} | {fmt(s['vs_mongobetween'], '.2f')} "
            f"| {fmt(s['added_p50'], '+.1f')} | {cpu} | {fmt(s['throughput'], ',.0f')} "
            f"| {fmt(s['p50'], '.1f')} | {fmt(s['p99'], '.1f')} | {fmt(s['p999'], '.1f')} |")
    return lines


def callgrind_table(cg: dict, problems: list[str]) -> list[str]:
    lines = ["| relay | instructions / forwarded message | messages counted | instructions |",
             "|---|---:|---:|---:|"]
    for r in cg.get("relays", []):
        msgs = r.get("loadgen", {}).get("messages") or 0
        ir = r.get("instructions")
        if not ir or ir <= 0 or not msgs:
            problems.append(f"callgrind {r['relay']}: {ir} instructions over {msgs} messages")
        per = ir / msgs if ir and msgs else None
        r["per_message"] = per
        lines.append(f"| {r['relay']} | {fmt(per, ',.0f')} | {msgs:,} | {fmt(ir, ',')} |")
    per = {r["relay"]: r.get("per_message") for r in cg.get("relays", [])}
    if per.get("mongoguard") and per.get("mongoguard-nojournal"):
        ratio = per["mongoguard"] / per["mongoguard-nojournal"]
        lines += ["", f"With the journal on, a forwarded message costs {ratio:.4f}x the "
                      f"instructions it costs without one ({(ratio - 1) * 100:+.2f}%)."]
    lines += ["", "| policy case (100 rules) | instructions / decision | iterations |",
              "|---|---:|---:|"]
    for d in cg.get("decisions", []):
        ir = d.get("instructions")
        if not ir or ir <= 0:
            problems.append(f"callgrind policy {d['case']}: no instruction count")
        per = ir / d["iterations"] if ir else None
        d["per_decision"] = per
        lines.append(f"| {d['case']} | {fmt(per, ',.0f')} | {d['iterations']:,} |")
    return lines


def memory_table(mem: dict, problems: list[str]) -> list[str]:
    lines = ["| relay | KiB per idle connection (growth) | KiB per connection (whole RSS) "
             "| idle client connections | upstream connections | processes "
             "| RSS before KiB | RSS idle KiB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in mem.get("relays", []):
        n = r["connections"]
        if n <= 0 or r["failed_connections"] or n < mem["requested_connections"] * 0.99:
            problems.append(f"memory {r['relay']}: {n} of {mem['requested_connections']} idle "
                            f"connections opened, {r['failed_connections']} failed")
        if r["rss_kib_idle"] <= 0 or r["rss_kib_before"] <= 0:
            problems.append(f"memory {r['relay']}: no resident size")
        growth = (r["rss_kib_idle"] - r["rss_kib_before"]) / n if n else None
        whole = r["rss_kib_idle"] / n if n else None
        r["kib_per_connection"] = growth
        lines.append(f"| {r['relay']} | {fmt(growth, '.1f')} | {fmt(whole, '.1f')} | {n:,} "
                     f"| {r['upstream_connections']:,} | {r['processes']} "
                     f"| {r['rss_kib_before']:,} | {r['rss_kib_idle']:,} |")
    return lines


def policy_table(pol: dict, problems: list[str]) -> list[str]:
    lines = ["| case (100 rules) | CPU ns median | CPU ns stddev | wall ns median |",
             "|---|---:|---:|---:|"]
    by = {(b.get("run_name", "").split("/")[0], b.get("aggregate_name")): b
          for b in pol.get("benchmarks", [])}
    for name in ("BM_ClassifyAndDecideDelete", "BM_DecideOnly", "BM_HotPathDecodeOnly"):
        m, sd = by.get((name, "median")), by.get((name, "stddev"))
        if not m or not sd or m["cpu_time"] <= 0:
            problems.append(f"policy_bench: no median for {name}")
            continue
        lines.append(f"| {name[3:]} | {m['cpu_time']:.0f} | {sd['cpu_time']:.0f} "
                     f"| {m['real_time']:.0f} |")
    return lines


def e2e_table(e2e: dict, problems: list[str]) -> list[str]:
    problems += [f"e2e: {p}" for p in e2e.get("problems", [])]
    lines = [f"{e2e['clients']} pymongo clients, {e2e['rounds']} round(s) of "
             f"{e2e['duration_s']} s each, mix {e2e['mix']}:", "",
             "| contender | ops / direct | added p50 µs | ops/s | p50 µs | p99 µs | p99.9 µs |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for s in e2e["summary"]:
        lines.append(f"| {s['contender']} | {fmt(s.get('ops_vs_direct', 1.0 if s['contender'] == 'direct' else None), '.2f')} "
                     f"| {fmt(s.get('added_p50_us'), '+.1f')} | {fmt(s['ops_per_s'], ',.0f')} "
                     f"| {fmt(s['p50_us'], '.0f')} | {fmt(s['p99_us'], '.0f')} "
                     f"| {fmt(s['p999_us'], '.0f')} |")
    return lines


def plot(summary: list[dict], path: pathlib.Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report.py: matplotlib missing (Debian python3-matplotlib): no plot",
              file=sys.stderr)
        return False
    counts = sorted({s["connections"] for s in summary})
    fig, axes = plt.subplots(1, len(counts), figsize=(5.5 * len(counts), 4.2), squeeze=False)
    for ax, n in zip(axes[0], counts):
        rows = [s for s in summary if s["connections"] == n]
        names = [s["contender"] for s in rows]
        width = 0.26
        for i, (key, label) in enumerate((("p50", "p50"), ("p99", "p99"), ("p999", "p99.9"))):
            xs = [k + (i - 1) * width for k in range(len(rows))]
            ax.bar(xs, [s[key] or 0 for s in rows], width, label=label)
        ax.set_xticks(range(len(rows)), names)
        ax.set_yscale("log")
        ax.set_ylabel("latency µs (log)")
        ax.set_title(f"{n} connection{'s' if n > 1 else ''}")
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend()
    fig.suptitle("Request latency percentiles per contender (closed loop, loadgen)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    d = pathlib.Path(args.dir)
    problems: list[str] = []
    relays = json.loads((d / "relays.json").read_text())
    m = relays["machine"]
    out = [f"Machine: {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}; load average "
           f"{m['load_average_start']} at the start, {m['load_average_end']} after the relay "
           f"rounds. {m['mongoguard']}, haproxy {m['haproxy']}, "
           + (f"mongobetween {m['mongobetween']} ({m['go']})" if m["mongobetween"]
              else m["mongobetween_note"]) + f", valgrind {m['valgrind']}. Run {m['date']}.", ""]
    summary = relay_summary(relays, problems)
    g = relays["runs"][0]["loadgen"] if relays["runs"] else {}
    out += [f"### Relays ({g.get('message_bytes')} B requests, mix {g.get('mix')})", ""]
    out += relay_table(summary)
    sections = [("callgrind.json", "### Instructions (callgrind)", callgrind_table),
                ("memory.json", "### Idle connections: resident size", memory_table),
                ("policy.json", "### Policy decision (Google Benchmark)", policy_table),
                ("e2e.json", "### End to end: pymongo against FerretDB", e2e_table)]
    for name, title, render in sections:
        if (d / name).exists():
            data = json.loads((d / name).read_text())
            out += ["", title, ""] + render(data, problems)
            (d / name).write_text(json.dumps(data, indent=2))
    if plot(summary, d / "latency.png"):
        out += ["", "![latency percentiles](latency.png)"]
    elif not args.smoke:
        problems.append("no latency plot")
    text = "\n".join(out) + "\n"
    (d / "report.md").write_text(text)
    print(text)
    for p in problems:
        print("problem:", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
