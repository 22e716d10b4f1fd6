#!/usr/bin/env bash
# Relay benchmark: what does mongoguard cost per message, next to no relay at
# all and next to a plain TCP relay (haproxy)?
#
#   scripts/bench.sh [--smoke] [--duration S] [--rounds N] [--connections "1 64"]
#                    [--message-bytes 1024] [--reply-bytes 1024] [--mix find:90,delete:10]
#                    [--relay-threads 1]
#
# Starts, on free loopback ports: build/bench/echo_upstream (the fake server),
# build/mongoguard with deploy/examples/policy.yaml in front of it, and haproxy
# in TCP mode in front of it. For each connection count it runs
# build/bench/loadgen against direct, mongoguard and haproxy in turn, for
# several short rounds (the order rotates each round, so neither relay always
# runs first or last on a shared machine), and reads each relay's CPU time
# (utime + stime from /proc/PID/stat) around its runs. Medians over rounds are
# reported; CPU per message is the relay's CPU over all its rounds divided by
# the messages it carried (one request + its reply = one message).
#
# Both relays get the same number of threads (--relay-threads, default 1):
# haproxy's nbthread and mongoguard's --threads. On a 2-core machine the load
# generator and the upstream need the other core; a second relay thread only
# adds contention, and one thread each compares the relays' per-thread cost.
#
# Writes build/bench/results.json and prints a markdown table. --smoke: one
# 2-second round with 1 and 8 connections, and only checks that every
# contender carried traffic without errors and gave finite percentiles (exit 1
# otherwise). No timing thresholds: the machine is shared.
#
# Installs haproxy with apt-get when it is missing (needs root).
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0
duration=5
rounds=3
connections="1 64"
message_bytes=1024
reply_bytes=1024
mix="find:90,delete:10"
relay_threads=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --smoke) smoke=1; shift ;;
    --duration) duration="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    --message-bytes) message_bytes="$2"; shift 2 ;;
    --reply-bytes) reply_bytes="$2"; shift 2 ;;
    --mix) mix="$2"; shift 2 ;;
    --relay-threads) relay_threads="$2"; shift 2 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [[ $smoke == 1 ]]; then
  duration=2
  rounds=1
  connections="1 8"
fi

scripts/build.sh
for bin in build/mongoguard build/bench/echo_upstream build/bench/loadgen; do
  [[ -x $bin ]] || { echo "bench.sh: $bin was not built (tests off?)" >&2; exit 1; }
done

if ! command -v haproxy >/dev/null 2>&1; then
  echo "bench.sh: installing haproxy" >&2
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q haproxy >&2 ||
    { DEBIAN_FRONTEND=noninteractive timeout 300 apt-get update -q >&2 &&
      DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q haproxy >&2; }
fi

work=$(mktemp -d)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {  # wait_port PORT PID NAME: up to 10 s
  local _
  for _ in $(seq 100); do
    kill -0 "$2" 2>/dev/null || { echo "bench.sh: $3 exited; its log:" >&2; cat "$work/$3.log" >&2; exit 1; }
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "bench.sh: $3 did not listen on $1 within 10 s" >&2
  exit 1
}

cpu_ticks() {  # utime + stime of PID, in clock ticks
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

echo_port=$(free_port)
mg_port=$(free_port)
admin_port=$(free_port)
hap_port=$(free_port)

build/bench/echo_upstream --listen "127.0.0.1:$echo_port" --reply-bytes "$reply_bytes" \
  >"$work/echo_upstream.log" 2>&1 &
echo_pid=$!
pids+=("$echo_pid")
wait_port "$echo_port" "$echo_pid" echo_upstream

head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/admin.token"
MONGOGUARD_AUDIT_PATH="$work/audit.jsonl" MONGOGUARD_ADMIN_TOKEN_FILE="$work/admin.token" \
  build/mongoguard --config deploy/examples/policy.yaml --listen "127.0.0.1:$mg_port" \
  --upstream "mongodb://127.0.0.1:$echo_port" --admin-listen "127.0.0.1:$admin_port" \
  --threads "$relay_threads" --log-level warn >"$work/mongoguard.log" 2>&1 &
mg_pid=$!
pids+=("$mg_pid")
wait_port "$mg_port" "$mg_pid" mongoguard

cat >"$work/haproxy.cfg" <<EOF
global
  nbthread $relay_threads
  maxconn 4096
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend bench
  bind 127.0.0.1:$hap_port
  default_backend upstream
backend upstream
  server echo 127.0.0.1:$echo_port
EOF
haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
hap_pid=$!
pids+=("$hap_pid")
wait_port "$hap_port" "$hap_pid" haproxy

declare -A port_of=([direct]=$echo_port [mongoguard]=$mg_port [haproxy]=$hap_port)
declare -A pid_of=([direct]="" [mongoguard]=$mg_pid [haproxy]=$hap_pid)
contenders=(direct mongoguard haproxy)
runs="$work/runs.jsonl"
: >"$runs"

echo "bench.sh: ${rounds} round(s) x ${duration} s, connections: ${connections}, ${message_bytes} B requests, ${reply_bytes} B replies, mix ${mix}, relay threads ${relay_threads}" >&2
for conns in $connections; do
  for ((round = 0; round < rounds; round++)); do
    for ((k = 0; k < ${#contenders[@]}; k++)); do
      who=${contenders[$(((k + round) % ${#contenders[@]}))]}
      pid=${pid_of[$who]}
      before=0
      [[ -n $pid ]] && before=$(cpu_ticks "$pid")
      out=$(timeout $((${duration%.*} + 60)) build/bench/loadgen --target "127.0.0.1:${port_of[$who]}" \
        --connections "$conns" --duration "$duration" --message-bytes "$message_bytes" \
        --mix "$mix" --json 2>>"$work/loadgen.log") || {
        echo "bench.sh: loadgen against $who failed:" >&2
        tail -5 "$work/loadgen.log" >&2
        out='{}'
      }
      after=0
      [[ -n $pid ]] && after=$(cpu_ticks "$pid")
      printf '{"contender":"%s","connections":%s,"round":%s,"relay_cpu_ticks":%s,"loadgen":%s}\n' \
        "$who" "$conns" "$round" "$((after - before))" "$out" >>"$runs"
      echo "  $conns conn, round $((round + 1)), $who: $(jq -r '"\(.throughput_msgs_per_s // 0 | floor) msg/s, p50 \(.latency_us.p50) µs"' <<<"$out")" >&2
    done
  done
done

mkdir -p build/bench
status=0
python3 - "$runs" build/bench/results.json "$smoke" "$(getconf CLK_TCK)" <<'PY' || status=$?
import json, math, statistics, sys

runs_path, out_path, smoke, clk_tck = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
runs = [json.loads(line) for line in open(runs_path)]
contenders = ["direct", "mongoguard", "haproxy"]
counts = sorted({r["connections"] for r in runs})

def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None

summary, problems = [], []
for n in counts:
    for who in contenders:
        rs = [r for r in runs if r["connections"] == n and r["contender"] == who]
        lg = [r["loadgen"] for r in rs]
        for r in rs:
            g = r["loadgen"]
            lat = g.get("latency_us", {})
            if not g.get("throughput_msgs_per_s"):
                problems.append(f"{who} @ {n} conn round {r['round']}: no throughput")
            if any(not isinstance(lat.get(k), (int, float)) or not math.isfinite(lat[k])
                   for k in ("p50", "p99", "p999")):
                problems.append(f"{who} @ {n} conn round {r['round']}: percentiles missing")
            if g.get("errors", 1) or g.get("failed_connections", 1):
                problems.append(f"{who} @ {n} conn round {r['round']}: "
                                f"{g.get('errors')} error replies, {g.get('failed_connections')} failed connections")
        messages = sum(g.get("messages", 0) for g in lg)
        ticks = sum(r["relay_cpu_ticks"] for r in rs)
        summary.append({
            "connections": n, "contender": who, "rounds": len(rs), "messages": messages,
            "throughput_msgs_per_s": med([g.get("throughput_msgs_per_s") for g in lg]),
            "p50_us": med([g.get("latency_us", {}).get("p50") for g in lg]),
            "p99_us": med([g.get("latency_us", {}).get("p99") for g in lg]),
            "p999_us": med([g.get("latency_us", {}).get("p999") for g in lg]),
            "relay_cpu_us_per_msg": (ticks * 1e6 / clk_tck / messages) if who != "direct" and messages else None,
        })

def row(n, who):
    return next(s for s in summary if s["connections"] == n and s["contender"] == who)

def ratio(a, b):
    return a / b if a is not None and b else None

for s in summary:
    d, h = row(s["connections"], "direct"), row(s["connections"], "haproxy")
    s["throughput_vs_direct"] = ratio(s["throughput_msgs_per_s"], d["throughput_msgs_per_s"])
    s["throughput_vs_haproxy"] = ratio(s["throughput_msgs_per_s"], h["throughput_msgs_per_s"])
    s["added_p50_us"] = (s["p50_us"] - d["p50_us"]) if s["p50_us"] is not None and d["p50_us"] is not None else None
    s["cpu_vs_haproxy"] = ratio(s["relay_cpu_us_per_msg"], h["relay_cpu_us_per_msg"])

g0 = runs[0]["loadgen"] if runs else {}
json.dump({"smoke": smoke, "clock_ticks_per_s": clk_tck,
           "message_bytes": g0.get("message_bytes"), "mix": g0.get("mix"),
           "summary": summary, "runs": runs, "problems": problems},
          open(out_path, "w"), indent=2)

def f(v, fmt):
    return "–" if v is None else format(v, fmt)

print("| conns | contender | thr / direct | thr / haproxy | added p50 µs | CPU µs/msg (vs haproxy) "
      "| msg/s | p50 µs | p99 µs | p99.9 µs |")
print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for s in summary:
    cpu = f(s["relay_cpu_us_per_msg"], ".2f")
    if s["cpu_vs_haproxy"] is not None and s["contender"] == "mongoguard":
        cpu += f" ({s['cpu_vs_haproxy']:.2f}×)"
    print(f"| {s['connections']} | {s['contender']} | {f(s['throughput_vs_direct'], '.2f')} "
          f"| {f(s['throughput_vs_haproxy'], '.2f')} | {f(s['added_p50_us'], '+.1f')} | {cpu} "
          f"| {f(s['throughput_msgs_per_s'], ',.0f')} | {f(s['p50_us'], '.1f')} "
          f"| {f(s['p99_us'], '.1f')} | {f(s['p999_us'], '.1f')} |")
for p in problems:
    print("problem:", p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
echo "bench.sh: results in build/bench/results.json" >&2
exit "$status"
