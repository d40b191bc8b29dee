# shellcheck shell=bash
# Step 10 of make bench, sourced by Benchmarks/bench.sh (it uses bench.sh's
# settings and helpers: RUNNING, POSTMASTER_DATA, stop_process, check_alive,
# start_gatehouse, sign_in, run_wrk, summary, median, ...): two Gatehouse
# instances behind nginx, once on the SQLite store and once on the PostgreSQL
# store (issue #9), and each instance's GET /protected on its own, which must
# not depend on the store: a token check makes no database call.
#
# What runs (all on loopback, every process by PID in RUNNING, stopped on exit):
#   - a real PostgreSQL (Debian's postgresql package): initdb and postgres as
#     the postgres system user (runuser) when root, cluster in $WORK/postgres,
#     trust authentication for the role gatehouse, durability off (fsync,
#     synchronous_commit, full_page_writes), a free loopback port;
#     pg_stat_statements loaded, to count the statements the service sends
#     while /protected is measured; one database, gatehouse_bench;
#   - SQLite pair: two instances on one data directory, so one SQLite file
#     (WAL) shared by two processes. Gatehouse supports a second process on
#     its file (every multi-step write is a BEGIN IMMEDIATE transaction, with
#     a 5 s busy timeout; each process's revocation feed reads the sessions other
#     processes end, as with `gatehouse users ...`); the README recommends
#     PostgreSQL for several instances, which is what this step compares
#     against. PostgreSQL pair: GATEHOUSE_DATABASE_URL=postgresql://...,
#     one data directory too (it holds nothing with a configured secret);
#   - each pair shares one GATEHOUSE_JWT_SECRET (checked: a token from the
#     first instance is accepted by the second), trusts 127.0.0.1 as its
#     proxy, has the login rate limits off (all /login from one address);
#   - one nginx (Debian's nginx; one process, configuration, pid, logs and
#     temp files in $WORK/nginx-<attempt>; access log off) with one server per store,
#     each proxying /protected and /login to an upstream of its two instances
#     (round robin, HTTP/1.1 keep-alive to the upstream).
#
# CPU pinning (2 cores, up to 4 busy processes): every server-side process
# (the four instances, one HTTP thread and one hash worker each, and
# PostgreSQL) on BENCH_SERVER_CPU; wrk and nginx on BENCH_CLIENT_CPU. So the
# per-instance runs are set up as step 2's (the instance alone at work on its
# core, wrk on the other) and compare across stores; through nginx the two instances of a
# pair share one core (the rows show what a pair serves through a proxy, not
# twice one instance), and nginx shares wrk's core, which usually bounds those
# rows: they tell that the pair works behind nginx with either store, at
# similar rates, not which store is faster.
#
# Noise: the stores alternate round by round (SQLite then PostgreSQL, then the
# other way round), BENCH_CLUSTER_ROUNDS rounds; per store the medians are
# compared, and the PostgreSQL/SQLite ratio of one instance's /protected is
# called "within noise" when each store's median lies inside the range of the
# other store's runs. Two measures that load does not disturb back it up: the
# statements PostgreSQL ran while its instances served /protected
# (pg_stat_statements), and the instructions per /protected request of an
# instance on each store under callgrind (needs valgrind, as step 8); and the
# CPU each instance uses while idle (its background work) is reported. Seen on
# the 2-core development machine, quiet: one process's /protected moved from
# 18k to 33k req/s between rounds, and processes of the same binary, same
# store, differed by 30-45% for their whole life, so with two instances a
# store the per-instance medians can differ by 20% for reasons that have
# nothing to do with the store; the instruction counts settle it.
#
# Settings (bench.sh validates them): BENCH_CLUSTER_ROUNDS (rounds; 0 skips
# the step), BENCH_SECONDS (each wrk run), BENCH_CONNECTIONS (/protected),
# BENCH_LOGIN_CONNECTIONS (/login), BENCH_ONLY=cluster (bench.sh runs only
# this step). With the defaults (2 rounds of 5 s runs) it takes about 2.5
# minutes, a minute of which is the two runs under callgrind.

# Globals shared with bench.sh, which sources this file (RUNNING and
# POSTMASTER_DATA are associative arrays declared there): not unused, and not
# arithmetic indices.
# shellcheck disable=SC2034,SC2004

CLUSTER_STORES=(sqlite postgres)
CLUSTER_STATE=skipped
CLUSTER_DATABASE=gatehouse_bench
declare -A CLUSTER_PID=() CLUSTER_PORT=() CLUSTER_TOKEN=() CLUSTER_NGINX_PORT=() CLUSTER_LOG=()
declare -A CLUSTER_SHARE=() # store -> share of the nginx /protected requests each instance answered
CLUSTER_STATEMENTS=0        # statements PostgreSQL ran on the service's database during the PG per-instance runs
CLUSTER_STATEMENT_REQUESTS=0

store_name() { case $1 in sqlite) echo SQLite ;; postgres) echo PostgreSQL ;; esac; }

# A free TCP port on 127.0.0.1 (the kernel's pick; another process may take
# it before it is bound: the callers retry).
free_loopback_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# MARK: - PostgreSQL

# The newest /usr/lib/postgresql/<version>/bin with initdb, postgres and psql.
postgres_bin() {
    local version bin
    for version in $(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -rn); do
        bin=/usr/lib/postgresql/$version/bin
        [[ -x $bin/initdb && -x $bin/postgres && -x $bin/psql ]] && { echo "$bin"; return 0; }
    done
    return 1
}

# psql as gatehouse on the bench's server; unaligned, tuples only, stops at the first error.
pg_sql() { # database sql
    timeout 30 "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U gatehouse -d "$1" -c "$2"
}

# Makes a cluster in $WORK/postgres and starts it on a free loopback port;
# sets PG_BIN, PG_DIR, PG_PID (runuser's, or postgres's when not root) and PG_PORT.
start_postgres() {
    PG_BIN=$(postgres_bin) || fail "PostgreSQL is not installed (make test-deps installs the postgresql package)"
    PG_DIR=$WORK/postgres
    mkdir -p "$PG_DIR"
    local as_postgres=()
    if ((EUID == 0)); then
        # PostgreSQL refuses to run as root: its directory goes to the postgres user,
        # who must be able to reach it through $WORK (mktemp's 0700).
        id postgres >/dev/null 2>&1 || fail "running as root, but there is no postgres user to run PostgreSQL as"
        chmod 711 "$WORK"
        chown postgres:postgres "$PG_DIR"
        as_postgres=(runuser -u postgres --)
    fi
    # -N: no fsync of the new cluster; C locale as in the tests (lower() folds ASCII only).
    "${as_postgres[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" --auth=trust -U gatehouse --encoding=UTF8 --locale=C -N \
        >"$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log" >&2; fail "initdb failed"; }
    local attempt tries log
    for attempt in 1 2 3 4 5; do
        PG_PORT=$(free_loopback_port)
        log=$WORK/postgres-$attempt.log
        taskset -c "$BENCH_SERVER_CPU" "${as_postgres[@]}" "$PG_BIN/postgres" -D "$PG_DIR/data" -k "$PG_DIR" \
            -h 127.0.0.1 -p "$PG_PORT" -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
            -c shared_buffers=16MB -c max_connections=100 -c log_min_messages=warning \
            -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all >"$log" 2>&1 &
        PG_PID=$!
        RUNNING[$PG_PID]=postgres
        POSTMASTER_DATA[$PG_PID]=$PG_DIR/data
        # Ready once postmaster.pid's eighth line says so.
        tries=0
        while ((tries < 600)); do
            [[ $(sed -n 8p "$PG_DIR/data/postmaster.pid" 2>/dev/null | tr -d ' ') == ready ]] && break
            kill -0 "$PG_PID" 2>/dev/null || break
            sleep 0.05
            tries=$((tries + 1))
        done
        if [[ $(sed -n 8p "$PG_DIR/data/postmaster.pid" 2>/dev/null | tr -d ' ') == ready ]] &&
            kill -0 "$PG_PID" 2>/dev/null; then
            CLUSTER_LOG[postgres]=$log
            return 0
        fi
        stop_process "$PG_PID"
        grep -q 'Address already in use' "$log" && continue
        cat "$log" >&2
        fail "PostgreSQL did not start"
    done
    fail "PostgreSQL found no free port in 5 attempts"
}

# Statements run so far on the service's database (pg_stat_statements counts
# at each statement's end, no delay; psql's own queries run in `postgres`).
pg_statements() {
    pg_sql postgres "SELECT coalesce(sum(s.calls), 0) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
        WHERE d.datname = '$CLUSTER_DATABASE'"
}

# MARK: - The instances and nginx

# Starts the two instances of a store (the first also makes the schema); sets
# CLUSTER_PID/PORT/LOG[<store>-a|b], and CLUSTER_TOKEN[<store>] from the first.
start_pair() { # store
    local store=$1 data=$WORK/cluster-$1 secret instance settings status
    mkdir -p "$data"
    secret=$(head -c 48 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    settings=(GATEHOUSE_JWT_SECRET="$secret" GATEHOUSE_TRUSTED_PROXIES=127.0.0.1
        GATEHOUSE_RATE_LOGIN_PER_IP=0 GATEHOUSE_RATE_LOGIN_PER_USERNAME=0)
    [[ $store == postgres ]] &&
        settings+=(GATEHOUSE_DATABASE_URL="postgresql://gatehouse@127.0.0.1:$PG_PORT/$CLUSTER_DATABASE")
    for instance in a b; do
        CLUSTER_LOG[$store-$instance]=$WORK/gatehouse-$store-$instance.log
        start_gatehouse "$data" "${CLUSTER_LOG[$store-$instance]}" "${settings[@]}" ||
            fail "$(store_name "$store") instance $instance did not start"
        CLUSTER_PID[$store-$instance]=$GATEHOUSE_PID
        CLUSTER_PORT[$store-$instance]=$PORT
        status=$(http_status "$WORK/readyz.json" "$BASE/readyz")
        [[ $status == 200 ]] || fail "$(store_name "$store") instance $instance: /readyz answered $status"
    done
    BASE="http://127.0.0.1:${CLUSTER_PORT[$store-a]}"
    sign_in "$WORK/cluster-$store" || fail "no token from $(store_name "$store") instance a"
    CLUSTER_TOKEN[$store]=$TOKEN
    # One secret, one store: the first instance's token is good on the second.
    status=$(http_status "$WORK/protected.json" "http://127.0.0.1:${CLUSTER_PORT[$store-b]}/protected" \
        -H "Authorization: Bearer $TOKEN")
    [[ $status == 200 ]] ||
        fail "$(store_name "$store") instance b refused instance a's token ($status): $(cat "$WORK/protected.json")"
}

nginx_upstream() { # store
    echo "    upstream gatehouse_$1 {"
    echo "        server 127.0.0.1:${CLUSTER_PORT[$1-a]};"
    echo "        server 127.0.0.1:${CLUSTER_PORT[$1-b]};"
    echo "        keepalive 64;"
    echo "        keepalive_requests 1000000;"
    echo "    }"
}
nginx_server() { # store port
    cat <<EOF
    server {
        listen 127.0.0.1:$2;
        keepalive_requests 1000000;
        # Upstream keep-alive needs HTTP/1.1 and no "Connection: close".
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host \$host;
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        location = /protected { proxy_pass http://gatehouse_$1; }
        location = /login { proxy_pass http://gatehouse_$1; }
        location / { return 404; }
    }
EOF
}

# One nginx process (daemon and master process off, so it runs as this user)
# pinned to the client CPU, a server per store; sets NGINX_PID and CLUSTER_NGINX_PORT.
start_nginx() {
    command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] ||
        fail "nginx is missing (make bench installs it: make test-deps)"
    local binary prefix attempt store tries kind user=""
    binary=$(command -v nginx || echo /usr/sbin/nginx)
    # As root, nginx would otherwise look up the user "nobody" for its workers and temp directories.
    ((EUID == 0)) && user="user $(id -un) $(id -gn);"
    for attempt in 1 2 3 4 5; do
        prefix=$WORK/nginx-$attempt
        mkdir -p "$prefix/logs" "$prefix"/temp/{client_body,proxy,fastcgi,uwsgi,scgi}
        for store in "${CLUSTER_STORES[@]}"; do CLUSTER_NGINX_PORT[$store]=$(free_loopback_port); done
        {
            echo "daemon off;"
            echo "master_process off;"
            echo "pid $prefix/nginx.pid;"
            echo "error_log $prefix/logs/error.log notice;"
            [[ -n $user ]] && echo "$user"
            echo "events { worker_connections 1024; }"
            echo "http {"
            echo "    access_log off;"
            for kind in client_body proxy fastcgi uwsgi scgi; do echo "    ${kind}_temp_path $prefix/temp/$kind;"; done
            for store in "${CLUSTER_STORES[@]}"; do
                nginx_upstream "$store"
                nginx_server "$store" "${CLUSTER_NGINX_PORT[$store]}"
            done
            echo "}"
        } >"$prefix/nginx.conf"
        taskset -c "$BENCH_CLIENT_CPU" "$binary" -p "$prefix/" -c "$prefix/nginx.conf" -e "$prefix/logs/error.log" \
            >"$prefix/logs/stderr.log" 2>&1 &
        NGINX_PID=$!
        RUNNING[$NGINX_PID]=nginx
        # Serving once the pid file names it and every port accepts.
        tries=0
        while ((tries < 200)); do
            if [[ $(cat "$prefix/nginx.pid" 2>/dev/null) == "$NGINX_PID" ]] &&
                curl -s -o /dev/null --max-time 1 "http://127.0.0.1:${CLUSTER_NGINX_PORT[sqlite]}/" &&
                curl -s -o /dev/null --max-time 1 "http://127.0.0.1:${CLUSTER_NGINX_PORT[postgres]}/"; then
                NGINX_LOG=$prefix/logs/error.log
                return 0
            fi
            kill -0 "$NGINX_PID" 2>/dev/null || break
            grep -q 'Address already in use' "$prefix/logs/error.log" 2>/dev/null && break
            sleep 0.05
            tries=$((tries + 1))
        done
        stop_process "$NGINX_PID"
        grep -q 'Address already in use' "$prefix/logs/error.log" 2>/dev/null && continue
        cat "$prefix/logs/error.log" "$prefix/logs/stderr.log" "$prefix/nginx.conf" >&2
        fail "nginx did not start"
    done
    fail "nginx found no free ports in 5 attempts"
}

# GET /protected answered 200 by an instance so far (its /metrics).
protected_served() { # port
    curl -s --max-time 10 "http://127.0.0.1:$1/metrics" |
        awk '/^gatehouse_http_requests_total\{/ && /route="\/protected"/ && /status="200"/ { n += $NF }
            END { printf "%d", n }'
}

check_pair_alive() { # store
    local instance
    for instance in a b; do
        check_alive "${CLUSTER_PID[$1-$instance]}" "$(store_name "$1") instance $instance" "${CLUSTER_LOG[$1-$instance]}"
    done
    check_alive "$NGINX_PID" nginx "$NGINX_LOG"
}

# MARK: - Measuring

# One round of one store: each instance's /protected directly, then /protected
# and /login through nginx.
measure_store() { # store round
    local store=$1 round=$2 name instance auth before_a before_b after_a after_b statements_before=
    name=$(store_name "$store")
    auth="Authorization: Bearer ${CLUSTER_TOKEN[$store]}"
    [[ $store == postgres ]] && statements_before=$(pg_statements)
    for instance in a b; do
        MEASURED_PID=${CLUSTER_PID[$store-$instance]}
        run_wrk "$WORK/cluster-$store-$instance-$round.txt" -t1 -c"$BENCH_CONNECTIONS" -d"$D" --latency -H "$auth" \
            "http://127.0.0.1:${CLUSTER_PORT[$store-$instance]}/protected"
        summary "$name, instance $instance alone, GET /protected, round $round" \
            "$WORK/cluster-$store-$instance-$round.txt"
    done
    if [[ $store == postgres ]]; then
        CLUSTER_STATEMENTS=$((CLUSTER_STATEMENTS + $(pg_statements) - statements_before))
        CLUSTER_STATEMENT_REQUESTS=$((CLUSTER_STATEMENT_REQUESTS + $(wrk_requests "$WORK/cluster-$store-a-$round.txt") +
            $(wrk_requests "$WORK/cluster-$store-b-$round.txt")))
    fi
    check_pair_alive "$store"

    before_a=$(protected_served "${CLUSTER_PORT[$store-a]}")
    before_b=$(protected_served "${CLUSTER_PORT[$store-b]}")
    MEASURED_PID="${CLUSTER_PID[$store-a]} ${CLUSTER_PID[$store-b]} $NGINX_PID"
    run_wrk "$WORK/cluster-$store-nginx-$round.txt" -t1 -c"$BENCH_CONNECTIONS" -d"$D" --latency -H "$auth" \
        "http://127.0.0.1:${CLUSTER_NGINX_PORT[$store]}/protected"
    after_a=$(protected_served "${CLUSTER_PORT[$store-a]}")
    after_b=$(protected_served "${CLUSTER_PORT[$store-b]}")
    CLUSTER_SHARE[$store-$round]=$(awk -v a="$((after_a - before_a))" -v b="$((after_b - before_b))" \
        'BEGIN { if (a + b > 0) printf "%.0f/%.0f", a * 100 / (a + b), b * 100 / (a + b); else print "-" }')
    summary "$name, both instances through nginx, GET /protected, round $round (a/b: ${CLUSTER_SHARE[$store-$round]}%)" \
        "$WORK/cluster-$store-nginx-$round.txt"
    run_wrk "$WORK/cluster-$store-login-$round.txt" -t1 -c"$BENCH_LOGIN_CONNECTIONS" -d"$D" --latency --timeout 10s \
        -s Benchmarks/wrk/login.lua "http://127.0.0.1:${CLUSTER_NGINX_PORT[$store]}/login"
    summary "$name, both instances through nginx, POST /login, round $round" "$WORK/cluster-$store-login-$round.txt"
    check_pair_alive "$store"
}

# CPU the four instances use while nobody sends them anything (their
# background work: the revocation poll every 250 ms, PostgreSQL's listener),
# over 3 s; in CLUSTER_IDLE[<store>-a|b], microseconds per second.
declare -A CLUSTER_IDLE=()
measure_idle() {
    local key before=() after=() keys=() i
    for key in sqlite-a sqlite-b postgres-a postgres-b; do
        keys+=("$key")
        before+=("$(process_cpu_ns "${CLUSTER_PID[$key]}")")
    done
    sleep 3
    for key in "${keys[@]}"; do after+=("$(process_cpu_ns "${CLUSTER_PID[$key]}")"); done
    for i in "${!keys[@]}"; do
        CLUSTER_IDLE[${keys[$i]}]=$(awk -v a="${before[$i]}" -v b="${after[$i]}" 'BEGIN { printf "%.0f", (b - a) / 3 / 1000 }')
    done
    echo "  idle CPU (background work), us per second: SQLite a ${CLUSTER_IDLE[sqlite-a]}, b ${CLUSTER_IDLE[sqlite-b]};" \
        "PostgreSQL a ${CLUSTER_IDLE[postgres-a]}, b ${CLUSTER_IDLE[postgres-b]}"
}

# Instructions per GET /protected under valgrind's callgrind, which the load
# on the machine does not change: one instance on SQLite, one on PostgreSQL
# (a database of its own), each started under callgrind, signed in, its
# counters zeroed (callgrind_control -z), 2,000 requests (ab, keep-alive, 4
# connections), its counters dumped (-d): that dump is the 2,000 requests
# alone, start-up and sign-in left out. Both with
# GATEHOUSE_REVOCATION_POLL_MS=60000 so that the poll, whose count grows with
# the time a run takes under valgrind (~50x slower), does not pass for
# per-request work (measure_idle shows what it costs). As in step 8, the binary
# is copied without debug information, which valgrind 3.19 cannot read.
declare -A CLUSTER_INSTRUCTIONS=()
CALLGRIND_REQUESTS=2000
measure_instructions() {
    local store settings pid cg_port log dump
    if ! command -v valgrind >/dev/null || ! command -v callgrind_control >/dev/null ||
        ! command -v objcopy >/dev/null || ! command -v ab >/dev/null; then
        echo "  instructions per request: skipped (needs valgrind, objcopy and ab: make bench installs them)"
        return 0
    fi
    echo "== instructions per GET /protected (callgrind), one instance on SQLite, one on PostgreSQL"
    [[ -f $WORK/gatehouse-nodebug ]] || objcopy --strip-debug "$BIN/gatehouse" "$WORK/gatehouse-nodebug"
    pg_sql postgres "CREATE DATABASE gatehouse_callgrind" >/dev/null
    for store in "${CLUSTER_STORES[@]}"; do
        settings=(GATEHOUSE_REVOCATION_POLL_MS=60000)
        [[ $store == postgres ]] &&
            settings+=(GATEHOUSE_DATABASE_URL="postgresql://gatehouse@127.0.0.1:$PG_PORT/gatehouse_callgrind")
        mkdir -p "$WORK/data-callgrind-$store"
        log=$WORK/callgrind-$store.log
        env GATEHOUSE_HOST=127.0.0.1 GATEHOUSE_PORT=0 GATEHOUSE_THREADS=1 GATEHOUSE_HASH_WORKERS=1 \
            GATEHOUSE_ARGON2_MEMORY_KIB=1024 GATEHOUSE_ARGON2_ITERATIONS=1 \
            GATEHOUSE_DATA_DIR="$WORK/data-callgrind-$store" "${settings[@]}" \
            valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind-$store.out" "$WORK/gatehouse-nodebug" \
            2>"$log" &
        pid=$!
        RUNNING[$pid]=gatehouse-callgrind
        cg_port=$(wait_for_port_within 60 "$pid" "$log" '.*listening.*address=[^ ]*127\.0\.0\.1:\([0-9][0-9]*\).*') ||
            fail "gatehouse under callgrind ($store) did not start"
        BASE="http://127.0.0.1:$cg_port"
        sign_in "$WORK/callgrind-$store" || fail "no token from gatehouse under callgrind ($store)"
        callgrind_control -z "$pid" >/dev/null || fail "callgrind_control -z $pid failed"
        ab -q -k -n "$CALLGRIND_REQUESTS" -c 4 -H "Authorization: Bearer $TOKEN" "$BASE/protected" \
            >"$WORK/callgrind-ab.txt" 2>&1 || fail "ab failed: $(tail -n 3 "$WORK/callgrind-ab.txt")"
        grep -q "Non-2xx" "$WORK/callgrind-ab.txt" && fail "GET /protected under callgrind ($store) answered non-2xx"
        callgrind_control -d "$pid" >/dev/null || fail "callgrind_control -d $pid failed"
        stop_process "$pid"
        # The dump is <out>.1; <out> itself is what ran after it (shutdown).
        dump=$(awk '/^(summary|totals):/ { print $2; exit }' "$WORK/callgrind-$store.out.1" 2>/dev/null || true)
        [[ -n $dump ]] || fail "no instruction total in callgrind's dump ($store)"
        CLUSTER_INSTRUCTIONS[$store]=$(awk -v n="$dump" -v r="$CALLGRIND_REQUESTS" 'BEGIN { printf "%.0f", n / r }')
        echo "  $(store_name "$store"): ${CLUSTER_INSTRUCTIONS[$store]} instructions per request"
    done
}

# The whole step: start everything, BENCH_CLUSTER_ROUNDS alternating rounds,
# stop everything (also stopped by bench.sh's exit trap when anything fails).
run_cluster() {
    echo "== two instances behind nginx, SQLite and PostgreSQL: instances and PostgreSQL on CPU $BENCH_SERVER_CPU," \
        "nginx and wrk on CPU $BENCH_CLIENT_CPU; $BENCH_CLUSTER_ROUNDS rounds of $D runs"
    local commands_before=${#WRK_COMMANDS[@]} round store order pid status
    start_postgres
    pg_sql postgres "CREATE DATABASE $CLUSTER_DATABASE" >/dev/null
    pg_sql postgres "CREATE EXTENSION pg_stat_statements" >/dev/null
    echo "  PostgreSQL $(pg_sql postgres 'SHOW server_version') on 127.0.0.1:$PG_PORT (pid $PG_PID)"
    for store in "${CLUSTER_STORES[@]}"; do start_pair "$store"; done
    # Both PostgreSQL instances really are on it: one revocation listener each.
    status=$(pg_sql postgres "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'gatehouse-listener'")
    [[ $status == 2 ]] || fail "expected 2 gatehouse-listener connections to PostgreSQL, found $status"
    start_nginx
    for store in "${CLUSTER_STORES[@]}"; do
        status=$(http_status "$WORK/protected.json" "http://127.0.0.1:${CLUSTER_NGINX_PORT[$store]}/protected" \
            -H "Authorization: Bearer ${CLUSTER_TOKEN[$store]}")
        [[ $status == 200 ]] || fail "GET /protected through nginx ($store) answered $status: $(cat "$WORK/protected.json")"
        status=$(http_status "$WORK/login.json" -X POST "http://127.0.0.1:${CLUSTER_NGINX_PORT[$store]}/login" \
            -H 'Content-Type: application/json' -d "$CREDENTIALS")
        [[ $status == 200 ]] || fail "POST /login through nginx ($store) answered $status: $(cat "$WORK/login.json")"
    done
    measure_idle
    for round in $(seq 1 "$BENCH_CLUSTER_ROUNDS"); do
        order=("${CLUSTER_STORES[@]}")
        ((round % 2 == 0)) && order=(postgres sqlite)
        for store in "${order[@]}"; do measure_store "$store" "$round"; done
    done
    MEASURED_PID=
    # nginx, then the instances, then PostgreSQL, which must outlive its clients.
    stop_process "$NGINX_PID"
    for store in "${CLUSTER_STORES[@]}"; do
        for pid in "${CLUSTER_PID[$store-a]}" "${CLUSTER_PID[$store-b]}"; do
            stop_process "$pid"
            ((STOP_STATUS == 0)) || echo "  $(store_name "$store") instance (pid $pid): exit status $STOP_STATUS" >&2
        done
    done
    measure_instructions
    stop_process "$PG_PID"
    ((STOP_STATUS == 0)) || echo "  PostgreSQL (pid $PG_PID) did not stop cleanly on SIGINT: exit status $STOP_STATUS" >&2
    # One line per kind of run instead of one per run.
    WRK_COMMANDS=("${WRK_COMMANDS[@]:0:commands_before}")
    WRK_COMMANDS+=("$(quoted taskset -c "$BENCH_CLIENT_CPU" wrk -t1 -c"$BENCH_CONNECTIONS" -d"$D" --latency \
        -H "Authorization: Bearer <token>" "http://127.0.0.1:<instance>/protected")   (step 10: each instance, each store, $BENCH_CLUSTER_ROUNDS rounds)")
    WRK_COMMANDS+=("$(quoted taskset -c "$BENCH_CLIENT_CPU" wrk -t1 -c"$BENCH_CONNECTIONS" -d"$D" --latency \
        -H "Authorization: Bearer <token>" "http://127.0.0.1:<nginx>/protected")   (step 10: each store, $BENCH_CLUSTER_ROUNDS rounds)")
    WRK_COMMANDS+=("$(quoted taskset -c "$BENCH_CLIENT_CPU" wrk -t1 -c"$BENCH_LOGIN_CONNECTIONS" -d"$D" --latency \
        --timeout 10s -s Benchmarks/wrk/login.lua "http://127.0.0.1:<nginx>/login")   (step 10: each store, $BENCH_CLUSTER_ROUNDS rounds)")
    cluster_summarize
    CLUSTER_STATE="done"
}

# MARK: - Results

# The runs of one kind: "<store>-a <store>-b" (per instance), "<store>-nginx", "<store>-login".
cluster_files() { # kinds...
    local kind round
    for round in $(seq 1 "$BENCH_CLUSTER_ROUNDS"); do
        for kind in "$@"; do echo "$WORK/cluster-$kind-$round.txt"; done
    done
}
files_median() { # function files... (median of what function prints for each file, "-" values left out)
    local fn=$1 file
    shift
    for file in "$@"; do
        "$fn" "$file"
        echo
    done | grep -v -e '^-$' -e '^$' | median
}
p50_of() { wrk_latency_ms "$1" 50; }
p99_of() { wrk_latency_ms "$1" 99; }
other_of() { cpu_field "$1" other_cpus; }
files_sorted() { # function files...: each file's value, those there are, smallest first
    local fn=$1 file
    shift
    for file in "$@"; do
        "$fn" "$file"
        echo
    done | grep -v -e '^-$' -e '^$' | sort -g
}
files_max() { files_sorted "$@" | tail -n 1; }
files_min() { files_sorted "$@" | head -n 1; }
files_sum() { # function files...
    local fn=$1 file n=0
    shift
    for file in "$@"; do n=$((n + $("$fn" "$file"))); done
    echo "$n"
}
# Half the range of a store's runs, in % of their median: the run-to-run noise.
spread() { # store-kind
    awk -v l="${CLUSTER_MIN[$1]}" -v h="${CLUSTER_MAX[$1]}" -v m="${CLUSTER_RPS[$1]}" \
        'BEGIN { if (m + 0 > 0) printf "%.0f", (h - l) * 50 / m; else print "-" }'
}

declare -A CLUSTER_RPS=() CLUSTER_CPU=() CLUSTER_MIN=() CLUSTER_MAX=() # <store>-<kind> -> figure
cluster_summarize() {
    local store files kind
    for store in "${CLUSTER_STORES[@]}"; do
        for kind in instance nginx login; do
            if [[ $kind == instance ]]; then
                mapfile -t files < <(cluster_files "$store-a" "$store-b")
            else
                mapfile -t files < <(cluster_files "$store-$kind")
            fi
            CLUSTER_RPS[$store-$kind]=$(files_median wrk_rps "${files[@]}")
            CLUSTER_CPU[$store-$kind]=$(files_median wrk_cpu_per_request_us "${files[@]}")
            CLUSTER_MIN[$store-$kind]=$(files_min wrk_rps "${files[@]}")
            CLUSTER_MAX[$store-$kind]=$(files_max wrk_rps "${files[@]}")
        done
        echo "  $(store_name "$store"): one instance alone ${CLUSTER_RPS[$store-instance]} req/s" \
            "(runs ${CLUSTER_MIN[$store-instance]}-${CLUSTER_MAX[$store-instance]}), ${CLUSTER_CPU[$store-instance]} us CPU/request;" \
            "through nginx ${CLUSTER_RPS[$store-nginx]} req/s; POST /login ${CLUSTER_RPS[$store-login]} req/s (medians)"
    done
    CLUSTER_RATIO=$(ratio "${CLUSTER_RPS[postgres-instance]}" "${CLUSTER_RPS[sqlite-instance]}")
    CLUSTER_CPU_RATIO=$(ratio "${CLUSTER_CPU[postgres-instance]}" "${CLUSTER_CPU[sqlite-instance]}")
    # Within noise unless every run of one store beat every run of the other.
    if below "${CLUSTER_MAX[postgres-instance]}" "${CLUSTER_MIN[sqlite-instance]}"; then
        CLUSTER_VERDICT="**not within noise**: every PostgreSQL run slower than every SQLite run"
    elif below "${CLUSTER_MAX[sqlite-instance]}" "${CLUSTER_MIN[postgres-instance]}"; then
        CLUSTER_VERDICT="**not within noise**: every PostgreSQL run faster than every SQLite run"
    else
        CLUSTER_VERDICT="same within noise"
    fi
    echo "  one instance's GET /protected, PostgreSQL/SQLite: ${CLUSTER_RATIO}x req/s, ${CLUSTER_CPU_RATIO}x CPU/request:" \
        "${CLUSTER_VERDICT//\*/}; $CLUSTER_STATEMENTS statements on the database during"\
        "$(grouped "$CLUSTER_STATEMENT_REQUESTS") PostgreSQL per-instance requests"
}

# The table rows (bench.sh's nine columns); the ceiling's req/s, or empty.
cluster_rows() { # ceiling-rps
    local ceiling=$1 store kind what files target n=$BENCH_CLUSTER_ROUNDS
    for kind in nginx login instance; do
        for store in "${CLUSTER_STORES[@]}"; do
            case $kind in
            nginx)
                what="two instances behind nginx, $(store_name "$store"), GET /protected (median of $n)"
                mapfile -t files < <(cluster_files "$store-nginx")
                ;;
            login)
                what="two instances behind nginx, $(store_name "$store"), POST /login (${BENCH_LOGIN_CONNECTIONS} conns, median of $n)"
                mapfile -t files < <(cluster_files "$store-login")
                ;;
            instance)
                what="one of the two instances alone, $(store_name "$store"), GET /protected (median of $((2 * n)): each instance, $n rounds)"
                mapfile -t files < <(cluster_files "$store-a" "$store-b")
                ;;
            esac
            target="-"
            if [[ $store == postgres ]]; then
                target="$(ratio "${CLUSTER_RPS[postgres-$kind]}" "${CLUSTER_RPS[sqlite-$kind]}")x SQLite's"
                [[ $kind == instance ]] &&
                    target="same as SQLite: $CLUSTER_VERDICT (${CLUSTER_RATIO}x req/s, CPU/request ${CLUSTER_CPU_RATIO}x)"
            fi
            echo "| $what | $(grouped "${CLUSTER_RPS[$store-$kind]%.*}") | $(files_median p50_of "${files[@]}") ms |" \
                "$(files_median p99_of "${files[@]}") ms |" \
                "$([[ -n $ceiling && $kind != login ]] && echo "$(ratio "${CLUSTER_RPS[$store-$kind]}" "$ceiling")x" || echo -) |" \
                "$target | $(awk -v us="${CLUSTER_CPU[$store-$kind]}" 'BEGIN { if (us == "" || us == "-") print "-"; else if (us >= 1000) printf "%.1f ms", us / 1000; else printf "%.2f us", us }') |" \
                "$(files_sum wrk_non2xx "${files[@]}") / $(files_sum wrk_socket_errors "${files[@]}") |" \
                "up to $(files_max other_of "${files[@]}") |"
        done
    done
    if [[ -n ${CLUSTER_INSTRUCTIONS[postgres]:-} ]]; then
        echo "| instructions per GET /protected (callgrind), one instance, SQLite | ${CLUSTER_INSTRUCTIONS[sqlite]} |" \
            "- | - | - | - | - | - | - |"
        local change
        change=$(awk -v a="${CLUSTER_INSTRUCTIONS[postgres]}" -v b="${CLUSTER_INSTRUCTIONS[sqlite]}" \
            'BEGIN { printf "%+.1f", (a - b) * 100 / b }')
        echo "| instructions per GET /protected (callgrind), one instance, PostgreSQL | ${CLUSTER_INSTRUCTIONS[postgres]} |" \
            "- | - | - | same as SQLite within 2%: $(below "${change#[+-]}" 2 && echo met || echo '**missed**')" \
            "(${change}%) | - | - | - |"
    fi
}

cluster_notes() {
    local store shares round
    echo "- step 10 (two instances behind nginx): each store's pair on one data directory with one" \
        "GATEHOUSE_JWT_SECRET (SQLite: one shared gatehouse.db; PostgreSQL $(pg_version_text):" \
        "GATEHOUSE_DATABASE_URL, fsync off); nginx $(nginx_version_text), one process, upstream keep-alive," \
        "round robin. Pinning: the four instances (1 HTTP thread, 1 hash worker each) and PostgreSQL on CPU" \
        "$BENCH_SERVER_CPU, nginx and wrk on CPU $BENCH_CLIENT_CPU: through nginx, a pair shares one core and nginx" \
        "shares wrk's, so those rows are not twice one instance. CPU per request: nginx's and both instances' for" \
        "the nginx rows; the instance's for the per-instance rows. Stores alternate round by round; medians."
    for store in "${CLUSTER_STORES[@]}"; do
        shares=
        for round in $(seq 1 "$BENCH_CLUSTER_ROUNDS"); do shares+="${shares:+, }${CLUSTER_SHARE[$store-$round]}"; done
        echo "- step 10, $(store_name "$store"): one instance alone $(grouped "${CLUSTER_RPS[$store-instance]%.*}") req/s" \
            "(runs $(grouped "${CLUSTER_MIN[$store-instance]}")-$(grouped "${CLUSTER_MAX[$store-instance]}"));" \
            "through nginx, % of GET /protected answered by instance a/b, per round: $shares"
    done
    echo "- step 10, PostgreSQL/SQLite for one instance's GET /protected: ${CLUSTER_RATIO}x req/s, ${CLUSTER_CPU_RATIO}x" \
        "CPU per request: $CLUSTER_VERDICT (\"within noise\": the two stores' ranges of runs overlap; run-to-run" \
        "noise, half the range over the median: SQLite ±$(spread sqlite-instance)%, PostgreSQL" \
        "±$(spread postgres-instance)%). PostgreSQL ran $CLUSTER_STATEMENTS statements on the service's database during the" \
        "PostgreSQL per-instance runs, which served $(grouped "$CLUSTER_STATEMENT_REQUESTS") requests" \
        "(pg_stat_statements; the revocation polls, about 4 a second per instance, are among them): a token" \
        "check makes no database call"
    echo "- step 10, CPU of each instance while idle (revocation poll every 250 ms; PostgreSQL: and its listener)," \
        "us per second: SQLite a ${CLUSTER_IDLE[sqlite-a]}, b ${CLUSTER_IDLE[sqlite-b]}; PostgreSQL" \
        "a ${CLUSTER_IDLE[postgres-a]}, b ${CLUSTER_IDLE[postgres-b]}"
    if [[ -n ${CLUSTER_INSTRUCTIONS[postgres]:-} ]]; then
        echo "- step 10, instructions per GET /protected (callgrind: counters zeroed after sign-in, dumped after" \
            "$(grouped "$CALLGRIND_REQUESTS") requests; load-independent; revocation poll slowed to 60 s so that only" \
            "per-request work counts): SQLite ${CLUSTER_INSTRUCTIONS[sqlite]}, PostgreSQL ${CLUSTER_INSTRUCTIONS[postgres]}"
    else
        echo "- step 10, instructions per request: not measured (needs valgrind, objcopy and ab)"
    fi
}
pg_version_text() { "$PG_BIN/postgres" --version 2>/dev/null | awk '{ print $3 }'; }
nginx_version_text() { nginx -v 2>&1 | sed 's|.*nginx/||'; }
