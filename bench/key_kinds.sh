# shellcheck shell=bash
# The key_kinds section of bench/run (sourced by it): what post-quantum
# member keys (ML-KEM-768 + X25519, `mlkem768x25519`, what `sealdrop keygen`
# makes) cost next to classic X25519 keys (`keygen --classic`), for one large
# send and fetch and for many small drops. The example keys are post-quantum;
# the classic set is made here with the real CLI, with the same parties,
# agreement and authority, so only the key kind differs.

# make_classic_keys DIR: a copy of keys-example/ with a classic member key
# for every party (DIR/parties/*.key) and a directory of them signed by the
# example authority (DIR/directory.signed), unless DIR has one already.
make_classic_keys() {
    local out="$1" k id
    [[ -f "$out/directory.signed" ]] && return 0
    mkdir -p "$out/parties"
    cp "$ROOT/keys-example/authority.pub" "$out/authority.pub"
    install -m 0600 "$ROOT/keys-example/authority.key" "$out/authority.key"
    : >"$out/cards"
    for k in "$ROOT"/keys-example/parties/*.key; do
        id="$(basename "$k" .key)"
        SEALDROP_CONFIG="$out/none.toml" "$REL/sealdrop" keygen --classic --party "$id" --member data-team \
            --out "$out/parties/$id.key" 2>/dev/null >>"$out/cards" || die "keygen --classic failed for $id"
    done
    python3 - "$ROOT/keys-example/directory.json" "$out/cards" "$out/directory.json" <<'PY' || die "could not write the classic directory"
import json, sys
directory = json.load(open(sys.argv[1]))
cards = {c["party"]: c for c in map(json.loads, open(sys.argv[2]))}
for p in directory["parties"]:
    c = cards[p["id"]]
    p["members"] = [{"member": c["member"], "age_recipient": c["age_recipient"], "signing_key": c["signing_key"]}]
json.dump(directory, open(sys.argv[3], "w"), indent=2)
PY
    SEALDROP_CONFIG="$out/none.toml" "$REL/sealdrop" directory sign --key "$out/authority.key" \
        --input "$out/directory.json" --out "$out/directory.signed" >/dev/null 2>"$out/sign.err" ||
        die "could not sign the classic directory: $(cat "$out/sign.err")"
}

# key_kinds_round DIR KIND: one send and fetch of DIR/input.bin and one
# small-drops run with KIND's keys; appends "KIND figure value" lines to DIR/rounds.
key_kinds_round() {
    local d="$1" kind="$2" line id h0 h1 rate
    rm -rf "$d/k"
    start_hub "$d/k/large"
    sync
    wait_quiet
    client_cmd camden "$d/k/camden"
    line="$(timed "$d/send.json" "${CMD[@]}" send --to barnet -q --json "$d/input.bin")" || die "key_kinds: send failed ($kind)"
    echo "$kind send $(field "$line" 1)" >>"$d/rounds"
    id="$(sed -n 's/.*"id": *"\(d-[a-z0-9]*\)".*/\1/p' "$d/send.json")"
    [[ -n "$id" ]] || die "key_kinds: send printed no drop id: $(cat "$d/send.json")"
    mkdir -p "$d/k/out"
    sync
    wait_quiet
    client_cmd barnet "$d/k/barnet"
    line="$(timed /dev/null "${CMD[@]}" fetch -q -o "$d/k/out" "$id")" || die "key_kinds: fetch failed ($kind)"
    cmp -s "$d/k/out/input.bin" "$d/input.bin" || die "key_kinds: the fetched file does not match the input"
    echo "$kind fetch $(field "$line" 1)" >>"$d/rounds"
    stop_hub

    start_hub "$d/k/small" --max-connections-per-address 256
    sync
    wait_quiet
    h0="$(hub_cpu_jiffies)"
    line="$("$REL/small-drops" sealdrop --hub "http://$HUB_ADDR" --keys "$KEYS/parties" \
        --authority "$KEYS/authority.pub" --state "$d/k/small-state" --files "$d/files" \
        --senders 32 --drops-per-sender "$KEY_KINDS_PER" 2>"$d/sd.err")" || die "key_kinds: small drops: $(tail -n 3 "$d/sd.err")"
    h1="$(hub_cpu_jiffies)"
    stop_hub
    rate="$(sed -n 's/.*"per_second": \([0-9.]*\).*/\1/p' <<<"$line")"
    echo "$kind small $rate" >>"$d/rounds"
    echo "$kind hubcpu $(awk -v j="$((h1 - h0))" -v hz="$HZ" -v n="$((32 * KEY_KINDS_PER))" 'BEGIN { printf "%.2f", j / hz * 1000 / n }')" >>"$d/rounds"
    rm -rf "$d/k"
}

section_key_kinds() {
    local mib="${BENCH_KEY_KINDS_MIB:-256}" d="$WORK/key_kinds" r kind
    KEY_KINDS_PER="${BENCH_KEY_KINDS_PER_SENDER:-25}"
    mkdir -p "$d"
    make_input "$d/input.bin" "$mib"
    make_classic_keys "$d/classic-keys"
    "$REL/small-drops" make-files --files "$d/files" --count $((32 * KEY_KINDS_PER)) --size 4096
    : >"$d/rounds"
    # Round 0 warms up; the kinds alternate within each round, so both see
    # the same state of the machine.
    for ((r = 0; r <= RUNS; r++)); do
        for kind in post-quantum classic; do
            KEYS="$ROOT/keys-example"
            [[ "$kind" == classic ]] && KEYS="$d/classic-keys"
            log "key_kinds: round $r/$RUNS: $kind"
            key_kinds_round "$d" "$kind"
            ((r == 0)) && sed -i "/^$kind /d" "$d/rounds"
        done
    done
    KEYS="$ROOT/keys-example"

    vals() { awk -v k="$1" -v f="$2" '$1 == k && $2 == f { print $3 }' "$d/rounds"; }
    med() { median $(vals "$1" "$2"); }
    list() { vals "$1" "$2" | paste -sd, - | sed 's/,/, /g'; }
    ratio() { awk -v p="$1" -v c="$2" 'BEGIN { printf "%.2f", p / c }'; }
    local f
    local -A M=()
    for kind in post-quantum classic; do
        for f in send fetch small hubcpu; do
            M[$kind.$f]="$(med "$kind" "$f")"
        done
    done
    echo "### key kinds: post-quantum keys next to classic ones"
    echo
    echo "The same exchange with the example's post-quantum member keys (ML-KEM-768 + X25519, \`mlkem768x25519\` stanzas; what"
    echo "\`sealdrop keygen\` makes) and with classic X25519 keys made by \`keygen --classic\` for the same parties, agreement and"
    echo "authority. Large: \`sealdrop send\` of one ${mib} MiB file from Camden to Barnet and \`sealdrop fetch\` of it, resumable as users"
    echo "run them, against a fresh hub. Small: \`small-drops sealdrop\`, 32 senders each sending $KEY_KINDS_PER drops of 4 KiB (as in"
    echo "the small drops section). The kinds alternate within each round; medians of $RUNS rounds after a warm-up. Ratio ="
    echo "post-quantum / classic (wall times: above 1 is slower; rates: below 1 is slower)."
    echo
    row "Figure" "post-quantum" "classic" "Ratio" "Target" "Met?"
    row "---" "---" "---" "---" "---" "---"
    row "send ${mib} MiB, wall s (median)" "${M[post-quantum.send]}" "${M[classic.send]}" "$(ratio "${M[post-quantum.send]}" "${M[classic.send]}")" "" ""
    row "fetch ${mib} MiB, wall s (median)" "${M[post-quantum.fetch]}" "${M[classic.fetch]}" "$(ratio "${M[post-quantum.fetch]}" "${M[classic.fetch]}")" "" ""
    row "small drops per second (median)" "${M[post-quantum.small]}" "${M[classic.small]}" "$(ratio "${M[post-quantum.small]}" "${M[classic.small]}")" "" ""
    row "hub CPU per small drop, ms (median)" "${M[post-quantum.hubcpu]}" "${M[classic.hubcpu]}" "$(ratio "${M[post-quantum.hubcpu]}" "${M[classic.hubcpu]}")" "" ""
    for f in send fetch small hubcpu; do
        row "per round: $f" "$(list post-quantum "$f")" "$(list classic "$f")" "" "" ""
    done
    echo
    rm -rf "$d/k" "$d/files"
    return 0
}
