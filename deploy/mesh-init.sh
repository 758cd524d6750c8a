#!/bin/sh
# Initialise the three node directories of deploy/compose.yaml under ROOT:
# keys, config, members (each knows the others' public keys) and peers
# (a line: gov <-> platform-one <-> platform-two). Idempotent: an existing
# node directory is kept, so keys survive re-runs.
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
            --listen "127.0.0.1:$port" | sed -n 's/^entry public key: //p' > "$ROOT/$dir.pub"
    fi
done

# Everyone learns everyone's entry key (skip members already listed).
echo "$NODES" | while read -r dir _id _kind _cc _port; do
    echo "$NODES" | while read -r odir oid okind occ oport; do
        [ "$dir" = "$odir" ] && continue
        grep -q "id = \"$oid\"" "$ROOT/$dir/members.toml" && continue
        $CCNODE members add "$ROOT/$dir" --id "$oid" --kind "$okind" --jurisdiction "$occ" \
            --key "$(cat "$ROOT/$odir.pub")" --address "127.0.0.1:$oport" > /dev/null
    done
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
