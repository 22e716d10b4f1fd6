"""Tables and a latency plot from one scripts/bench.sh run.

    python3 tests/bench/report.py build/bench [--smoke]

Reads relays.json, and when present threads.json, callgrind.json,
memory.json, policy.json and e2e.json from the directory; writes report.md
(markdown tables: first the figures against mongoguard's performance targets,
each met, not met or not measured, then the tables they come from, ratios
first) and latency.png (p50 / p99 / p99.9 per contender and connection count)
beside them, and prints the tables. Exit status 1 when any figure is not
sane: a contender (or a mongoguard of the threads phase) that carried no
traffic, saw error replies or failed connections, gave missing or non-finite
percentiles, an instruction count or a resident size that is missing or not
positive, idle connections that did not all open. There are no timing
thresholds: a target not met does not change the exit status.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import statistics
import sys

RELAYS = ["mongoguard", "haproxy", "mongobetween"]
TARGET_MIX = "find:90,delete:10"
NOT_MEASURED = "not measured"


def med(values):
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return statistics.median(values) if values else None


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt(v, spec):
    return "–" if v is None else format(v, spec)


def finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def run_problems(where: str, g: dict, cpu_ticks: int | None) -> list[str]:
    """What is wrong with one loadgen run (and the relay's CPU time around it)."""
    problems = []
    lat = g.get("latency_us", {})
    if not g.get("throughput_msgs_per_s"):
        problems.append(f"{where}: no throughput")
    if any(not finite(lat.get(k)) for k in ("p50", "p99", "p999")):
        problems.append(f"{where}: percentiles missing")
    if g.get("errors", 1) or g.get("failed_connections", 1):
        problems.append(f"{where}: {g.get('errors')} error replies, "
                        f"{g.get('failed_connections')} failed connections")
    if cpu_ticks is not None and cpu_ticks <= 0:
        problems.append(f"{where}: the relay used no CPU time")
    return problems


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
                where = f"{who} @ {r['connections']} conn round {r['round']}"
                problems += run_problems(where, r["loadgen"],
                                         r["relay_cpu_ticks"] if who != "direct" else None)
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
        s["added_p99"] = (s["p99"] - d["p99"]) if s["p99"] is not None and d.get("p99") else None
        s["cpu_vs_haproxy"] = ratio(s["cpu_us_per_msg"], h.get("cpu_us_per_msg"))
    return summary


def relay_table(summary: list[dict]) -> list[str]:
    lines = ["| conns | contender | thr / direct | thr / haproxy | thr / mongobetween "
             "| added p50 µs | added p99 µs | CPU µs/msg (/ haproxy) | msg/s | p50 µs | p99 µs "
             "| p99.9 µs |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in summary:
        cpu = fmt(s["cpu_us_per_msg"], ".2f")
        if s["cpu_vs_haproxy"] is not None and s["contender"] != "haproxy":
            cpu += f" ({s['cpu_vs_haproxy']:.2f}×)"
        lines.append(
            f"| {s['connections']} | {s['contender']} | {fmt(s['vs_direct'], '.2f')} "
            f"| {fmt(s['vs_haproxy'], '.2f')} | {fmt(s['vs_mongobetween'], '.2f')} "
            f"| {fmt(s['added_p50'], '+.1f')} | {fmt(s['added_p99'], '+.1f')} | {cpu} "
            f"| {fmt(s['throughput'], ',.0f')} "
            f"| {fmt(s['p50'], '.1f')} | {fmt(s['p99'], '.1f')} | {fmt(s['p999'], '.1f')} |")
    return lines


def threads_summary(th: dict, problems: list[str]) -> list[dict]:
    clk, summary = th["clock_ticks_per_s"], []
    for t in (1, 2):
        rs = [r for r in th["runs"] if r["threads"] == t]
        if not rs:
            problems.append(f"threads: no rounds for mongoguard --threads {t}")
        for r in rs:
            problems += run_problems(f"threads: mongoguard --threads {t} round {r['round']}",
                                     r["loadgen"], r["relay_cpu_ticks"])
        lg = [r["loadgen"] for r in rs]
        messages = sum(g.get("messages", 0) for g in lg)
        ticks = sum(r["relay_cpu_ticks"] for r in rs)
        summary.append({
            "threads": t, "rounds": len(rs), "messages": messages,
            "throughput": med([g.get("throughput_msgs_per_s") for g in lg]),
            "p50": med([g.get("latency_us", {}).get("p50") for g in lg]),
            "p99": med([g.get("latency_us", {}).get("p99") for g in lg]),
            "cpu_us_per_msg": ticks * 1e6 / clk / messages if messages else None,
        })
    for s in summary:
        s["vs_threads_1"] = ratio(s["throughput"], summary[0]["throughput"])
    return summary


def threads_table(th: dict, problems: list[str]) -> list[str]:
    th["summary"] = threads_summary(th, problems)
    lines = [f"{th['connections']} connections, load generator on {th['loadgen_threads']} "
             "threads, medians over rounds:", "",
             "| process | rounds | thr / --threads 1 | msg/s | CPU µs/msg | p50 µs | p99 µs |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for s in th["summary"]:
        lines.append(f"| mongoguard --threads {s['threads']} | {s['rounds']} "
                     f"| {fmt(s['vs_threads_1'], '.2f')} | {fmt(s['throughput'], ',.0f')} "
                     f"| {fmt(s['cpu_us_per_msg'], '.2f')} | {fmt(s['p50'], '.1f')} "
                     f"| {fmt(s['p99'], '.1f')} |")
    return lines


def callgrind_table(cg: dict, problems: list[str]) -> list[str]:
    lines = ["| relay | mix | instructions / forwarded message | messages counted "
             "| instructions |",
             "|---|---|---:|---:|---:|"]
    for r in cg.get("relays", []):
        msgs = r.get("loadgen", {}).get("messages") or 0
        ir = r.get("instructions")
        if not ir or ir <= 0 or not msgs:
            problems.append(f"callgrind {r['relay']}: {ir} instructions over {msgs} messages")
        per = ir / msgs if ir and msgs else None
        r["per_message"] = per
        mix = r.get("mix") or r.get("loadgen", {}).get("mix", "–")
        lines.append(f"| {r['relay']} | {mix} | {fmt(per, ',.0f')} | {msgs:,} "
                     f"| {fmt(ir, ',')} |")
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


# --- against the targets ------------------------------------------------------

def met(ok: bool | None) -> str:
    return NOT_MEASURED if ok is None else ("yes" if ok else "no")


def at_most(value, limit) -> bool | None:
    return None if value is None else value <= limit


def at_least(value, limit) -> bool | None:
    return None if value is None else value >= limit


def medians_of(rounds: int) -> str:
    return "one round" if rounds == 1 else f"medians of {rounds} rounds"


def relay_row(summary: list[dict], n: int, who: str) -> dict:
    return next((s for s in summary if s["connections"] == n and s["contender"] == who), {})


def versus_haproxy_64(summary: list[dict], mix, key: str, missing: str, describe,
                      judge) -> tuple[str, bool | None]:
    """A target on mongoguard's `key` over haproxy's at 64 connections:
    describe(mongoguard's row, haproxy's row, ratio) and judge(ratio), or why
    it was not measured."""
    m, h = relay_row(summary, 64, "mongoguard"), relay_row(summary, 64, "haproxy")
    if mix != TARGET_MIX:
        return f"the relay rounds ran mix {mix}", None
    r = ratio(m.get(key), h.get(key))
    if r is None:
        return missing, None
    return describe(m, h, r), judge(r)


def throughput_target(summary: list[dict], mix) -> tuple[str, bool | None]:
    return versus_haproxy_64(
        summary, mix, "throughput", "no mongoguard and haproxy rounds at 64 connections",
        lambda m, h, r: (f"{r:.2f}x haproxy ({m['throughput']:,.0f} vs {h['throughput']:,.0f} "
                         f"msg/s, {medians_of(m['rounds'])})"),
        lambda r: at_least(r, 1.10))


def cpu_target(summary: list[dict], mix) -> tuple[str, bool | None]:
    return versus_haproxy_64(
        summary, mix, "cpu_us_per_msg", "no CPU figures for mongoguard and haproxy at 64 connections",
        lambda m, h, r: (f"{r:.2f}x haproxy ({m['cpu_us_per_msg']:.2f} vs "
                         f"{h['cpu_us_per_msg']:.2f} µs per message over {m['rounds']} "
                         f"round{'s' if m['rounds'] != 1 else ''})"),
        lambda r: at_most(r, 0.9))


def added_target(summary: list[dict], key: str) -> tuple[str, bool | None]:
    m, h, d = (relay_row(summary, 1, c) for c in ("mongoguard", "haproxy", "direct"))
    am, ah = m.get(f"added_{key}"), h.get(f"added_{key}")
    if am is None or ah is None:
        return f"no {key} of mongoguard, haproxy and direct at 1 connection", None
    return (f"{am:+.1f} vs {ah:+.1f} µs (mongoguard vs haproxy; direct {d[key]:.1f} µs; "
            f"{medians_of(m['rounds'])})", am <= ah)


def instructions_target(cg: dict | None, relay: str, mix, limit: int) -> tuple[str, bool | None]:
    r = next((r for r in (cg or {}).get("relays", []) if r["relay"] == relay), {})
    per, run_mix = r.get("per_message"), r.get("mix") or r.get("loadgen", {}).get("mix")
    if per is None or run_mix != mix:
        return f"no callgrind count for {relay} with mix {mix}", None
    return (f"{per:,.0f} per message ({r['loadgen']['messages']:,} messages, mix {run_mix})",
            at_most(per, limit))


def policy_target(pol: dict | None, cg: dict | None) -> tuple[str, bool | None]:
    scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}
    b = next((b for b in (pol or {}).get("benchmarks", [])
              if b.get("run_name", "").split("/")[0] == "BM_ClassifyAndDecideDelete"
              and b.get("aggregate_name") == "median"), None)
    if not b or not finite(b.get("cpu_time")) or b["cpu_time"] <= 0 \
            or b.get("time_unit", "ns") not in scale:
        return "no policy_bench median for classify + decide", None
    us = b["cpu_time"] * scale[b.get("time_unit", "ns")]
    d = next((d for d in (cg or {}).get("decisions", [])
              if d["case"] == "ClassifyAndDecideDelete"), {})
    ir = f"; {d['per_decision']:,.0f} instructions (callgrind)" if d.get("per_decision") else ""
    return (f"{us:.2f} µs CPU (median of {b.get('repetitions', '?')} repetitions){ir}",
            at_most(us, 2.0))


def memory_target(mem: dict | None) -> tuple[str, bool | None]:
    r = next((r for r in (mem or {}).get("relays", []) if r["relay"] == "mongoguard"), {})
    kib = r.get("kib_per_connection")
    if kib is None:
        return "no idle-connection figure for mongoguard", None
    return (f"{kib:.1f} KiB per client (RSS growth over {r['connections']:,} idle clients, "
            f"{r['upstream_connections']:,} upstream connections)", at_most(kib, 24))


def threads_target(th: dict | None) -> tuple[str, bool | None]:
    rows = {s["threads"]: s for s in (th or {}).get("summary", [])}
    one, two = rows.get(1, {}), rows.get(2, {})
    r = ratio(two.get("throughput"), one.get("throughput"))
    if r is None:
        return "no throughput of mongoguard --threads 1 and --threads 2", None
    return (f"{r:.2f}x ({two['throughput']:,.0f} vs {one['throughput']:,.0f} msg/s at "
            f"{th['connections']} connections, {medians_of(two['rounds'])})",
            at_least(r, 1.6))


def targets_table(summary: list[dict], mix, data: dict) -> list[str]:
    cg, pol = data.get("callgrind.json"), data.get("policy.json")
    rows = [
        ("64 connections, 1 KiB, mix find:90,delete:10: throughput ≥ 1.10x haproxy",
         throughput_target(summary, mix)),
        ("64 connections: CPU per message ≤ 0.9x haproxy's", cpu_target(summary, mix)),
        ("callgrind: ≤ 8,000 instructions per forwarded message, mix find:90,delete:10",
         instructions_target(cg, "mongoguard", TARGET_MIX, 8000)),
        ("callgrind: ≤ 5,000 instructions per forwarded find (mix find:100)",
         instructions_target(cg, "mongoguard-find", "find:100", 5000)),
        ("classify + decide, a delete against 100 rules: ≤ 2 µs", policy_target(pol, cg)),
        ("1 connection: added p50 over direct ≤ haproxy's", added_target(summary, "p50")),
        ("1 connection: added p99 over direct ≤ haproxy's", added_target(summary, "p99")),
        ("10,000 idle connections: ≤ 24 KiB resident per client (client + upstream connection)",
         memory_target(data.get("memory.json"))),
        ("256 connections: --threads 2 ≥ 1.6x the throughput of --threads 1",
         threads_target(data.get("threads.json"))),
    ]
    lines = ["| target | measured | met |", "|---|---|---|"]
    lines += [f"| {target} | {measured} | {met(ok)} |" for target, (measured, ok) in rows]
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
    sections = [("threads.json", "### Threads", threads_table),
                ("callgrind.json", "### Instructions (callgrind)", callgrind_table),
                ("memory.json", "### Idle connections: resident size", memory_table),
                ("policy.json", "### Policy decision (Google Benchmark)", policy_table),
                ("e2e.json", "### End to end: pymongo against FerretDB", e2e_table)]
    data: dict[str, dict] = {}
    for name, title, render in sections:
        if (d / name).exists():
            data[name] = json.loads((d / name).read_text())
            if name == "threads.json":
                title += f" ({data[name]['connections']} connections)"
            out += ["", title, ""] + render(data[name], problems)
            (d / name).write_text(json.dumps(data[name], indent=2))
    targets = ["### Against the targets", ""] + targets_table(summary, g.get("mix"), data)
    if args.smoke:
        targets += ["", "(--smoke: short runs at other connection counts on a shared machine; "
                        "these verdicts mean nothing.)"]
    out = targets + [""] + out
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
