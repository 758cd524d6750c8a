#!/bin/sh
# Initialise the three node directories of deploy/compose.yaml under ROOT:
# keys and TLS certificates (ccnode init), a genesis roster listing all
# three members signed by one governance key ($ROOT/governance.pem; keep it
# offline in a real consortium), installed in every node directory, and
# peers (a line: gov <-> platform-one <-> platform-two). Idempotent: an
# existing node directory, key or roster is kept, so keys survive re-runs.
#
#   sh deploy/mesh-init.sh ROOT        (CCNODE overrides the command, e.g.
#                                       CCNODE="python -m node")
set -eu
ROOT=${1:?usage: mesh-init.sh ROOT}
CCNODE=${CCNODE:-ccnode}
mkdir -p "$ROOT"

# name  member id                  kind        country port
NODES="gov gov.example/ct-unit government NZ 7001
platform-one platform-one.example platform FR 7002
platform-two platform-two.example platform US 7003"

echo "$NODES" | while read -r dir id kind cc port; do
    if [ ! -f "$ROOT/$dir/config.toml" ]; then
        $CCNODE init "$ROOT/$dir" --id "$id" --kind "$kind" --jurisdiction "$cc" \
            --listen "127.0.0.1:$port" > /dev/null
    fi
done

# The consortium's roster, version 1: every member's card, signed by governance.
if [ ! -f "$ROOT/roster.json" ]; then
    [ -f "$ROOT/governance.pem" ] || $CCNODE roster keygen "$ROOT/governance.pem" > /dev/null
    $CCNODE roster init "$ROOT/roster.draft.json" --governance "$ROOT/governance.pem" \
        --threshold 1 --force \
        --member "$ROOT/gov/member.json" \
        --member "$ROOT/platform-one/member.json" \
        --member "$ROOT/platform-two/member.json" > /dev/null
    $CCNODE roster sign "$ROOT/roster.draft.json" --key "$ROOT/governance.pem" \
        --out "$ROOT/roster.json" > /dev/null
    rm -f "$ROOT/roster.draft.json"
fi
echo "$NODES" | while read -r dir _id _kind _cc _port; do
    $CCNODE roster publish "$ROOT/roster.json" "$ROOT/$dir" > /dev/null
done

# Peers: a line.
add_peer() {  # dir peer-id peer-port
    grep -q "id = \"$2\"" "$ROOT/$1/config.toml" && return 0
    $CCNODE peers add "$ROOT/$1" --id "$2" --address "127.0.0.1:$3" > /dev/null
}
add_peer gov platform-one.example 7002
add_peer platform-one gov.example/ct-unit 7001
add_peer platform-one platform-two.example 7003
add_peer platform-two platform-one.example 7002
echo "mesh initialised under $ROOT"
