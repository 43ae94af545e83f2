#!/usr/bin/env bash
# Regenerates the published EXAMPLE keys and signed directory in this folder
# with the real `sealdrop` CLI. These keys are public: never protect real data with them.
# Usage: keys-example/generate.sh   (from anywhere; needs cargo and python3)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
sealdrop() { cargo run -q --manifest-path "$root/Cargo.toml" -p sealdrop -- --config /nonexistent/config.toml "$@"; }

rm -rf "$here/parties" "$here/authority.key" "$here/authority.pub" "$here/directory.json" "$here/directory.signed"
mkdir -p "$here/parties"
sealdrop directory keygen --name london-isa-coordinator.example --out "$here/authority.key" >/dev/null

cards="$(mktemp)"
csv="$here/london-local-authorities.csv"
while IFS=, read -r name gss la _; do
  [ "$name" = "name" ] && continue
  id="$(echo "$name" | tr 'A-Z' 'a-z' | sed -E 's/[^a-z0-9]+/-/g; s/^-|-$//g')"
  sealdrop keygen --party "$id" --member data-team --out "$here/parties/$id.key" 2>/dev/null >> "$cards"
done < "$csv"

python3 - "$csv" "$cards" "$here/directory.json" <<'PY'
import csv, json, re, sys
rows = list(csv.DictReader(open(sys.argv[1])))
cards = {}
for line in open(sys.argv[2]):
    c = json.loads(line)
    cards[c["party"]] = c
parties = []
for r in rows:
    pid = re.sub(r"[^a-z0-9]+", "-", r["name"].lower()).strip("-")
    c = cards[pid]
    parties.append({
        "id": pid,
        "name": r["name"],
        "aliases": [r["gss_code"], r["dfe_la_number"]],
        "members": [{"member": c["member"], "age_recipient": c["age_recipient"], "signing_key": c["signing_key"]}],
    })
directory = {
    "serial": 1,
    "issued_at": "2026-11-26T00:00:00Z",
    "parties": parties,
    "agreements": [{
        "id": "london-fsm-ehc",
        "title": "London boroughs: free school meals and EHC plan records of pupils who live in another borough",
        "purpose": "Each home borough receives its own residents' free school meals eligibility and EHC plan records so it can support those households.",
        "lawful_basis": "UK GDPR Art. 6(1)(e) public task and Art. 9(2)(g) substantial public interest (DPA 2018 Sch. 1 para. 6 and 18); Education Act 1996; Children and Families Act 2014 Part 3",
        "parties": [p["id"] for p in parties],
        "max_expiry_days": 30,
        "valid_from": "2026-01-01T00:00:00Z",
        "valid_until": "2036-01-01T00:00:00Z",
    }],
}
json.dump(directory, open(sys.argv[3], "w"), indent=2)
open(sys.argv[3], "a").write("\n")
PY
rm -f "$cards"
sealdrop directory sign --key "$here/authority.key" --input "$here/directory.json" --out "$here/directory.signed"
