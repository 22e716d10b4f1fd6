#!/usr/bin/env bash
# Relay benchmark: what does mongoguard cost, next to no relay at all, next to
# a plain TCP relay (haproxy) and next to another MongoDB proxy (mongobetween)?
#
#   scripts/bench.sh [--smoke] [--duration S] [--rounds N] [--connections "1 64"]
#                    [--message-bytes 1024] [--reply-bytes 1024] [--mix find:90,delete:10]
#                    [--relay-threads 1] [--idle-connections 10000]
#                    [--skip "threads callgrind memory policy e2e"]
#
# Phases, all in one run on the same machine (results in build/bench/):
#  relays     build/bench/loadgen (closed loop, N connections) against direct
#             (build/bench/echo_upstream, the fake server), mongoguard with
#             deploy/examples/policy.yaml, haproxy in TCP mode and mongobetween,
#             in short rounds whose order rotates, so that no contender always
#             runs first or last on a shared machine. Each relay's CPU time
#             (utime + stime from /proc/PID/stat) is read around its runs: CPU
#             per message = relay CPU / messages carried (one request + its
#             reply = one message). Medians over rounds. -> relays.json
#  threads    two mongoguard processes (the same configuration), one with
#             --threads 1 and one with --threads 2, against the same echo
#             upstream: 256 connections each, in alternating rounds (as many
#             and as long as the relay rounds, the order rotating), with the
#             load generator on 2 threads of its own (--threads 2) so that it
#             is the limit as little as it can be on a small machine. Throughput
#             and relay CPU per message for each. -> threads.json
#  callgrind  each relay again under valgrind --tool=callgrind: counters zeroed
#             after the hello, 8 connections for a few seconds, then dumped:
#             instructions per forwarded message, mongoguard also without
#             the policy's journal section (what the journal costs the read
#             path: the report gives the ratio) and with a mix of finds only
#             (mongoguard-find, --mix find:100). And instructions per policy
#             decision (classify + decide, and decide alone, 100 rules) from
#             build/bench/policy_bench's fixed-iteration cases. -> callgrind.json
#  memory     resident size (VmRSS) of each relay before and while it holds
#             --idle-connections idle client connections (each after a hello,
#             so mongoguard and haproxy also hold one upstream connection per
#             client). One process holds at most ~19,990 sockets here (open
#             file limit 20000), so mongoguard and haproxy get two processes
#             with half the connections each and their figures are summed.
#             -> memory.json
#  policy     build/bench/policy_bench (Google Benchmark, CPU time). -> policy.json
#  e2e        tests/bench/e2e_pymongo.py: pymongo clients against FerretDB,
#             direct and through mongoguard (needs .venv and scripts/ferretdb.sh,
#             as scripts/test.sh sets them up). -> e2e.json
# Then tests/bench/report.py prints the tables (build/bench/report.md), first
# the figures against mongoguard's performance targets (met or not; a target
# not met does not fail the run), and draws build/bench/latency.png; it exits
# 1 when a contender carried no traffic, saw errors, or gave non-finite figures.
#
# Both relays get the same number of threads (--relay-threads, default 1):
# haproxy's nbthread, mongoguard's --threads and mongobetween's GOMAXPROCS.
# On a 2-core machine the load generator and the upstream need the other core.
#
# mongobetween: $MONGOBETWEEN (an executable), else ~/.cache/mongoguard/bin/
# mongobetween, else `go install github.com/coinbase/mongobetween@latest` into
# that directory, else $MONGOBETWEEN_SRC (a source checkout) built with go
# build. When none works the run goes on without it and says why.
#
# --smoke: one 2-second round with 1 and 8 connections, one 1-second threads
# round with 16 connections, callgrind of mongoguard (the mix, finds only, no
# journal) and the policy decision only, 200 idle connections, a 1-second e2e
# round when the backend is at hand; checks only that everything ran and gave
# sane figures. No timing thresholds: the machine is shared.
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
idle_connections=10000
skip=""
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
    --idle-connections) idle_connections="$2"; shift 2 ;;
    --skip) skip="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/!p}' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
callgrind_duration=5
e2e_args=(--rounds 3 --duration 5 --clients 4)
threads_connections=256
if [[ $smoke == 1 ]]; then
  duration=2
  rounds=1
  connections="1 8"
  threads_connections=16
  idle_connections=200
  callgrind_duration=1
  e2e_args=(--rounds 1 --duration 1 --clients 2)
fi
skipped() { [[ " $skip " == *" $1 "* ]]; }
# Thousands of idle connections need the open file limit at its ceiling.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

scripts/build.sh
for bin in build/mongoguard build/bench/echo_upstream build/bench/loadgen; do
  [[ -x $bin ]] || { echo "bench.sh: $bin was not built (tests off?)" >&2; exit 1; }
done

for tool in haproxy:haproxy valgrind:valgrind jq:jq; do
  command -v "${tool%%:*}" >/dev/null 2>&1 && continue
  echo "bench.sh: installing ${tool#*:}" >&2
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q "${tool#*:}" >&2 ||
    { DEBIAN_FRONTEND=noninteractive timeout 300 apt-get update -q >&2 &&
      DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q "${tool#*:}" >&2; }
done

out=build/bench
mkdir -p "$out"
rm -f "$out"/{relays,threads,callgrind,memory,policy,e2e}.json
work=$(mktemp -d)
pids=()
stop_pid() {  # TERM, up to 5 s, then KILL
  local pid=$1 _
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}
# shellcheck disable=SC2317  # reached through the EXIT trap
cleanup() {
  local pid
  for pid in "${pids[@]}"; do stop_pid "$pid"; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {  # wait_port PORT PID NAME [SECONDS]
  local _
  for _ in $(seq $((${4:-10} * 10))); do
    kill -0 "$2" 2>/dev/null || { echo "bench.sh: $3 exited; its log:" >&2; cat "$work/$3.log" >&2; exit 1; }
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "bench.sh: $3 did not listen on $1 within ${4:-10} s" >&2
  exit 1
}

cpu_ticks() {  # utime + stime of PID, in clock ticks
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# --- the contenders --------------------------------------------------------

mongobetween_bin() {  # prints the executable's path, or why there is none (exit 1)
  local cache=$HOME/.cache/mongoguard/bin why
  if [[ -n ${MONGOBETWEEN:-} ]]; then
    [[ -x $MONGOBETWEEN ]] && { echo "$MONGOBETWEEN"; return 0; }
    echo "MONGOBETWEEN=$MONGOBETWEEN is not executable"; return 1
  fi
  [[ -x $cache/mongobetween ]] && { echo "$cache/mongobetween"; return 0; }
  command -v go >/dev/null 2>&1 || { echo "no Go toolchain to build it"; return 1; }
  mkdir -p "$cache"
  if why=$(GOBIN=$cache timeout 900 go install github.com/coinbase/mongobetween@latest 2>&1); then
    echo "$cache/mongobetween"; return 0
  fi
  why="go install github.com/coinbase/mongobetween@latest failed: $(tr '\n' ' ' <<<"$why" | sed 's/  */ /g')"
  if [[ -n ${MONGOBETWEEN_SRC:-} ]]; then
    (cd "$MONGOBETWEEN_SRC" && timeout 900 go build -o "$cache/mongobetween" .) >&2 &&
      { echo "$cache/mongobetween"; return 0; }
    why="$why; go build in MONGOBETWEEN_SRC failed"
  fi
  echo "$why"; return 1
}

start_echo() {  # start_echo NAME PORT
  build/bench/echo_upstream --listen "127.0.0.1:$2" --reply-bytes "$reply_bytes" \
    >"$work/$1.log" 2>&1 &
  pids+=($!)
  wait_port "$2" $! "$1"
}

# start_relay [--threads N] KIND NAME PORT UPSTREAM_PORT [WRAPPER...]: starts
# one relay with N threads (default --relay-threads); its pid is left in
# $relay_pid.
start_relay() {
  local threads=$relay_threads
  if [[ $1 == --threads ]]; then threads=$2; shift 2; fi
  local kind=$1 name=$2 port=$3 up=$4
  shift 4
  local wait=10
  [[ $# -gt 0 ]] && wait=60  # under valgrind
  case $kind in
    mongoguard | mongoguard-nojournal)
      local admin config=$work/policy-bench.yaml
      # The example policy with its two budgets on app.* (as when the figures
      # in docs/benchmarks.md were measured): the echo upstream answers no
      # journal read, so a budgeted delete on bench.bench would be held.
      # Every other rule judges the load as it stands.
      sed -e 's/namespace: "\*\.\*", operations: \[delete, findAndModify, bulkWrite\]/namespace: "app.*", operations: [delete, findAndModify, bulkWrite]/' \
        -e 's/namespace: "\*\.\*", operations: \[update, replace\]/namespace: "app.*", operations: [update, replace]/' \
        deploy/examples/policy.yaml >"$config"
      if [[ $(grep -c 'namespace: "app\.\*", operations: \[' "$config") -ne 2 ]]; then
        echo "bench.sh: the example policy's budget rules changed shape; update start_relay" >&2
        exit 1
      fi
      if [[ $kind == mongoguard-nojournal ]]; then
        # The same policy without its journal section: what the journal
        # costs the read path (callgrind phase).
        awk '/^journal:/ {skip = 1; next} skip && /^[^ #]/ {skip = 0} !skip' \
          "$work/policy-bench.yaml" >"$work/policy-nojournal.yaml"
        config=$work/policy-nojournal.yaml
      fi
      admin=$(free_port)
      [[ -f $work/admin.token ]] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/admin.token"
      MONGOGUARD_AUDIT_PATH="$work/$name.audit.jsonl" MONGOGUARD_ADMIN_TOKEN_FILE="$work/admin.token" \
        MONGOGUARD_JOURNAL_PATH="$work/$name.journal.db" \
        "$@" build/mongoguard --config "$config" --listen "127.0.0.1:$port" \
        --upstream "mongodb://127.0.0.1:$up" --admin-listen "127.0.0.1:$admin" \
        --threads "$threads" --log-level warn >"$work/$name.log" 2>&1 &
      ;;
    haproxy)
      cat >"$work/$name.cfg" <<EOF
global
  nbthread $threads
  maxconn $((idle_connections / 2 + 100))
defaults
  mode tcp
  timeout connect 5s
  timeout client 600s
  timeout server 600s
frontend bench
  bind 127.0.0.1:$port
  default_backend upstream
backend upstream
  server echo 127.0.0.1:$up
EOF
      "$@" haproxy -f "$work/$name.cfg" -db >"$work/$name.log" 2>&1 &
      ;;
    mongobetween)
      # Under valgrind Go's asynchronous preemption signals crash callgrind.
      GOMAXPROCS=$threads GODEBUG=${1:+asyncpreemptoff=1} "$@" "$mongobetween" -loglevel warn -network tcp4 \
        -statsd 127.0.0.1:9 "127.0.0.1:$port=mongodb://127.0.0.1:$up/?directConnection=true" \
        >"$work/$name.log" 2>&1 &
      ;;
  esac
  relay_pid=$!
  pids+=("$relay_pid")
  wait_port "$port" "$relay_pid" "$name" "$wait"
}

mongobetween_note=""
if mongobetween=$(mongobetween_bin); then
  echo "bench.sh: mongobetween: $mongobetween" >&2
else
  mongobetween_note="mongobetween not measured: $mongobetween"
  echo "bench.sh: $mongobetween_note" >&2
  mongobetween=""
fi
relays=(mongoguard haproxy)
[[ -n $mongobetween ]] && relays+=(mongobetween)

# loadgen PORT CONNECTIONS DURATION [MIX [THREADS]]: one JSON line, '{}' on
# failure; the run's --mix and one load generator thread unless told.
loadgen() {
  timeout $((${3%.*} + 120)) build/bench/loadgen --target "127.0.0.1:$1" --connections "$2" \
    --duration "$3" --message-bytes "$message_bytes" --mix "${4:-$mix}" --threads "${5:-1}" \
    --json 2>>"$work/loadgen.log" ||
    { echo "bench.sh: loadgen on port $1 failed:" >&2; tail -3 "$work/loadgen.log" >&2; echo '{}'; }
}

versions() {
  local hv mv
  hv=$(haproxy -v 2>/dev/null | awk 'NR == 1 {print $3}')
  mv=$(dpkg-query -W -f='${Version}' valgrind 2>/dev/null || true)
  jq -n --arg kernel "$(uname -r)" --arg cpu "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)" \
    --arg cores "$(nproc)" --arg mongoguard "$(build/mongoguard --version 2>&1 | awk 'NR == 1')" \
    --arg haproxy "$hv" --arg valgrind "$mv" --arg go "$(go version 2>/dev/null || true)" \
    --arg mongobetween "${mongobetween:+$(cd /tmp && go version -m "$mongobetween" 2>/dev/null | awk '$1 == "mod" {print $3}')}" \
    --arg note "$mongobetween_note" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
    --arg date "$(date -u +%FT%TZ)" \
    '{date: $date, kernel: $kernel, cpu: $cpu, cores: $cores, mongoguard: $mongoguard,
      haproxy: $haproxy, valgrind: $valgrind, go: $go, mongobetween: $mongobetween,
      mongobetween_note: $note, load_average_start: $load}'
}
versions >"$work/machine.json"

# --- phase: relays -----------------------------------------------------------

echo_port=$(free_port)
start_echo echo_upstream "$echo_port"
declare -A port_of=([direct]=$echo_port) pid_of=([direct]="")
for r in "${relays[@]}"; do
  port_of[$r]=$(free_port)
  start_relay "$r" "$r" "${port_of[$r]}" "$echo_port"
  pid_of[$r]=$relay_pid
done
contenders=(direct "${relays[@]}")
runs="$work/runs.jsonl"
: >"$runs"
echo "bench.sh: relays: ${rounds} round(s) x ${duration} s, connections: ${connections}, ${message_bytes} B requests, ${reply_bytes} B replies, mix ${mix}, relay threads ${relay_threads}" >&2
for conns in $connections; do
  for ((round = 0; round < rounds; round++)); do
    for ((k = 0; k < ${#contenders[@]}; k++)); do
      who=${contenders[$(((k + round) % ${#contenders[@]}))]}
      pid=${pid_of[$who]}
      before=0
      [[ -n $pid ]] && before=$(cpu_ticks "$pid")
      result=$(loadgen "${port_of[$who]}" "$conns" "$duration")
      after=0
      [[ -n $pid ]] && after=$(cpu_ticks "$pid")
      printf '{"contender":"%s","connections":%s,"round":%s,"relay_cpu_ticks":%s,"loadgen":%s}\n' \
        "$who" "$conns" "$round" "$((after - before))" "$result" >>"$runs"
      echo "  $conns conn, round $((round + 1)), $who: $(jq -r '"\(.throughput_msgs_per_s // 0 | floor) msg/s, p50 \(.latency_us.p50) µs"' <<<"$result")" >&2
    done
  done
done
jq -s --slurpfile machine "$work/machine.json" --arg clk "$(getconf CLK_TCK)" \
  --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
  '{machine: ($machine[0] + {load_average_end: $load}), clock_ticks_per_s: ($clk | tonumber),
    contenders: ["direct", "mongoguard", "haproxy", "mongobetween"], runs: .}' \
  "$runs" >"$out/relays.json"
for r in "${relays[@]}"; do stop_pid "${pid_of[$r]}"; done

# --- phase: threads ----------------------------------------------------------

if ! skipped threads; then
  threads_rounds=$rounds threads_duration=$duration
  [[ $smoke == 1 ]] && threads_rounds=1 threads_duration=1
  declare -A threads_port=() threads_pid=()
  for t in 1 2; do
    threads_port[$t]=$(free_port)
    start_relay --threads "$t" mongoguard "threads-$t" "${threads_port[$t]}" "$echo_port"
    threads_pid[$t]=$relay_pid
  done
  : >"$work/threads.jsonl"
  echo "bench.sh: threads: mongoguard --threads 1 and 2, ${threads_rounds} round(s) x ${threads_duration} s, ${threads_connections} connections, loadgen --threads 2" >&2
  for ((round = 0; round < threads_rounds; round++)); do
    for k in 0 1; do
      t=$((1 + (k + round) % 2))
      before=$(cpu_ticks "${threads_pid[$t]}")
      result=$(loadgen "${threads_port[$t]}" "$threads_connections" "$threads_duration" "$mix" 2)
      after=$(cpu_ticks "${threads_pid[$t]}")
      printf '{"threads":%s,"round":%s,"relay_cpu_ticks":%s,"loadgen":%s}\n' \
        "$t" "$round" "$((after - before))" "$result" >>"$work/threads.jsonl"
      echo "  round $((round + 1)), mongoguard --threads $t: $(jq -r '"\(.throughput_msgs_per_s // 0 | floor) msg/s, p50 \(.latency_us.p50) µs"' <<<"$result")" >&2
    done
  done
  jq -s --arg clk "$(getconf CLK_TCK)" --arg n "$threads_connections" \
    '{clock_ticks_per_s: ($clk | tonumber), connections: ($n | tonumber), loadgen_threads: 2,
      runs: .}' "$work/threads.jsonl" >"$out/threads.json"
  for t in 1 2; do stop_pid "${threads_pid[$t]}"; done
fi

# --- phase: callgrind --------------------------------------------------------

if ! skipped callgrind; then
  cg_relays=("${relays[@]}" mongoguard-nojournal mongoguard-find)
  [[ $smoke == 1 ]] && cg_relays=(mongoguard mongoguard-nojournal mongoguard-find)
  : >"$work/callgrind.jsonl"
  for r in "${cg_relays[@]}"; do
    # mongoguard-find: mongoguard itself, relaying finds only.
    kind=$r cg_mix=$mix
    [[ $r == mongoguard-find ]] && kind=mongoguard cg_mix=find:100
    port=$(free_port)
    echo "bench.sh: callgrind: $r, 8 connections, ${callgrind_duration} s, mix $cg_mix" >&2
    start_relay "$kind" "cg-$r" "$port" "$echo_port" valgrind --tool=callgrind \
      --callgrind-out-file="$work/cg-$r.%p.out" --dump-instr=no
    build/bench/loadgen --target "127.0.0.1:$port" --connections 1 --duration 0.5 \
      --message-bytes "$message_bytes" --mix "$cg_mix" --json >/dev/null 2>>"$work/loadgen.log" || true
    callgrind_control -z "$relay_pid" >/dev/null 2>&1
    result=$(loadgen "$port" 8 "$callgrind_duration" "$cg_mix")
    callgrind_control -d "$relay_pid" >/dev/null 2>&1
    ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$work"/cg-"$r".*.out.* 2>/dev/null || true)
    stop_pid "$relay_pid"
    printf '{"relay":"%s","mix":"%s","instructions":%s,"loadgen":%s}\n' "$r" "$cg_mix" \
      "${ir:-null}" "$result" >>"$work/callgrind.jsonl"
  done
  decisions=()
  if [[ -x build/bench/policy_bench ]]; then
    for case in ClassifyAndDecideDelete:classify_and_decide_once DecideOnly:decide_once; do
      rm -f "$work/cg-policy.out"
      valgrind --tool=callgrind --callgrind-out-file="$work/cg-policy.out" \
        --toggle-collect="*${case#*:}*" build/bench/policy_bench \
        --benchmark_filter="^Fixed_${case%%:*}(/|\$)" >"$work/cg-policy.log" 2>&1 ||
        { echo "bench.sh: policy_bench under callgrind failed:" >&2; tail -5 "$work/cg-policy.log" >&2; }
      ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$work/cg-policy.out" 2>/dev/null || true)
      decisions+=("$(jq -n --arg c "${case%%:*}" --arg ir "${ir:-}" \
        '{case: $c, instructions: ($ir | tonumber? // null), iterations: 20000}')")
    done
  fi
  jq -s --argjson d "$(printf '%s\n' "${decisions[@]}" | jq -s .)" \
    '{relays: ., decisions: $d}' "$work/callgrind.jsonl" >"$out/callgrind.json"
fi

# --- phase: memory -----------------------------------------------------------

if ! skipped memory; then
  : >"$work/memory.jsonl"
  for r in "${relays[@]}"; do
    echo_port=$(free_port)
    start_echo "mem-echo-$r" "$echo_port"
    echo_pid=${pids[-1]}
    parts=2
    [[ $r == mongobetween ]] && parts=1  # one listener; its upstream pool is shared
    per=$((idle_connections / parts))
    procs=() ports=() holders=() base=0
    for ((p = 0; p < parts; p++)); do
      port=$(free_port)
      start_relay "$r" "mem-$r-$p" "$port" "$echo_port"
      procs+=("$relay_pid") ports+=("$port")
      # One hello first, so the baseline includes what the first client loads.
      build/bench/loadgen --target "127.0.0.1:$port" --connections 1 --duration 0.2 \
        --message-bytes "$message_bytes" --json >/dev/null 2>>"$work/loadgen.log" || true
      base=$((base + $(rss_kib "$relay_pid")))
    done
    for ((p = 0; p < parts; p++)); do
      build/bench/loadgen --target "127.0.0.1:${ports[$p]}" --connections "$per" --duration 600 \
        --idle >"$work/idle-$r-$p.json" 2>>"$work/loadgen.log" &
      holders+=($!)
      pids+=($!)
    done
    ready=0 failed=0
    for ((p = 0; p < parts; p++)); do
      for _ in $(seq 1200); do [[ -s $work/idle-$r-$p.json ]] && break; sleep 0.1; done
      ready=$((ready + $(jq '.idle_connections // 0' "$work/idle-$r-$p.json" 2>/dev/null || echo 0)))
      failed=$((failed + $(jq '.failed_connections // 0' "$work/idle-$r-$p.json" 2>/dev/null || echo 0)))
    done
    sleep 2
    held=0
    for pid in "${procs[@]}"; do held=$((held + $(rss_kib "$pid"))); done
    upstream_conns=$(ss -Htn state established "( dport = :$echo_port )" | wc -l)
    printf '{"relay":"%s","processes":%s,"connections":%s,"failed_connections":%s,"upstream_connections":%s,"rss_kib_before":%s,"rss_kib_idle":%s}\n' \
      "$r" "$parts" "$ready" "$failed" "$upstream_conns" "$base" "$held" >>"$work/memory.jsonl"
    echo "  $r: $ready idle connections ($upstream_conns upstream): RSS $base -> $held KiB" >&2
    for pid in "${holders[@]}" "${procs[@]}" "$echo_pid"; do stop_pid "$pid"; done
  done
  jq -s --arg n "$idle_connections" '{requested_connections: ($n | tonumber), relays: .}' \
    "$work/memory.jsonl" >"$out/memory.json"
fi

# --- phase: policy micro-benchmark ---------------------------------------------

if ! skipped policy && [[ $smoke == 0 && -x build/bench/policy_bench ]]; then
  echo "bench.sh: policy_bench" >&2
  build/bench/policy_bench --benchmark_filter='^BM_' --benchmark_format=json \
    >"$out/policy.json" 2>"$work/policy.log"
fi

# --- phase: end to end (pymongo, FerretDB) -------------------------------------

if ! skipped e2e; then
  if [[ -x .venv/bin/python ]] && .venv/bin/python -c 'import pymongo' 2>/dev/null; then
    echo "bench.sh: end to end, pymongo against FerretDB, direct and through mongoguard" >&2
    .venv/bin/python tests/bench/e2e_pymongo.py "${e2e_args[@]}" --out "$out/e2e.json" >/dev/null
  else
    echo "bench.sh: end-to-end run skipped: no .venv with pymongo (scripts/test.sh makes it)" >&2
  fi
fi

# Debian's python3 (with python3-matplotlib for the plot), even when another
# python3 comes first on PATH.
report_python=python3
[[ -x /usr/bin/python3 ]] && report_python=/usr/bin/python3
report_args=("$out")
[[ $smoke == 1 ]] && report_args+=(--smoke)
status=0
"$report_python" tests/bench/report.py "${report_args[@]}" || status=$?
echo "bench.sh: results in $out/ (report.md, latency.png, *.json)" >&2
exit "$status"
