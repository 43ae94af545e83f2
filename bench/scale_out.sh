# Sourced by bench/run: the `scale_out` section. The hub on the back ends
# several instances share, PostgreSQL (a cluster of Debian's PostgreSQL 15
# started here, in a folder of its own, fsync on) and an S3-compatible store
# (s3s-fs, as the tests use), with one and two `sealdrop-hub serve`
# instances, next to the embedded SQLite and files: many small drops, and
# one large file sent and fetched.

PG_BIN="${SEALDROP_PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_ROOT=""
PG_PORT=""
S3_PID=""
S3_ENDPOINT=""
S3_KEY=bench-key
S3_SECRET=bench-secret
S3_BUCKET=bench
HUB2_PID=""
HUB2_ADDR=""

# free_port: a TCP port on 127.0.0.1 nobody listens on.
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 30000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || {
            echo "$p"
            return
        }
    done
}

# as_pg CMD...: runs a PostgreSQL program, as the `postgres` user when root
# (PostgreSQL refuses to run as root).
as_pg() {
    if [[ "$(id -u)" == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# start_pg: a new cluster in a folder of its own under /tmp (the bench's
# folder is private to its user, and the server runs as `postgres` when
# root), on a free port; sets PG_ROOT and PG_PORT.
start_pg() {
    [[ -x "$PG_BIN/initdb" ]] || apt_install postgresql
    PG_ROOT="$(mktemp -d "${TMPDIR:-/tmp}/sealdrop-bench-pg.XXXXXX")"
    [[ "$(id -u)" != 0 ]] || chown -R postgres: "$PG_ROOT"
    as_pg "$PG_BIN/initdb" -A trust -U postgres -E UTF8 --locale C -D "$PG_ROOT/data" >"$PG_ROOT/initdb.log" 2>&1 ||
        die "initdb failed: $(tail -n 3 "$PG_ROOT/initdb.log")"
    PG_PORT="$(free_port)"
    as_pg "$PG_BIN/pg_ctl" start -w -t 60 -D "$PG_ROOT/data" -l "$PG_ROOT/server.log" \
        -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$PG_ROOT -c max_connections=200" \
        >/dev/null || die "PostgreSQL did not start: $(tail -n 5 "$PG_ROOT/server.log")"
}

stop_pg() {
    [[ -n "$PG_ROOT" ]] || return 0
    as_pg "$PG_BIN/pg_ctl" stop -m fast -D "$PG_ROOT/data" >/dev/null 2>&1 || true
    rm -rf "$PG_ROOT"
    PG_ROOT=""
}

# new_database NAME: creates it and prints its URL.
new_database() {
    as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres "$1" || die "createdb $1 failed"
    echo "postgres://postgres@127.0.0.1:$PG_PORT/$1"
}

# start_s3 DIR: s3s-fs serving DIR/s3 (bucket $S3_BUCKET); sets S3_ENDPOINT.
start_s3() {
    command -v s3s-fs >/dev/null || die "s3s-fs is not installed: cargo install s3s-fs --version 0.14.1 --locked --features binary"
    mkdir -p "$1/s3/$S3_BUCKET"
    RUST_LOG=s3s_fs=info NO_COLOR=1 s3s-fs --host 127.0.0.1 --port 0 --access-key "$S3_KEY" --secret-key "$S3_SECRET" \
        "$1/s3" </dev/null >"$1/s3.log" 2>&1 &
    S3_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        S3_ENDPOINT="$(sed -n 's|.*server is running at \(http://[0-9.:]*\).*|\1|p' "$1/s3.log" | head -n 1)"
        [[ -n "$S3_ENDPOINT" ]] && return 0
        sleep 0.1
    done
    die "s3s-fs did not start: $(tail -n 3 "$1/s3.log")"
}

stop_s3() {
    [[ -n "$S3_PID" ]] || return 0
    kill "$S3_PID" 2>/dev/null || true
    wait "$S3_PID" 2>/dev/null || true
    S3_PID=""
}

# shared_env DATABASE PREFIX: sets HUB_ENV to a hub on DATABASE and the
# bucket's PREFIX (`files`: files in the data directory instead).
shared_env() {
    local blobs="s3://$S3_BUCKET/$2"
    [[ "$2" == files ]] && blobs=files
    HUB_ENV=(SEALDROP_HUB_DATABASE="$1" SEALDROP_HUB_BLOBS="$blobs" AWS_ENDPOINT_URL="$S3_ENDPOINT"
        AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID="$S3_KEY" AWS_SECRET_ACCESS_KEY="$S3_SECRET" AWS_ALLOW_HTTP=true)
}

# start_second_instance DIR ARGS...: a second `serve` of the hub start_hub
# started on the shared back ends (HUB_ENV), with a data directory of its own
# holding a copy of the log key; sets HUB2_PID and HUB2_ADDR.
start_second_instance() {
    local d="$1" i
    shift
    mkdir -p "$d/hub2"
    install -m 0600 "$HUB_DATA/log.key" "$d/hub2/log.key"
    env "${HUB_ENV[@]}" "$REL/sealdrop-hub" serve --data "$d/hub2" --listen 127.0.0.1:0 "$@" \
        </dev/null >"$d/hub2.out" 2>"$d/hub2.log" &
    HUB2_PID=$!
    for ((i = 0; i < 100; i++)); do
        HUB2_ADDR="$(head -n 1 "$d/hub2.out" 2>/dev/null || true)"
        [[ "$HUB2_ADDR" == 127.0.0.1:* ]] && return 0
        kill -0 "$HUB2_PID" 2>/dev/null || die "the second instance exited at start: $(tail -n 5 "$d/hub2.log")"
        sleep 0.1
    done
    die "the second instance printed no address in 10 s"
}

stop_second_instance() {
    [[ -n "$HUB2_PID" ]] || return 0
    kill -TERM "$HUB2_PID" 2>/dev/null || true
    wait "$HUB2_PID" 2>/dev/null || true
    HUB2_PID=""
    HUB2_ADDR=""
}

# hubs_cpu_jiffies: CPU time of both instances (or the one).
hubs_cpu_jiffies() {
    local total stat
    total="$(hub_cpu_jiffies)"
    if [[ -n "$HUB2_PID" ]]; then
        stat="$(cat "/proc/$HUB2_PID/stat")"
        stat="${stat##*) }"
        total=$((total + $(awk '{ print $12 + $13 }' <<<"$stat")))
    fi
    echo "$total"
}

# scale_out_start CONFIG DIR NAME: a hub as CONFIG says: `embedded` (SQLite
# and files), `pgfiles` (PostgreSQL, and files in the data directory),
# `shared1` (PostgreSQL and s3s-fs, one instance) or `shared2` (two
# instances); NAME names its database and bucket prefix. Sets HUB_URLS
# (the instances' URLs, comma-separated).
scale_out_start() {
    local config="$1" d="$2" name="$3"
    HUB_ENV=()
    case "$config" in
    embedded) ;;
    pgfiles) shared_env "$(new_database "$name")" files ;;
    *) shared_env "$(new_database "$name")" "$name" ;;
    esac
    start_hub "$d" --max-connections-per-address 256
    HUB_URLS="http://$HUB_ADDR"
    if [[ "$config" == shared2 ]]; then
        start_second_instance "$d" --max-connections-per-address 256
        HUB_URLS="$HUB_URLS,http://$HUB2_ADDR"
    fi
}

scale_out_stop() {
    stop_second_instance
    stop_hub
    HUB_ENV=()
}

section_scale_out() {
    local per="${BENCH_SMALL_PER_SENDER:-100}" senders=32 mib="${BENCH_SCALE_MIB:-256}" d="$WORK/scale_out"
    # s3s-fs answers a listing by walking its whole bucket, so its cost per
    # drop grows with the drops stored: fewer drops keep its rounds short.
    local s3_per="${BENCH_SCALE_S3_PER_SENDER:-20}"
    local config r line rate h0 h1 id n=0 count
    mkdir -p "$d"
    start_pg
    start_s3 "$d"
    "$REL/small-drops" make-files --files "$d/files" --count $((senders * per)) --size 4096
    make_input "$d/input.bin" "$mib"
    local -A RATES=() CPU=() SEND=() FETCH=()
    for ((r = 0; r <= RUNS; r++)); do
        for config in embedded pgfiles shared1 shared2; do
            n=$((n + 1))
            count="$per"
            [[ "$config" == shared* ]] && count="$s3_per"
            scale_out_start "$config" "$d/run-$n" "bench_$n"
            sync
            wait_quiet
            h0="$(hubs_cpu_jiffies)"
            line="$("$REL/small-drops" sealdrop --hub "$HUB_URLS" --keys "$ROOT/keys-example/parties" \
                --authority "$ROOT/keys-example/authority.pub" --state "$d/run-$n/state" --files "$d/files" \
                --senders "$senders" --drops-per-sender "$count" 2>"$d/sd.err")" ||
                die "scale_out: $config: $(tail -n 3 "$d/sd.err")"
            h1="$(hubs_cpu_jiffies)"
            rate="$(sed -n 's/.*"per_second": \([0-9.]*\).*/\1/p' <<<"$line")"
            # A large file: sent through the first instance, fetched through the last.
            sync
            wait_quiet
            client_cmd camden "$d/run-$n/camden" SEALDROP_RESUME_MIN_BYTES=8388608
            line="$(timed "$d/send.json" "${CMD[@]}" send --to barnet -q --json "$d/input.bin")" ||
                die "scale_out: $config: sealdrop send failed"
            local send_wall fetch_wall
            send_wall="$(field "$line" 1)"
            id="$(sed -n 's/.*"id": *"\(d-[a-z0-9]*\)".*/\1/p' "$d/send.json")"
            [[ -n "$HUB2_ADDR" ]] && HUB_ADDR="$HUB2_ADDR"
            mkdir -p "$d/run-$n/out"
            sync
            wait_quiet
            client_cmd barnet "$d/run-$n/barnet" SEALDROP_RESUME_MIN_BYTES=8388608
            line="$(timed /dev/null "${CMD[@]}" fetch -q -o "$d/run-$n/out" "$id")" ||
                die "scale_out: $config: sealdrop fetch failed"
            fetch_wall="$(field "$line" 1)"
            cmp -s "$d/run-$n/out/input.bin" "$d/input.bin" || die "scale_out: $config: the fetched file differs"
            scale_out_stop
            rm -rf "$d/run-$n/out" "$d/run-$n/hub"
            if ((r == 0)); then
                log "scale_out: warm-up: $config: $rate drops/s"
                continue
            fi
            RATES[$config]+="$rate "
            CPU[$config]+="$(awk -v j="$((h1 - h0))" -v hz="$HZ" -v n="$((senders * count))" 'BEGIN { printf "%.2f", j / hz * 1000 / n }') "
            SEND[$config]+="$send_wall "
            FETCH[$config]+="$fetch_wall "
            log "scale_out: round $r/$RUNS: $config: $rate drops/s, send ${send_wall} s, fetch ${fetch_wall} s"
        done
    done
    stop_s3
    stop_pg
    list() { printf '%s, ' "$@" | sed 's/, $//'; }
    rate_of() { awk -v m="$mib" -v w="$1" 'BEGIN { printf "%.0f MiB/s", m / w }'; }
    echo "### scale out: PostgreSQL and an object store, one and two instances"
    echo
    echo "The hub on SQLite and files (\"embedded\"); on PostgreSQL 15 (a local cluster, fsync and synchronous_commit on) with files"
    echo "(\"PG + files\", one instance); and on PostgreSQL with s3s-fs $(s3s-fs --version 2>/dev/null | awk '{ print $2 }') for every ciphertext, with one instance and"
    echo "with two (\`sealdrop-hub serve\` twice on one database and bucket). Small drops: as in \"many small drops\" (32 senders,"
    echo "4 KiB files, spread over the instances), $per drops per sender, but $s3_per with s3s-fs: s3s-fs answers every listing by"
    echo "walking its whole bucket (\`list_objects_recursive\`), so its cost per drop grows with the drops stored and it, not the hub,"
    echo "bounds those columns (an indexed store such as S3 or MinIO lists a prefix directly). Large: \`sealdrop send\` of one ${mib} MiB"
    echo "file through the first instance and \`sealdrop fetch\` of it through the last (resumable, as users run them). Everything"
    echo "(hubs, database, object store, clients) shares the machine's 2 cores, so a second instance adds no CPU: it shows what"
    echo "sharing costs, not how far more machines scale. Medians of $RUNS rounds after a warm-up."
    echo
    local c
    cells() { for c in embedded pgfiles shared1 shared2; do printf '%s\t' "$("$@" "$c")"; done; }
    row4() { local IFS=$'\t'; read -r -a v <<<"$2"; row "$1" "${v[0]}" "${v[1]}" "${v[2]}" "${v[3]}" ""; }
    m_rate() { median ${RATES[$1]}; }
    m_cpu() { median ${CPU[$1]}; }
    m_send() { local w; w="$(median ${SEND[$1]})"; echo "$w s, $(rate_of "$w")"; }
    m_fetch() { local w; w="$(median ${FETCH[$1]})"; echo "$w s, $(rate_of "$w")"; }
    l_rate() { list ${RATES[$1]}; }
    l_walls() { echo "$(list ${SEND[$1]}); $(list ${FETCH[$1]})"; }
    row "Figure" "embedded" "PG + files, 1 instance" "PG + s3s-fs, 1 instance" "PG + s3s-fs, 2 instances" ""
    row "---" "---" "---" "---" "---" ""
    row4 "small drops committed per second (median)" "$(cells m_rate)"
    row4 "hub CPU per small drop, ms (median; both instances)" "$(cells m_cpu)"
    row4 "send ${mib} MiB (median)" "$(cells m_send)"
    row4 "fetch ${mib} MiB (median)" "$(cells m_fetch)"
    row4 "small drops/s, per round" "$(cells l_rate)"
    row4 "send; fetch wall times, per round (s)" "$(cells l_walls)"
    echo
    rm -rf "$d"/run-*
    return 0
}
