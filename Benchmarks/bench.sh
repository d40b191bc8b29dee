#!/usr/bin/env bash
# make bench: Gatehouse against the ceiling, in one run, on loopback only.
#
# Builds the release binaries (gatehouse, BareHandler, JOSEBenchmark), then:
#   1. wrk against the bare libmicrohttpd handler (Benchmarks/BareHandler), the ceiling;
#   2. wrk against gatehouse: GET /protected with a real token, POST /login
#      (Argon2id, default cost);
#   3. GET /protected while a POST /login storm saturates the hashing pool;
#   4. peak and current RSS of gatehouse; then a soak of GET /protected
#      (RSS growth between the end of its first slice and its end);
#   5. GET /protected again after a restart with BENCH_REVOKED revoked sessions
#      loaded into the in-memory revocation set (the cost must not change);
#   6. GET /auth/verify for each signing algorithm (BENCH_ALGORITHMS), each on
#      a fresh gatehouse with GATEHOUSE_SIGNING_ALG and a fresh data directory,
#      and ES256 once more with the signature cache off; ES256 against HS256;
#   7. the JOSE micro-benchmark (sign/verify per algorithm against a raw reused HMAC);
#   8. what metrics and the request log cost GET /protected: BENCH_AB_ROUNDS
#      rounds of three runs (both off, metrics only, both on: the default),
#      medians compared; and the instructions per request of each under
#      valgrind (callgrind), which a busy machine does not change.
#   9. the tutorial's own Flask + PyJWT app (Benchmarks/peers/tutorial_app.py)
#      under gunicorn with one sync worker, GET /protected, for scale;
#  10. two gatehouse instances behind a real nginx, once on SQLite (one shared
#      file) and once on a real PostgreSQL started for the run: GET /protected
#      and POST /login through nginx, and each instance's GET /protected on its
#      own, which must be the same with both stores (Benchmarks/cluster.sh,
#      whose header says how it pins 4+ processes to 2 cores).
# Servers run pinned to one core with one worker thread, wrk to the other
# (NOTES.md: pinned figures repeat, unpinned ones jump between two levels).
# It prints a Markdown table and writes it to .build/bench-results.md.
#
# Settings (environment):
#   BENCH_SECONDS            seconds per wrk run (default 5)
#   BENCH_SOAK_SECONDS       soak length, run in slices of at most 30 s; 0 skips it (default 300)
#   BENCH_CONNECTIONS        wrk connections for the throughput runs (default 50)
#   BENCH_LOGIN_CONNECTIONS  wrk connections for the POST /login run (default 4)
#   BENCH_STORM_CONNECTIONS  wrk connections of the login storm (default 8)
#   BENCH_JOSE_SECONDS       seconds per JOSE measurement (default 2)
#   BENCH_REVOKED            revoked sessions for step 5; 0 skips it (default 100000)
#   BENCH_ALGORITHMS         signing algorithms for step 6 (default "HS256 RS256 ES256 EdDSA")
#   BENCH_AB_ROUNDS          rounds of step 8; 0 skips it (default 3)
#   BENCH_CLUSTER_ROUNDS     rounds of step 10, each store once per round, alternating; 0 skips it
#                            (default 2: 2 x 2 stores x 4 wrk runs of BENCH_SECONDS, and two runs under
#                            callgrind when valgrind is there: about 2.5 minutes)
#   BENCH_ONLY               "cluster": build gatehouse and run only step 10 (its rows alone in the table);
#                            empty (the default): everything
#   BENCH_SERVER_CPU, BENCH_CLIENT_CPU  cores for the server and for wrk (default 0 and 1)
#   BENCH_SCRATCH_PATH       SwiftPM scratch path (default: SwiftPM's own, .build)
#   SWIFT                    the swift driver (default swift)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

SWIFT=${SWIFT:-swift}
BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_SOAK_SECONDS=${BENCH_SOAK_SECONDS:-300}
BENCH_CONNECTIONS=${BENCH_CONNECTIONS:-50}
BENCH_LOGIN_CONNECTIONS=${BENCH_LOGIN_CONNECTIONS:-4}
BENCH_STORM_CONNECTIONS=${BENCH_STORM_CONNECTIONS:-8}
BENCH_JOSE_SECONDS=${BENCH_JOSE_SECONDS:-2}
BENCH_REVOKED=${BENCH_REVOKED:-100000}
BENCH_AB_ROUNDS=${BENCH_AB_ROUNDS:-3}
BENCH_CLUSTER_ROUNDS=${BENCH_CLUSTER_ROUNDS:-2}
BENCH_ONLY=${BENCH_ONLY:-}
BENCH_SERVER_CPU=${BENCH_SERVER_CPU:-0}
BENCH_CLIENT_CPU=${BENCH_CLIENT_CPU:-1}
BENCH_SCRATCH_PATH=${BENCH_SCRATCH_PATH:-}
read -r -a BENCH_ALGORITHMS <<<"${BENCH_ALGORITHMS:-HS256 RS256 ES256 EdDSA}"

# The storm's /protected run uses a fixed, moderate connection count.
STORM_PROTECTED_CONNECTIONS=10
BENCH_USER=benchuser
BENCH_PASSWORD=bench-password-1 # must match Benchmarks/wrk/login.lua
CREDENTIALS="{\"username\":\"$BENCH_USER\",\"password\":\"$BENCH_PASSWORD\"}"
RESULTS=.build/bench-results.md

fail() {
    echo "bench: $*" >&2
    exit 1
}

is_count() { [[ $1 =~ ^[0-9]+$ ]]; }
for name in BENCH_SECONDS BENCH_SOAK_SECONDS BENCH_CONNECTIONS BENCH_LOGIN_CONNECTIONS BENCH_STORM_CONNECTIONS \
    BENCH_JOSE_SECONDS BENCH_SERVER_CPU BENCH_CLIENT_CPU BENCH_REVOKED BENCH_AB_ROUNDS BENCH_CLUSTER_ROUNDS; do
    is_count "${!name}" || fail "$name must be a whole number (got '${!name}')"
done
((BENCH_SECONDS >= 1 && BENCH_SECONDS <= 600)) || fail "BENCH_SECONDS must be from 1 to 600"
((BENCH_CONNECTIONS >= 1 && BENCH_LOGIN_CONNECTIONS >= 1 && BENCH_STORM_CONNECTIONS >= 1)) ||
    fail "the BENCH_*_CONNECTIONS counts must be at least 1"
((BENCH_SOAK_SECONDS <= 3600)) || fail "BENCH_SOAK_SECONDS must be at most 3600"
((BENCH_JOSE_SECONDS >= 1 && BENCH_JOSE_SECONDS <= 60)) || fail "BENCH_JOSE_SECONDS must be from 1 to 60"
((BENCH_REVOKED <= 10000000)) || fail "BENCH_REVOKED must be at most 10000000"
((BENCH_AB_ROUNDS <= 20)) || fail "BENCH_AB_ROUNDS must be at most 20"
((BENCH_CLUSTER_ROUNDS <= 20)) || fail "BENCH_CLUSTER_ROUNDS must be at most 20"
[[ $BENCH_ONLY == "" || $BENCH_ONLY == cluster ]] || fail "BENCH_ONLY must be empty or 'cluster' (got '$BENCH_ONLY')"
[[ $BENCH_ONLY != cluster ]] || ((BENCH_CLUSTER_ROUNDS > 0)) || fail "BENCH_ONLY=cluster needs BENCH_CLUSTER_ROUNDS > 0"
for algorithm in "${BENCH_ALGORITHMS[@]}"; do
    [[ $algorithm =~ ^(HS256|RS256|ES256|EdDSA)$ ]] ||
        fail "BENCH_ALGORITHMS: '$algorithm' is not one of HS256 RS256 ES256 EdDSA"
done
for tool in wrk curl taskset awk python3; do
    command -v "$tool" >/dev/null || fail "$tool is missing (make bench installs it: make test-deps)"
done
CPUS=$(nproc)
((BENCH_SERVER_CPU < CPUS && BENCH_CLIENT_CPU < CPUS)) || fail "this machine has $CPUS CPUs; set BENCH_SERVER_CPU and BENCH_CLIENT_CPU"
((CPUS >= 2)) || echo "bench: only one CPU: server and wrk share it, figures will be low" >&2

# The service must run on its defaults, not on whatever the caller's shell sets.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^GATEHOUSE_' || true)

# MARK: - Processes (every one by PID, all stopped on exit)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-bench.XXXXXX")
declare -A RUNNING=()         # pid -> name
declare -A POSTMASTER_DATA=() # pid (runuser's, or postgres's) -> its PostgreSQL data directory

# SIGTERM, up to 5 s, then SIGKILL; reaps it and leaves its exit status in STOP_STATUS.
# PostgreSQL (a pid in POSTMASTER_DATA): SIGINT (fast shutdown) to the postmaster
# named in postmaster.pid, since runuser would turn any signal into SIGTERM (smart
# shutdown, which waits for every client); up to 10 s, then SIGKILL to both.
stop_process() { # pid
    local pid=$1 postmaster="" limit=50
    STOP_STATUS=
    [[ -n ${RUNNING[$pid]:-} ]] || return 0
    if [[ -n ${POSTMASTER_DATA[$pid]:-} ]]; then
        postmaster=$(head -n 1 "${POSTMASTER_DATA[$pid]}/postmaster.pid" 2>/dev/null || true)
        [[ $postmaster =~ ^[0-9]+$ ]] || postmaster=$pid
        kill -INT "$postmaster" 2>/dev/null || true
        limit=100
    else
        kill -TERM "$pid" 2>/dev/null || true
    fi
    local tries=0
    while kill -0 "$pid" 2>/dev/null && ((tries < limit)); do
        sleep 0.1
        tries=$((tries + 1))
    done
    kill -KILL "$pid" 2>/dev/null || true
    [[ -n $postmaster && $postmaster != "$pid" ]] && { kill -KILL "$postmaster" 2>/dev/null || true; }
    STOP_STATUS=0
    wait "$pid" 2>/dev/null || STOP_STATUS=$?
    unset "RUNNING[$pid]" "POSTMASTER_DATA[$pid]"
}

# Stops the run if a server died (and says how), instead of measuring refused connections.
check_alive() { # pid name log-file
    kill -0 "$1" 2>/dev/null && return 0
    local status=0
    wait "$1" 2>/dev/null || status=$?
    unset "RUNNING[$1]"
    echo "bench: $2 (pid $1) is gone (exit status $status); the end of its log:" >&2
    tail -n 20 "$3" >&2
    exit 1
}

# A curl that never stops the script by itself: prints the HTTP status, 000 if there was none.
http_status() { # output-file curl-arguments...
    local out=$1
    shift
    curl -s --max-time 30 -o "$out" -w '%{http_code}' "$@" || true
}

cleanup() {
    local pid
    # PostgreSQL last: its clients first.
    for pid in "${!RUNNING[@]}"; do [[ -n ${POSTMASTER_DATA[$pid]:-} ]] || stop_process "$pid"; done
    for pid in "${!RUNNING[@]}"; do stop_process "$pid"; done
    if [[ -n ${WORK:-} && -d $WORK && $WORK == */gatehouse-bench.* ]]; then
        rm -rf -- "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits (at most 10 s) for a server to log its port; prints the port.
wait_for_port() { # pid log-file sed-pattern-with-one-group
    wait_for_port_within 10 "$@"
}
wait_for_port_within() { # seconds pid log-file sed-pattern-with-one-group
    local limit=$1 pid=$2 log=$3 pattern=$4 port tries=0
    while ((tries < limit * 20)); do
        port=$(sed -n "s/$pattern/\1/p" "$log" | head -n 1)
        if [[ -n $port ]]; then
            echo "$port"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; fail "server (pid $pid) exited before listening"; }
        sleep 0.05
        tries=$((tries + 1))
    done
    cat "$log" >&2
    fail "server (pid $pid) did not report its port within $limit s"
}

# Starts gatehouse pinned to the server CPU with one HTTP thread and one
# hashing worker, on the given data directory, with any further GATEHOUSE_*
# settings; sets GATEHOUSE_PID (also the MEASURED_PID), PORT and BASE.
# Returns 1 (the log on stderr) if it exits before listening.
start_gatehouse() { # data-dir log-file [NAME=value...]
    local data=$1 log=$2
    shift 2
    env GATEHOUSE_HOST=127.0.0.1 GATEHOUSE_PORT=0 GATEHOUSE_THREADS=1 GATEHOUSE_HASH_WORKERS=1 \
        GATEHOUSE_DATA_DIR="$data" "$@" taskset -c "$BENCH_SERVER_CPU" "$BIN/gatehouse" 2>"$log" &
    GATEHOUSE_PID=$!
    RUNNING[$GATEHOUSE_PID]=gatehouse
    MEASURED_PID=$GATEHOUSE_PID
    PORT=$(wait_for_port "$GATEHOUSE_PID" "$log" '.*listening.*address=[^ ]*127\.0\.0\.1:\([0-9][0-9]*\).*') ||
        return 1
    BASE="http://127.0.0.1:$PORT"
}

# The alg of a token's header.
token_alg() { # token
    local header=${1%%.*}
    header=$(tr '_-' '/+' <<<"$header")
    while ((${#header} % 4)); do header+="="; done
    base64 -d <<<"$header" 2>/dev/null | sed -n 's/.*"alg" *: *"\([^"]*\)".*/\1/p'
}

# Registers the bench user on BASE (unless it exists: 409) and logs in; sets
# TOKEN. Returns 1, saying why on stderr, if that fails.
sign_in() { # file-prefix
    local status
    status=$(http_status "$1-register.json" -X POST "$BASE/register" -H 'Content-Type: application/json' \
        -d "$CREDENTIALS")
    [[ $status == 201 || $status == 409 ]] ||
        { echo "bench: POST /register answered $status: $(cat "$1-register.json")" >&2; return 1; }
    status=$(http_status "$1-login.json" -X POST "$BASE/login" -H 'Content-Type: application/json' \
        -d "$CREDENTIALS")
    [[ $status == 200 ]] || { echo "bench: POST /login answered $status: $(cat "$1-login.json")" >&2; return 1; }
    TOKEN=$(sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p' "$1-login.json")
    [[ -n $TOKEN ]] || { echo "bench: no access_token in the login response: $(cat "$1-login.json")" >&2; return 1; }
}

# MARK: - wrk

WRK_COMMANDS=()

# A command line as it would be typed (arguments with spaces in single quotes).
quoted() {
    local argument line=
    for argument in "$@"; do
        [[ $argument == *[[:space:]]* ]] && argument="'$argument'"
        line+="${line:+ }$argument"
    done
    echo "$line"
}

# CPU time, in nanoseconds: of processes (all their threads; 0 for none), of
# this shell's reaped children (wrk), and of the whole machine (busy, steal included).
process_cpu_ns() { # space-separated pids, or empty
    [[ -n $1 ]] || { echo 0; return; }
    local pid files=()
    for pid in $1; do files+=(/proc/"$pid"/task/*/schedstat); done
    cat "${files[@]}" 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'
}
# Reads what `times >"$WORK/times"` wrote (it must run in this shell, not in a
# subshell, whose children are not ours).
children_cpu_ns() {
    awk 'NR == 2 { split($1 " " $2, t, /[ms ]+/); printf "%.0f", (t[1] * 60 + t[2] + t[3] * 60 + t[4]) * 1e9 }' \
        "$WORK/times"
}
CLOCK_TICKS=$(getconf CLK_TCK)
machine_cpu_ns() {
    awk -v hz="$CLOCK_TICKS" '/^cpu / { printf "%.0f", ($2 + $3 + $4 + $7 + $8 + $9) * 1e9 / hz }' /proc/stat
}

# Runs a command and writes to <file>.cpu how much CPU went where meanwhile:
# the measured process (MEASURED_PID; several, space-separated, are summed),
# the command itself, and everything else on the machine ("other", in CPUs:
# other sessions, builds, the hypervisor), which says how far to trust the
# figure. With BACKGROUND_LOAD set (the login storm runs alongside) none of it
# can be told apart, and all is "-".
MEASURED_PID=
BACKGROUND_LOAD=
run_accounted() { # cpu-file command...
    local file=$1
    shift
    local server0 children0 machine0 start server1 children1 machine1 end
    server0=$(process_cpu_ns "$MEASURED_PID")
    times >"$WORK/times"
    children0=$(children_cpu_ns)
    machine0=$(machine_cpu_ns)
    start=$(date +%s%N)
    "$@"
    end=$(date +%s%N)
    machine1=$(machine_cpu_ns)
    times >"$WORK/times"
    children1=$(children_cpu_ns)
    server1=$(process_cpu_ns "$MEASURED_PID")
    awk -v s="$((server1 - server0))" -v c="$((children1 - children0))" -v m="$((machine1 - machine0))" \
        -v w="$((end - start))" -v background="$BACKGROUND_LOAD" 'BEGIN {
            other = (m - s - c) / w; if (other < 0) other = 0
            if (background) print "server_cpu_ns=- client_cpu_ns=- other_cpus=-"
            else printf "server_cpu_ns=%.0f client_cpu_ns=%.0f other_cpus=%.2f\n", s, c, other
        }' >"$file"
}

# Runs wrk pinned to the client CPU, output to a file (and its CPU accounting
# to <file>.cpu); records the command.
run_wrk() { # output-file wrk-arguments...
    local out=$1
    shift
    WRK_COMMANDS+=("$(quoted taskset -c "$BENCH_CLIENT_CPU" wrk "$@")")
    run_accounted "$out.cpu" taskset -c "$BENCH_CLIENT_CPU" wrk "$@" >"$out" 2>&1 ||
        { cat "$out" >&2; fail "wrk $* failed"; }
}

cpu_field() { # file key
    awk -v key="$2" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == key) print kv[2] } }' "$1.cpu"
}
# Server CPU per request, in microseconds (plain number).
wrk_cpu_per_request_us() {
    awk -v ns="$(cpu_field "$1" server_cpu_ns)" -v n="$(wrk_requests "$1")" \
        'BEGIN { if (ns != "-" && n + 0 > 0) printf "%.2f", ns / n / 1000; else print "-" }'
}
# The same with a unit, for the table.
cpu_per_request() {
    awk -v us="$(wrk_cpu_per_request_us "$1")" 'BEGIN {
        if (us == "-") print "-"; else if (us >= 1000) printf "%.1f ms", us / 1000; else printf "%.2f us", us }'
}
wrk_rps() { awk '/^Requests\/sec:/ { printf "%d", $2 + 0.5 }' "$1"; }
wrk_requests() { awk '/ requests in / { print $1 }' "$1"; }
# A latency percentile (50, 99) in milliseconds.
wrk_latency_ms() {
    awk -v p="$2%" '$1 == p {
        v = $2; unit = v; sub(/^[0-9.]+/, "", unit); n = v + 0
        if (unit == "us") n /= 1000; else if (unit == "s") n *= 1000; else if (unit == "m") n *= 60000
        printf "%.2f", n
    }' "$1"
}
wrk_non2xx() { awk '/Non-2xx or 3xx responses:/ { n = $NF } END { print n + 0 }' "$1"; }
wrk_socket_errors() {
    awk '/Socket errors:/ { gsub(/,/, ""); n = $4 + $6 + $8 + $10 } END { print n + 0 }' "$1"
}
summary() { # label file
    echo "  $1: $(wrk_rps "$2") req/s, p50 $(wrk_latency_ms "$2" 50) ms, p99 $(wrk_latency_ms "$2" 99) ms," \
        "non-2xx $(wrk_non2xx "$2"), socket errors $(wrk_socket_errors "$2");" \
        "server CPU $(cpu_per_request "$2")/request; other load $(cpu_field "$2" other_cpus) CPUs"
}

# The median of the numbers on stdin, one a line ("-" for none).
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
at_least() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
below() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }
grouped() { echo "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }
rss_kib() { awk -v key="$2:" '$1 == key { print $2 }' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

# Share of all CPUs busy over one second, in percent (from /proc/stat).
cpu_busy_percent() {
    local first second
    first=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
    sleep 1
    second=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
    awk -v a="$first" -v b="$second" 'BEGIN {
        split(a, x, " "); split(b, y, " "); busy = y[1] - x[1]; idle = y[2] - x[2]
        total = busy + idle
        printf "%.0f", (total > 0) ? busy * 100 / total : 0 }'
}

# Step 10's functions (two instances behind nginx, SQLite and PostgreSQL).
# shellcheck source=Benchmarks/cluster.sh
source Benchmarks/cluster.sh

# The lines under the table that say on what, when and how it ran.
machine_line() {
    echo "- machine: $CPUS CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), Linux $(uname -r)," \
        "$(awk -F= '/^PRETTY_NAME/ { gsub(/"/, "", $2); print $2 }' /etc/os-release 2>/dev/null)," \
        "$("$SWIFT" --version 2>/dev/null | head -n 1 | sed 's/ (.*//')," \
        "libmicrohttpd $(dpkg-query -W -f='${Version}' libmicrohttpd12 2>/dev/null || echo '?')," \
        "OpenSSL $(dpkg-query -W -f='${Version}' libssl3 2>/dev/null || echo '?')"
    if ((BUSY_BEFORE > 5)); then
        echo "- **the machine was not quiet**: ${BUSY_BEFORE}% of all CPUs busy with other work in the second before the run"
    else
        echo "- machine quiet before the run: ${BUSY_BEFORE}% CPU busy"
    fi
}
date_line() {
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
}
# Copies the table to .build/bench-results.md and prints it.
publish_results() {
    mkdir -p .build
    cp "$WORK/results.md" "$RESULTS"
    echo
    cat "$RESULTS"
    echo
    echo "(written to $RESULTS)"
}

wrk_commands_block() {
    local command
    echo "wrk commands (token elided):"
    echo
    for command in "${WRK_COMMANDS[@]}"; do
        echo "    $command"
    done | sed -E 's/(Bearer )[A-Za-z0-9_.-]+/\1<token>/g'
}
TABLE_HEADER="| what | req/s (or ops/s) | p50 | p99 | ratio to ceiling | target | server CPU per request (or op) | non-2xx / socket errors | other load (CPUs) |"

# MARK: - Build

SCRATCH=()
[[ -n $BENCH_SCRATCH_PATH ]] && SCRATCH=(--scratch-path "$BENCH_SCRATCH_PATH")
echo "== building (release)"
# With the same flags as `make build` (and the Dockerfile), so the benchmark
# measures the binary that ships and a bench leaves .build/release as make left it.
# --static-swift-stdlib applies to every product of the build, so all three get it.
PRODUCTS=(gatehouse BareHandler JOSEBenchmark)
[[ $BENCH_ONLY == cluster ]] && PRODUCTS=(gatehouse)
for product in "${PRODUCTS[@]}"; do
    "$SWIFT" build -c release --static-swift-stdlib "${SCRATCH[@]}" --product "$product"
done
BIN=$("$SWIFT" build -c release --static-swift-stdlib "${SCRATCH[@]}" --show-bin-path)
D=${BENCH_SECONDS}s

# Other load on the machine skews every figure; say so in the results.
BUSY_BEFORE=$(cpu_busy_percent)
echo "== CPU busy before the run (other processes): ${BUSY_BEFORE}%"

# MARK: - Only step 10

if [[ $BENCH_ONLY == cluster ]]; then
    run_cluster
    {
        echo "## make bench results (BENCH_ONLY=cluster: step 10 alone)"
        echo
        echo "$TABLE_HEADER"
        echo "|---|---|---|---|---|---|---|---|---|"
        cluster_rows ""
        echo
        cluster_notes
        machine_line
        date_line
        echo "- command: \`BENCH_ONLY=cluster BENCH_CLUSTER_ROUNDS=$BENCH_CLUSTER_ROUNDS BENCH_SECONDS=$BENCH_SECONDS" \
            "BENCH_CONNECTIONS=$BENCH_CONNECTIONS BENCH_LOGIN_CONNECTIONS=$BENCH_LOGIN_CONNECTIONS make bench\`"
        echo
        wrk_commands_block
    } >"$WORK/results.md"
    publish_results
    exit 0
fi

# MARK: - The ceiling: bare libmicrohttpd handler

echo "== bare handler (CPU $BENCH_SERVER_CPU, 1 thread); wrk on CPU $BENCH_CLIENT_CPU, ${BENCH_CONNECTIONS} connections, $D"
BARE_PORT=0 BARE_THREADS=1 taskset -c "$BENCH_SERVER_CPU" "$BIN/BareHandler" 2>"$WORK/bare.log" &
BARE_PID=$!
RUNNING[$BARE_PID]=BareHandler
BARE_PORT=$(wait_for_port "$BARE_PID" "$WORK/bare.log" '.*listening port=\([0-9][0-9]*\).*')
MEASURED_PID=$BARE_PID
status=$(http_status "$WORK/bare.json" "http://127.0.0.1:$BARE_PORT/")
[[ $status == 200 && $(cat "$WORK/bare.json") == '{"message":"hello"}' ]] || fail "BareHandler answered $status"
run_wrk "$WORK/bare.txt" -t1 -c"$BENCH_CONNECTIONS" -d"$D" --latency "http://127.0.0.1:$BARE_PORT/"
summary "bare GET /" "$WORK/bare.txt"
check_alive "$BARE_PID" BareHandler "$WORK/bare.log"
stop_process "$BARE_PID"

# MARK: - Gatehouse

echo "== gatehouse (CPU $BENCH_SERVER_CPU, GATEHOUSE_THREADS=1, GATEHOUSE_HASH_WORKERS=1, default Argon2 cost)"
mkdir -p "$WORK/data"
# Login rate limits off: the /login rows measure hashing throughput from one
# address, which the default limit (30 a minute) would answer with 429s.
start_gatehouse "$WORK/data" "$WORK/gatehouse.log" \
    GATEHOUSE_RATE_LOGIN_PER_IP=0 GATEHOUSE_RATE_LOGIN_PER_USERNAME=0 || fail "gatehouse did not start"
sign_in "$WORK/main" || fail "could not get a token"
AUTH="Authorization: Bearer $TOKEN"
status=$(http_status "$WORK/protected.json" "$BASE/protected" -H "$AUTH")
[[ $status == 200 ]] || fail "GET /protected answered $status: $(cat "$WORK/protected.json")"

echo "== GET /protected: wrk ${BENCH_CONNECTIONS} connections, $D"
run_wrk "$WORK/protected.txt" -t1 -c"$BENCH_CONNECTIONS" -d"$D" --latency -H "$AUTH" "$BASE/protected"
summary "GET /protected" "$WORK/protected.txt"
check_alive "$GATEHOUSE_PID" gatehouse "$WORK/gatehouse.log"

echo "== POST /login: wrk ${BENCH_LOGIN_CONNECTIONS} connections, $D"
run_wrk "$WORK/login.txt" -t1 -c"$BENCH_LOGIN_CONNECTIONS" -d"$D" --latency --timeout 10s \
    -s Benchmarks/wrk/login.lua "$BASE/login"
summary "POST /login" "$WORK/login.txt"
check_alive "$GATEHOUSE_PID" gatehouse "$WORK/gatehouse.log"

# The storm starts first and outlasts the /protected run on both sides.
STORM_SECONDS=$((BENCH_SECONDS + 2))
echo "== login storm (${BENCH_STORM_CONNECTIONS} connections, ${STORM_SECONDS}s) with GET /protected alongside" \
    "(${STORM_PROTECTED_CONNECTIONS} connections, $D)"
WRK_COMMANDS+=("$(quoted taskset -c "$BENCH_CLIENT_CPU" wrk -t1 -c"$BENCH_STORM_CONNECTIONS" -d"${STORM_SECONDS}s" \
    --latency --timeout 10s -s Benchmarks/wrk/login.lua "$BASE/login")   (in the background)")
taskset -c "$BENCH_CLIENT_CPU" wrk -t1 -c"$BENCH_STORM_CONNECTIONS" -d"${STORM_SECONDS}s" --latency --timeout 10s \
    -s Benchmarks/wrk/login.lua "$BASE/login" >"$WORK/storm.txt" 2>&1 &
STORM_PID=$!
RUNNING[$STORM_PID]="wrk login storm"
sleep 1
BACKGROUND_LOAD=1
run_wrk "$WORK/storm-protected.txt" -t1 -c"$STORM_PROTECTED_CONNECTIONS" -d"$D" --latency -H "$AUTH" \
    "$BASE/protected"
wait "$STORM_PID" || { cat "$WORK/storm.txt" >&2; fail "the login storm's wrk failed"; }
unset "RUNNING[$STORM_PID]"
echo "server_cpu_ns=- client_cpu_ns=- other_cpus=-" >"$WORK/storm.txt.cpu"
BACKGROUND_LOAD=
summary "GET /protected during the storm" "$WORK/storm-protected.txt"
summary "POST /login storm" "$WORK/storm.txt"
check_alive "$GATEHOUSE_PID" gatehouse "$WORK/gatehouse.log"

PEAK_RSS=$(rss_kib "$GATEHOUSE_PID" VmHWM)
CURRENT_RSS=$(rss_kib "$GATEHOUSE_PID" VmRSS)
echo "== gatehouse RSS: peak $(mib "$PEAK_RSS"), current $(mib "$CURRENT_RSS")"

# MARK: - Soak

SOAK_STATE=skipped
if ((BENCH_SOAK_SECONDS > 0)); then
    # Slices of 30 s; a soak shorter than a minute is cut in two, so there is
    # always a first slice to measure growth from.
    slice=30
    ((BENCH_SOAK_SECONDS < 60)) && slice=$(((BENCH_SOAK_SECONDS + 1) / 2))
    ((slice >= 1)) || slice=1
    commands_before_soak=${#WRK_COMMANDS[@]}
    echo "== soak: GET /protected, ${BENCH_CONNECTIONS} connections, ${BENCH_SOAK_SECONDS}s in slices of ${slice}s"
    remaining=$BENCH_SOAK_SECONDS
    slices=0
    SOAK_REQUESTS=0
    SOAK_NON2XX=0
    SOAK_ERRORS=0
    SOAK_CPU_NS=0
    SOAK_OTHER=0
    SOAK_FIRST_RSS=
    while ((remaining > 0 && slices < 120)); do
        length=$((remaining < slice ? remaining : slice))
        run_wrk "$WORK/soak.txt" -t1 -c"$BENCH_CONNECTIONS" -d"${length}s" --latency -H "$AUTH" "$BASE/protected"
        SOAK_REQUESTS=$((SOAK_REQUESTS + $(wrk_requests "$WORK/soak.txt")))
        SOAK_NON2XX=$((SOAK_NON2XX + $(wrk_non2xx "$WORK/soak.txt")))
        SOAK_ERRORS=$((SOAK_ERRORS + $(wrk_socket_errors "$WORK/soak.txt")))
        SOAK_CPU_NS=$((SOAK_CPU_NS + $(cpu_field "$WORK/soak.txt" server_cpu_ns)))
        SOAK_OTHER=$(awk -v a="$SOAK_OTHER" -v b="$(cpu_field "$WORK/soak.txt" other_cpus)" \
            'BEGIN { printf "%.2f", (b + 0 > a + 0) ? b : a }')
        [[ -n $SOAK_FIRST_RSS ]] || SOAK_FIRST_RSS=$(rss_kib "$GATEHOUSE_PID" VmRSS)
        remaining=$((remaining - length))
        slices=$((slices + 1))
        check_alive "$GATEHOUSE_PID" gatehouse "$WORK/gatehouse.log"
        echo "  slice $slices: $(wrk_rps "$WORK/soak.txt") req/s, RSS $(mib "$(rss_kib "$GATEHOUSE_PID" VmRSS)")"
    done
    # One line stands for all the slices.
    WRK_COMMANDS=("${WRK_COMMANDS[@]:0:commands_before_soak}")
    WRK_COMMANDS+=("$(quoted taskset -c "$BENCH_CLIENT_CPU" wrk -t1 -c"$BENCH_CONNECTIONS" -d"${slice}s" --latency \
        -H "$AUTH" "$BASE/protected")   (soak: $slices slices)")
    SOAK_LAST_RSS=$(rss_kib "$GATEHOUSE_PID" VmRSS)
    SOAK_GROWTH=$(awk -v a="$SOAK_FIRST_RSS" -v b="$SOAK_LAST_RSS" 'BEGIN { printf "%+.2f", (b - a) * 100 / a }')
    SOAK_RPS=$((SOAK_REQUESTS / BENCH_SOAK_SECONDS))
    SOAK_STATE="done"
    PEAK_RSS_AFTER_SOAK=$(rss_kib "$GATEHOUSE_PID" VmHWM)
    echo "  RSS after the first slice $(mib "$SOAK_FIRST_RSS"), at the end $(mib "$SOAK_LAST_RSS"): ${SOAK_GROWTH}%"
fi

stop_process "$GATEHOUSE_PID"
GATEHOUSE_EXIT=$STOP_STATUS
echo "== gatehouse stopped by SIGTERM: exit status $GATEHOUSE_EXIT"

# MARK: - Revocations held in memory

# The same store and token, restarted with BENCH_REVOKED more revoked sessions
# loaded into the in-memory revocation set: a token check must cost the same.
REVOKED_STATE=skipped
if ((BENCH_REVOKED > 0)); then
    echo "== GET /protected with $(grouped "$BENCH_REVOKED") revoked sessions held in memory"
    python3 Benchmarks/seed-revocations.py "$WORK/data/gatehouse.db" "$BENCH_REVOKED" | sed 's/^/  /'
    start_gatehouse "$WORK/data" "$WORK/gatehouse-revoked.log" || fail "gatehouse did not restart"
    status=$(http_status "$WORK/protected.json" "$BASE/protected" -H "$AUTH")
    [[ $status == 200 ]] || fail "GET /protected after the restart answered $status: $(cat "$WORK/protected.json")"
    run_wrk "$WORK/revoked.txt" -t1 -c"$BENCH_CONNECTIONS" -d"$D" --latency -H "$AUTH" "$BASE/protected"
    summary "GET /protected, $(grouped "$BENCH_REVOKED") revoked" "$WORK/revoked.txt"
    check_alive "$GATEHOUSE_PID" gatehouse "$WORK/gatehouse-revoked.log"
    REVOKED_RSS=$(rss_kib "$GATEHOUSE_PID" VmRSS)
    stop_process "$GATEHOUSE_PID"
    REVOKED_STATE="done"
fi

# MARK: - What counting and logging cost

# The same store and token, GET /protected three ways: metrics and the
# request log off ("off"), metrics on and the log off ("metrics"), both on
# ("on", the default: every request counted, timed and logged to the log
# file). The three alternate, round after round, so that a change of load on
# the machine falls on all of them; the medians of req/s and of server CPU
# per request are compared.
COUNTING_STATE=skipped
COUNTING_MODES=(off metrics on)
counting_settings() { # mode
    case $1 in
    off) echo GATEHOUSE_METRICS=off GATEHOUSE_ACCESS_LOG=off ;;
    metrics) echo GATEHOUSE_METRICS=on GATEHOUSE_ACCESS_LOG=off ;;
    on) echo GATEHOUSE_METRICS=on GATEHOUSE_ACCESS_LOG=on ;;
    esac
}
declare -A COUNTING_RPS=() COUNTING_CPU=() # mode -> median
if ((BENCH_AB_ROUNDS > 0)); then
    echo "== GET /protected with metrics and the request log off, metrics only, both: $BENCH_AB_ROUNDS rounds of $D each"
    for round in $(seq 1 "$BENCH_AB_ROUNDS"); do
        for mode in "${COUNTING_MODES[@]}"; do
            log="$WORK/gatehouse-counting-$mode-$round.log"
            read -r -a settings <<<"$(counting_settings "$mode")"
            start_gatehouse "$WORK/data" "$log" "${settings[@]}" || fail "gatehouse did not start with ${settings[*]}"
            status=$(http_status "$WORK/protected.json" "$BASE/protected" -H "$AUTH")
            [[ $status == 200 ]] || fail "GET /protected ($mode) answered $status: $(cat "$WORK/protected.json")"
            run_wrk "$WORK/counting-$mode-$round.txt" -t1 -c"$BENCH_CONNECTIONS" -d"$D" --latency -H "$AUTH" \
                "$BASE/protected"
            summary "GET /protected, ${settings[*]}, round $round" "$WORK/counting-$mode-$round.txt"
            check_alive "$GATEHOUSE_PID" gatehouse "$log"
            stop_process "$GATEHOUSE_PID"
        done
    done
    for mode in "${COUNTING_MODES[@]}"; do
        COUNTING_RPS[$mode]=$(for round in $(seq 1 "$BENCH_AB_ROUNDS"); do
            wrk_rps "$WORK/counting-$mode-$round.txt"; echo; done | median)
        COUNTING_CPU[$mode]=$(for round in $(seq 1 "$BENCH_AB_ROUNDS"); do
            wrk_cpu_per_request_us "$WORK/counting-$mode-$round.txt"; echo; done | grep -v '^-$' | median)
        echo "  median, $mode: ${COUNTING_RPS[$mode]} req/s, ${COUNTING_CPU[$mode]} us CPU/request"
    done
    COUNTING_STATE="done"
fi

# Time on a shared machine moves by 20% from one run to the next; the
# instructions a request executes do not. Under valgrind's callgrind, each
# mode serves 500 and then 2,500 GET /protected (ab, keep-alive, 4
# connections, one HTTP thread) in two runs; the difference of the totals
# over 2,000 is the instructions per request, start-up and shutdown cancelled
# out. The binary is copied without its debug information, which valgrind
# 3.19 cannot read (DWARF 5 forms from the C23 target).
declare -A INSTRUCTIONS=() # mode -> instructions per request
# Sets CALLGRIND_TOTAL (not a subshell: the process must stay in RUNNING).
callgrind_total() { # binary requests log settings...
    local binary=$1 requests=$2 log=$3 pid port tries=0
    shift 3
    rm -rf "$WORK/data-callgrind" "$WORK"/callgrind.out*
    mkdir -p "$WORK/data-callgrind"
    env GATEHOUSE_HOST=127.0.0.1 GATEHOUSE_PORT=0 GATEHOUSE_THREADS=1 GATEHOUSE_HASH_WORKERS=1 \
        GATEHOUSE_ARGON2_MEMORY_KIB=1024 GATEHOUSE_ARGON2_ITERATIONS=1 GATEHOUSE_DATA_DIR="$WORK/data-callgrind" "$@" \
        valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" "$binary" 2>"$log" &
    pid=$!
    RUNNING[$pid]=gatehouse-callgrind
    port=$(wait_for_port_within 60 "$pid" "$log" '.*listening.*address=[^ ]*127\.0\.0\.1:\([0-9][0-9]*\).*') ||
        fail "gatehouse under callgrind did not start"
    BASE="http://127.0.0.1:$port"
    sign_in "$WORK/callgrind" || fail "no token from gatehouse under callgrind"
    ab -q -k -n "$requests" -c 4 -H "Authorization: Bearer $TOKEN" "$BASE/protected" >"$WORK/callgrind-ab.txt" 2>&1 ||
        fail "ab failed: $(tail -n 3 "$WORK/callgrind-ab.txt")"
    grep -q "Non-2xx" "$WORK/callgrind-ab.txt" && fail "GET /protected under callgrind answered non-2xx"
    stop_process "$pid"
    CALLGRIND_TOTAL=$(awk '/^(summary|totals):/ { print $2; exit }' "$WORK"/callgrind.out*)
    [[ -n $CALLGRIND_TOTAL ]] || fail "no instruction total in callgrind's output"
}
# Instructions per request of one mode: (2,500 requests - 500 requests) / 2,000.
instructions_per_request() { # log settings...
    local log=$1 low
    shift
    callgrind_total "$WORK/gatehouse-nodebug" 500 "$log" "$@"
    low=$CALLGRIND_TOTAL
    callgrind_total "$WORK/gatehouse-nodebug" 2500 "$log" "$@"
    awk -v a="$low" -v b="$CALLGRIND_TOTAL" 'BEGIN { printf "%.0f", (b - a) / 2000 }'
}
if ((BENCH_AB_ROUNDS > 0)) && command -v valgrind >/dev/null && command -v objcopy >/dev/null; then
    echo "== instructions per GET /protected (callgrind), metrics and request log off vs on"
    objcopy --strip-debug "$BIN/gatehouse" "$WORK/gatehouse-nodebug"
    for mode in off on; do
        instructions_per_request "$WORK/callgrind-$mode.log" GATEHOUSE_METRICS="$mode" GATEHOUSE_ACCESS_LOG="$mode" \
            >"$WORK/instructions"
        INSTRUCTIONS[$mode]=$(cat "$WORK/instructions")
        echo "  $mode: ${INSTRUCTIONS[$mode]} instructions per request"
    done
    # Metrics alone (request log off), to tell the two apart.
    instructions_per_request "$WORK/callgrind-metrics.log" GATEHOUSE_ACCESS_LOG=off >"$WORK/instructions"
    INSTRUCTIONS[metrics]=$(cat "$WORK/instructions")
    echo "  metrics on, request log off: ${INSTRUCTIONS[metrics]} instructions per request"
else
    echo "== instructions per request: skipped (needs valgrind and objcopy: apt-get install valgrind binutils)"
fi

# MARK: - /auth/verify per signing algorithm

# One fresh gatehouse per algorithm (a fresh data directory, so an asymmetric
# key pair is made on start), one token, wrk on GET /auth/verify: what a
# reverse proxy's auth_request costs with each. After the first request an
# RS256/ES256/EdDSA signature comes from the signature cache (one token);
# "ES256-nocache" runs with GATEHOUSE_SIGNATURE_CACHE_SIZE=0, a full ECDSA
# verification on every request, as with many distinct tokens. An algorithm
# this gatehouse does not offer, or whose token /auth/verify refuses, gets an
# n/a row instead of stopping the run.
declare -A VERIFY_STATE=() # run -> measured, or why not
VERIFY_RUNS=("${BENCH_ALGORITHMS[@]}")
[[ " ${BENCH_ALGORITHMS[*]} " == *" ES256 "* ]] && VERIFY_RUNS+=(ES256-nocache)
for run in "${VERIFY_RUNS[@]}"; do
    algorithm=${run%-nocache}
    settings=(GATEHOUSE_SIGNING_ALG="$algorithm")
    [[ $run == *-nocache ]] && settings+=(GATEHOUSE_SIGNATURE_CACHE_SIZE=0)
    echo "== GET /auth/verify, $run (${settings[*]}): wrk ${BENCH_CONNECTIONS} connections, $D"
    mkdir -p "$WORK/data-$run"
    if ! start_gatehouse "$WORK/data-$run" "$WORK/gatehouse-$run.log" "${settings[@]}"; then
        VERIFY_STATE[$run]="did not start: $(grep -v '^\s*$' "$WORK/gatehouse-$run.log" | tail -n 1 | cut -c1-80)"
        stop_process "$GATEHOUSE_PID"
        echo "  $run: ${VERIFY_STATE[$run]}"
        continue
    fi
    if ! sign_in "$WORK/$run"; then
        VERIFY_STATE[$run]="no token"
    elif [[ $(token_alg "$TOKEN") != "$algorithm" ]]; then
        # GATEHOUSE_SIGNING_ALG not taken up: this would measure another algorithm.
        VERIFY_STATE[$run]="token signed with '$(token_alg "$TOKEN")'"
    else
        status=$(http_status /dev/null "$BASE/auth/verify" -H "Authorization: Bearer $TOKEN")
        if [[ $status == 200 ]]; then
            run_wrk "$WORK/verify-$run.txt" -t1 -c"$BENCH_CONNECTIONS" -d"$D" --latency \
                -H "Authorization: Bearer $TOKEN" "$BASE/auth/verify"
            summary "GET /auth/verify, $run" "$WORK/verify-$run.txt"
            check_alive "$GATEHOUSE_PID" gatehouse "$WORK/gatehouse-$run.log"
            VERIFY_STATE[$run]=measured
        else
            VERIFY_STATE[$run]="answered $status to a valid token"
        fi
    fi
    [[ ${VERIFY_STATE[$run]} == measured ]] || echo "  $run: not measured: ${VERIFY_STATE[$run]}"
    stop_process "$GATEHOUSE_PID"
done

# MARK: - The tutorial's own app

# What Gatehouse replaces, measured the same way: the Flask + PyJWT tutorial
# app (Benchmarks/peers/tutorial_app.py, the tutorial's code as it stands)
# under gunicorn with one sync worker, pinned to the server CPU; GET /protected
# with a token from its own /login, sent bare as the tutorial's clients do.
TUTORIAL_STATE="skipped: no .venv/bin/gunicorn (make venv)"
if [[ -x .venv/bin/gunicorn ]]; then
    echo "== the tutorial app (Flask + PyJWT, gunicorn, 1 sync worker), GET /protected: wrk ${BENCH_CONNECTIONS} connections, $D"
    taskset -c "$BENCH_SERVER_CPU" .venv/bin/gunicorn --workers 1 --bind 127.0.0.1:0 --chdir Benchmarks/peers \
        --error-logfile - tutorial_app:app 2>"$WORK/tutorial.log" &
    TUTORIAL_PID=$!
    RUNNING[$TUTORIAL_PID]=gunicorn
    MEASURED_PID=$TUTORIAL_PID
    TUTORIAL_PORT=$(wait_for_port "$TUTORIAL_PID" "$WORK/tutorial.log" '.*Listening at: http:\/\/127\.0\.0\.1:\([0-9][0-9]*\).*')
    TUTORIAL_BASE="http://127.0.0.1:$TUTORIAL_PORT"
    http_status /dev/null -X POST "$TUTORIAL_BASE/register" -H 'Content-Type: application/json' \
        -d '{"username":"testuser","password":"password123"}' >/dev/null
    status=$(http_status "$WORK/tutorial-login.json" -X POST "$TUTORIAL_BASE/login" -H 'Content-Type: application/json' \
        -d '{"username":"testuser","password":"password123"}')
    TUTORIAL_TOKEN=$(sed -n 's/.*"token":"\([^"]*\)".*/\1/p' "$WORK/tutorial-login.json")
    if [[ $status == 200 && -n $TUTORIAL_TOKEN ]] &&
        [[ $(http_status /dev/null "$TUTORIAL_BASE/protected" -H "Authorization: $TUTORIAL_TOKEN") == 200 ]]; then
        # The worker, a child of gunicorn's master, serves every request: its CPU is the server's.
        MEASURED_PID=$(pgrep -P "$TUTORIAL_PID" | head -n 1)
        # gunicorn's sync worker ends every connection after its response: wrk reconnects each time.
        run_wrk "$WORK/tutorial.txt" -t1 -c"$BENCH_CONNECTIONS" -d"$D" --latency \
            -H "Authorization: $TUTORIAL_TOKEN" "$TUTORIAL_BASE/protected"
        summary "the tutorial app, GET /protected" "$WORK/tutorial.txt"
        TUTORIAL_STATE=measured
    else
        TUTORIAL_STATE="its /login or /protected failed (login answered $status)"
        echo "  the tutorial app: not measured: $TUTORIAL_STATE"
    fi
    stop_process "$TUTORIAL_PID" # the master; its SIGTERM stops the worker too
fi

# MARK: - Two instances behind nginx, SQLite and PostgreSQL

((BENCH_CLUSTER_ROUNDS > 0)) && run_cluster

# MARK: - JOSE

echo "== JOSE micro-benchmark (CPU $BENCH_SERVER_CPU, ${BENCH_JOSE_SECONDS}s per measurement)"
MEASURED_PID=
run_accounted "$WORK/jose.txt.cpu" env JOSE_BENCH_SECONDS="$BENCH_JOSE_SECONDS" \
    taskset -c "$BENCH_SERVER_CPU" "$BIN/JOSEBenchmark" >"$WORK/jose.txt" 2>&1 ||
    { cat "$WORK/jose.txt" >&2; fail "JOSEBenchmark failed"; }
sed 's/^/  /' "$WORK/jose.txt"
echo "  other load: $(cpu_field "$WORK/jose.txt" other_cpus) CPUs"
jose() { awk -v name="$1" -v field="$2" '$1 == "jose" && $2 == name {
    for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == field) print kv[2] } }' "$WORK/jose.txt"; }

# MARK: - Table

BARE_RPS=$(wrk_rps "$WORK/bare.txt")
PROTECTED_RPS=$(wrk_rps "$WORK/protected.txt")
PROTECTED_RATIO=$(ratio "$PROTECTED_RPS" "$BARE_RPS")
STORM_P99=$(wrk_latency_ms "$WORK/storm-protected.txt" 99)
RAW_OPS=$(jose raw_hmac_sha256 ops_per_s)
RAW_NS=$(jose raw_hmac_sha256 ns_per_op)
VERIFY_NS=$(jose jwt_verify ns_per_op)
[[ -n $VERIFY_NS ]] || VERIFY_NS=$(jose jwt_verify_hs256 ns_per_op)

BARE_CPU=$(wrk_cpu_per_request_us "$WORK/bare.txt")
JOSE_OTHER=$(cpu_field "$WORK/jose.txt" other_cpus)

# Throughput ratio to the ceiling, and the same for server CPU per request
# (bare's CPU per request over this row's), which other load disturbs less.
http_ratio() { # file
    echo "$(ratio "$(wrk_rps "$1")" "$BARE_RPS")x (CPU $(ratio "$BARE_CPU" "$(wrk_cpu_per_request_us "$1")")x)"
}
row_http() { # what file ratio target
    local f=$2
    echo "| $1 | $(grouped "$(wrk_rps "$f")") | $(wrk_latency_ms "$f" 50) ms | $(wrk_latency_ms "$f" 99) ms | $3 | $4 |" \
        "$(cpu_per_request "$f") | $(wrk_non2xx "$f") / $(wrk_socket_errors "$f") | $(cpu_field "$f" other_cpus) |"
}
row_jose() { # what name target
    local ops ns
    ops=$(jose "$2" ops_per_s)
    ns=$(jose "$2" ns_per_op)
    if [[ -z $ops || -z $ns ]]; then
        echo "| $1 | n/a (no \`jose $2\` line) | - | - | - | - | - | - | - |"
        return
    fi
    echo "| $1 | $(grouped "$ops") ops/s | - | - | $(ratio "$ops" "$RAW_OPS")x | $3 | $ns ns | - | $JOSE_OTHER |"
}
verdict() { if "$@"; then echo "met"; else echo "**missed**"; fi; }
# Whether a * factor >= b: throughput a is within factor of throughput b.
within() { awk -v a="$1" -v b="$2" -v f="$3" 'BEGIN { exit !(a * f >= b && b + 0 > 0) }'; }

# The /auth/verify rows: each algorithm against the ceiling; HS256 with the
# /auth/verify target, ES256 with "within 1.5x of HS256", the others as x of HS256.
verify_rps() { [[ ${VERIFY_STATE[$1]:-} == measured ]] && wrk_rps "$WORK/verify-$1.txt"; }
HS256_VERIFY_RPS=$(verify_rps HS256 || true)
row_verify() { # run label
    local run=$1 file="$WORK/verify-$1.txt" target rps
    if [[ ${VERIFY_STATE[$run]:-} != measured ]]; then
        echo "| GET /auth/verify, $2 | n/a (${VERIFY_STATE[$run]:-not run}) | - | - | - | - | - | - | - |"
        return
    fi
    rps=$(wrk_rps "$file")
    case $run in
    HS256) target=">= 0.85x: $(verdict at_least "$(ratio "$rps" "$BARE_RPS")" 0.85)" ;;
    ES256*)
        if [[ -n $HS256_VERIFY_RPS ]]; then
            target="within 1.5x of HS256: $(verdict within "$rps" "$HS256_VERIFY_RPS" 1.5)"
            target+=" ($(ratio "$rps" "$HS256_VERIFY_RPS")x of it)"
        else
            target="within 1.5x of HS256: n/a (HS256 not measured)"
        fi
        ;;
    *) target="$(ratio "$rps" "$HS256_VERIFY_RPS")x of HS256" ;;
    esac
    row_http "GET /auth/verify, $2" "$file" "$(http_ratio "$file")" "$target"
}
VERIFY_TIME_RATIO=$(ratio "$VERIFY_NS" "$RAW_NS")

{
    echo "## make bench results"
    echo
    echo "$TABLE_HEADER"
    echo "|---|---|---|---|---|---|---|---|---|"
    row_http "bare libmicrohttpd handler, GET / (ceiling)" "$WORK/bare.txt" "1.00x" "-"
    row_http "GET /protected (Bearer)" "$WORK/protected.txt" "$(http_ratio "$WORK/protected.txt")" \
        ">= 0.85x: $(verdict at_least "$PROTECTED_RATIO" 0.85)"
    for run in "${VERIFY_RUNS[@]}"; do
        case $run in
        HS256) row_verify "$run" "HS256 (the default)" ;;
        ES256-nocache) row_verify "$run" "ES256, signature cache off (every request verified)" ;;
        *) row_verify "$run" "$run (signature cache on, the default)" ;;
        esac
    done
    if [[ $REVOKED_STATE == "done" ]]; then
        row_http "GET /protected with $(grouped "$BENCH_REVOKED") revoked sessions in memory (RSS $(mib "$REVOKED_RSS"))" \
            "$WORK/revoked.txt" "$(http_ratio "$WORK/revoked.txt")" \
            "same as /protected: $(ratio "$(wrk_rps "$WORK/revoked.txt")" "$PROTECTED_RPS")x of it"
    fi
    if [[ $COUNTING_STATE == "done" ]]; then
        # No verdict on time: two runs of one binary differ by up to 20% on
        # a shared machine. The instruction counts below decide.
        for mode in "${COUNTING_MODES[@]}"; do
            case $mode in
            off) what="metrics and request log off"; target="-" ;;
            metrics) what="metrics on, request log off"; base=off ;;
            on) what="metrics and request log on (the default)"; base=metrics ;;
            esac
            if [[ $mode != off ]]; then
                target="CPU/request $(ratio "${COUNTING_CPU[$mode]}" "${COUNTING_CPU[$base]}")x of"
                target+=" the row above's, req/s $(ratio "${COUNTING_RPS[$mode]}" "${COUNTING_RPS[$base]}")x"
            fi
            echo "| GET /protected, $what (median of $BENCH_AB_ROUNDS) |" \
                "$(grouped "${COUNTING_RPS[$mode]%.*}") | - | - | $(ratio "${COUNTING_RPS[$mode]}" "$BARE_RPS")x |" \
                "$target | ${COUNTING_CPU[$mode]} us | - | - |"
        done
    fi
    if [[ -n ${INSTRUCTIONS[on]:-} ]]; then
        added() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f%%", (a - b) * 100 / b }'; }
        echo "| instructions per GET /protected (callgrind): metrics and request log off | ${INSTRUCTIONS[off]} | - | - | - | - | - | - | - |"
        echo "| ... metrics on, request log off | ${INSTRUCTIONS[metrics]} | - | - | - |" \
            "metrics add < 2%: $(verdict below "$(ratio "${INSTRUCTIONS[metrics]}" "${INSTRUCTIONS[off]}")" 1.02)" \
            "($(added "${INSTRUCTIONS[metrics]}" "${INSTRUCTIONS[off]}")) | - | - | - |"
        echo "| ... both on (the default) | ${INSTRUCTIONS[on]} | - | - | - |" \
            "request log adds $(added "${INSTRUCTIONS[on]}" "${INSTRUCTIONS[metrics]}") | - | - | - |"
    fi
    if [[ $TUTORIAL_STATE == measured ]]; then
        row_http "the tutorial app (Flask + PyJWT, gunicorn, 1 sync worker), GET /protected" "$WORK/tutorial.txt" \
            "$(ratio "$(wrk_rps "$WORK/tutorial.txt")" "$BARE_RPS")x" \
            "Gatehouse /protected is $(ratio "$PROTECTED_RPS" "$(wrk_rps "$WORK/tutorial.txt")")x of it"
    else
        echo "| the tutorial app (Flask + PyJWT, gunicorn), GET /protected | n/a ($TUTORIAL_STATE) | - | - | - | - | - | - | - |"
    fi
    row_http "POST /login (Argon2id m=19456 KiB t=2 p=1, 1 hash worker, ${BENCH_LOGIN_CONNECTIONS} conns)" \
        "$WORK/login.txt" "-" "-"
    row_http "GET /protected (${STORM_PROTECTED_CONNECTIONS} conns) during a login storm" \
        "$WORK/storm-protected.txt" "$(ratio "$(wrk_rps "$WORK/storm-protected.txt")" "$BARE_RPS")x" \
        "p99 < 5 ms: $(verdict below "$STORM_P99" 5)"
    row_http "POST /login storm (${BENCH_STORM_CONNECTIONS} conns, alongside; non-2xx are 503s)" "$WORK/storm.txt" "-" "-"
    [[ $CLUSTER_STATE == "done" ]] && cluster_rows "$BARE_RPS"
    if [[ $SOAK_STATE == "done" ]]; then
        echo "| soak: GET /protected, ${BENCH_SOAK_SECONDS} s, ${BENCH_CONNECTIONS} conns | $(grouped "$SOAK_RPS") |" \
            "- | - | $(ratio "$SOAK_RPS" "$BARE_RPS")x | RSS growth < 5%: $(verdict below "${SOAK_GROWTH#+}" 5)" \
            "(${SOAK_GROWTH}%) | $(awk -v ns="$SOAK_CPU_NS" -v n="$SOAK_REQUESTS" 'BEGIN { printf "%.2f us", ns / n / 1000 }') |" \
            "$SOAK_NON2XX / $SOAK_ERRORS | up to $SOAK_OTHER |"
    fi
    row_jose "HMAC-SHA256, raw reused EVP_MAC_CTX (ceiling)" raw_hmac_sha256 "-"
    row_jose "HMACKey.authenticationCode" hmackey_authentication_code "-"
    row_jose "JWTSigner.sign (HS256)" jwt_sign "-"
    row_jose "JWTVerifier.verify (HS256)" jwt_verify \
        "<= 1000 ns: $(verdict below "$VERIFY_NS" 1000.01); <= 2.5x raw time: $(verdict below "$VERIFY_TIME_RATIO" 2.501) (${VERIFY_TIME_RATIO}x)"
    # Per algorithm; HS256 only if the rows above are missing. Verification
    # time is given as a multiple of HS256's.
    HS256_VERIFY_NS=$(jose jwt_verify_hs256 ns_per_op)
    [[ -n $HS256_VERIFY_NS ]] || HS256_VERIFY_NS=$VERIFY_NS
    for algorithm in hs256 rs256 es256 eddsa; do
        name=${algorithm^^}
        [[ $algorithm == eddsa ]] && name=EdDSA
        if [[ $algorithm == hs256 && -n $(jose jwt_sign ops_per_s) && -n $(jose jwt_verify ops_per_s) ]]; then
            continue
        fi
        row_jose "JWTSigner.sign ($name)" "jwt_sign_$algorithm" "-"
        row_jose "JWTVerifier.verify ($name)" "jwt_verify_$algorithm" \
            "time $(ratio "$(jose "jwt_verify_$algorithm" ns_per_op)" "$HS256_VERIFY_NS")x HS256's"
        [[ $algorithm == hs256 ]] || row_jose "JWTVerifier.verify ($name), signature cached" \
            "jwt_verify_cached_$algorithm" \
            "time $(ratio "$(jose "jwt_verify_cached_$algorithm" ns_per_op)" "$HS256_VERIFY_NS")x HS256's"
    done
    echo
    echo "- gatehouse RSS after the HTTP runs: peak (VmHWM) $(mib "$PEAK_RSS"), current (VmRSS) $(mib "$CURRENT_RSS")"
    if [[ $SOAK_STATE == "done" ]]; then
        echo "- soak RSS: $(mib "$SOAK_FIRST_RSS") after the first slice, $(mib "$SOAK_LAST_RSS") at the end" \
            "(${SOAK_GROWTH}%); peak $(mib "$PEAK_RSS_AFTER_SOAK")"
    else
        echo "- soak: skipped (BENCH_SOAK_SECONDS=0)"
    fi
    echo "- JWT: $(sed -n 's/^# token_bytes=\([0-9]*\) signing_input_bytes=\([0-9]*\).*/\1-byte token, \2-byte signing input/p' "$WORK/jose.txt"), Gatehouse-shaped claims"
    echo "- GET /auth/verify: per algorithm a fresh gatehouse (GATEHOUSE_SIGNING_ALG, fresh data directory) and" \
        "one token; with one token, RS256/ES256/EdDSA verifications after the first come from the signature cache" \
        "(GATEHOUSE_SIGNATURE_CACHE_SIZE); the cache-off row pays a full ECDSA verification on every request." \
        "Target: ES256 req/s within 1.5x of HS256's (ES256 x 1.5 >= HS256)"
    echo "- ratio to ceiling: req/s over the bare handler's (JOSE: ops/s over the raw HMAC's); (CPU ...x): the bare" \
        "handler's server CPU per request over this row's. Other load: CPUs busy with anything but the server and wrk" \
        "during the run (other processes, the hypervisor); above ~0.1 the figures are disturbed."
    echo "- servers pinned to CPU $BENCH_SERVER_CPU with one libmicrohttpd thread; wrk -t1 pinned to CPU $BENCH_CLIENT_CPU; loopback only"
    if [[ $CLUSTER_STATE == "done" ]]; then
        cluster_notes
    else
        echo "- step 10 (two instances behind nginx, SQLite and PostgreSQL): skipped (BENCH_CLUSTER_ROUNDS=0)"
    fi
    machine_line
    echo "- gatehouse exit status after SIGTERM: $GATEHOUSE_EXIT"
    date_line
    settings_line=
    for name in BENCH_SECONDS BENCH_SOAK_SECONDS BENCH_CONNECTIONS BENCH_LOGIN_CONNECTIONS BENCH_STORM_CONNECTIONS \
        BENCH_JOSE_SECONDS BENCH_REVOKED BENCH_AB_ROUNDS BENCH_CLUSTER_ROUNDS; do
        settings_line+="$name=${!name} "
    done
    echo "- command: \`${settings_line}BENCH_ALGORITHMS='${BENCH_ALGORITHMS[*]}' make bench\`"
    echo
    wrk_commands_block
} >"$WORK/results.md"

publish_results
