#!/usr/bin/env bash
# lab.sh builds by hand the bonding lab that internal/netlab builds for the
# tests and the bench: same names, same addresses. Needs root, iproute2 and
# nftables (scripts/deps.sh). `make run` uses it for the bonded demo (LAB=demo).
#
#   scripts/lab.sh up [UPLINK...]   namespaces box-$LAB and studio-$LAB, uplinks
#                                   (default: wired cell1 cell2), each with a main-table
#                                   default route (metric 100 x i, as a modem manager
#                                   sets them), and studio.lab resolving in the box
#   scripts/lab.sh shape UPLINK KBIT  limit what the box sends on UPLINK (tbf; 0: no limit)
#   scripts/lab.sh cut UPLINK       nothing crosses UPLINK, either way (nft drop)
#   scripts/lab.sh uncut UPLINK     UPLINK carries again
#   scripts/lab.sh status           addresses, routes, rules, qdiscs, nft, counters
#   scripts/lab.sh down             delete both namespaces (and everything in them)
#                                   and their /etc/netns directories
#
# LAB (default "lab") is the namespace suffix: box-lab, studio-lab. Link i (1-based,
# in order): box 198.18.i.2/24 and fd6f:6e61:6972:i::2/64 on interface UPLINK,
# studio gateway .1 and ::1 on UPLINK-stu; studio service 203.0.113.1/32 and
# fd6f:6e61:6972::1/128 on its lo, named studio.lab in the box (ip netns exec
# bind-mounts /etc/netns/box-$LAB/hosts over /etc/hosts).
#
# Impairments by hand (what netlab's Shape, Cut and Loss do; cut and uncut here
# use one nft table per cut link, cut_UPLINK, in each namespace):
#   ip netns exec box-lab tc qdisc replace dev cell1 root tbf rate 2000kbit burst 16384 latency 100ms
#   ip netns exec studio-lab nft add table inet netlab
#   ip netns exec studio-lab nft add chain inet netlab pre '{ type filter hook prerouting priority -300; }'
#   ip netns exec studio-lab nft add rule inet netlab pre iifname cell1-stu meta l4proto udp numgen random mod 10000 '<' 500 drop
#   ip netns exec studio-lab nft add rule inet netlab pre iifname cell1-stu drop      # cut, box→studio
#   (a full cut also drops iifname cell1 in the box's prerouting: studio→box)
# Run something inside: ip netns exec box-lab COMMAND
set -euo pipefail

LAB=${LAB:-lab}
BOX=box-$LAB
STUDIO=studio-$LAB
SVC4=203.0.113.1
SVC6=fd6f:6e61:6972::1

STUDIO_HOST=studio.lab
ND_TYPES='{ nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert }'

need_root() {
  if [ "$(id -u)" -ne 0 ]; then echo "lab.sh: needs root (network namespaces)" >&2; exit 1; fi
}

# has_ns NS: the namespace exists (exact name).
has_ns() { ip netns list | awk '{print $1}' | grep -qxF "$1"; }

# need_link NAME: NAME is an uplink of the running lab.
need_link() {
  if [ -z "${1:-}" ] || ! has_ns "$BOX" || ! ip -n "$BOX" link show dev "$1" >/dev/null 2>&1; then
    echo "lab.sh: no uplink '${1:-}' in $BOX (scripts/lab.sh up first?)" >&2; exit 1
  fi
}

up() {
  need_root
  local links=("$@")
  if ((${#links[@]} == 0)); then links=(wired cell1 cell2); fi
  if has_ns "$BOX" || has_ns "$STUDIO"; then
    echo "lab.sh: $BOX or $STUDIO exists already (scripts/lab.sh down first)" >&2; exit 1
  fi
  trap 'echo "lab.sh: up failed, removing" >&2; down' ERR
  ip netns add "$BOX"
  ip netns add "$STUDIO"
  ip -n "$BOX" link set lo up
  ip -n "$STUDIO" link set lo up
  ip netns exec "$BOX" sh -c 'echo 2 >/proc/sys/net/ipv4/conf/all/rp_filter; echo 2 >/proc/sys/net/ipv4/conf/default/rp_filter'
  ip netns exec "$STUDIO" sh -c 'echo 0 >/proc/sys/net/ipv4/conf/all/rp_filter; echo 0 >/proc/sys/net/ipv4/conf/default/rp_filter'
  ip -n "$STUDIO" addr add "$SVC4/32" dev lo
  ip -n "$STUDIO" -6 addr add "$SVC6/128" dev lo nodad
  local i=0 name
  for name in "${links[@]}"; do
    i=$((i + 1))
    if ((${#name} > 11)); then echo "lab.sh: uplink name $name longer than 11 characters" >&2; exit 1; fi
    ip link add "$name" netns "$BOX" type veth peer name "$name-stu" netns "$STUDIO"
    ip -n "$STUDIO" addr add "198.18.$i.1/24" dev "$name-stu"
    ip -n "$STUDIO" -6 addr add "fd6f:6e61:6972:$(printf %x $i)::1/64" dev "$name-stu" nodad
    ip -n "$STUDIO" link set "$name-stu" up
    ip -n "$BOX" link set "$name" up
    ip -n "$BOX" addr add "198.18.$i.2/24" dev "$name"
    ip -n "$BOX" -6 addr add "fd6f:6e61:6972:$(printf %x $i)::2/64" dev "$name" nodad
    # What a DHCP client or modem manager sets: a default route per uplink,
    # the first with the lowest metric (it carries what is not bound to an address).
    ip -n "$BOX" route replace default via "198.18.$i.1" dev "$name" metric $((100 * i))
    ip -n "$BOX" -6 route replace default via "fd6f:6e61:6972:$(printf %x $i)::1" dev "$name" metric $((100 * i))
  done
  mkdir -p "/etc/netns/$BOX"
  printf '127.0.0.1 localhost\n::1 localhost\n%s %s\n%s %s\n' "$SVC4" "$STUDIO_HOST" "$SVC6" "$STUDIO_HOST" >"/etc/netns/$BOX/hosts"
  trap - ERR
  echo "lab up: $BOX and $STUDIO, uplinks ${links[*]}; studio service $SVC4 and $SVC6 ($STUDIO_HOST in $BOX)"
}

down() {
  need_root
  local ns pid
  for ns in "$BOX" "$STUDIO"; do
    if has_ns "$ns"; then
      for pid in $(ip netns pids "$ns"); do kill -9 "$pid" 2>/dev/null || true; done
      ip netns del "$ns"
    fi
    rm -rf "/etc/netns/$ns"
  done
  rmdir /etc/netns 2>/dev/null || true # only when empty: up may have made it
  echo "lab down: $BOX and $STUDIO removed"
}

# shape NAME KBIT: tbf on the box-side egress, as netlab's Shape (burst 20 ms
# at the rate, at least 16 kB; 100 ms of queue); 0 removes it.
shape() {
  need_root
  need_link "${1:-}"
  local name=$1 kbit=${2:-}
  if ! [[ $kbit =~ ^[0-9]+$ ]]; then echo "lab.sh: shape $name KBIT: KBIT must be a number (0: no limit)" >&2; exit 2; fi
  if ((kbit == 0)); then
    tc -n "$BOX" qdisc del dev "$name" root 2>/dev/null || true
    echo "lab: $name not shaped"
    return
  fi
  local burst=$((kbit * 1000 / 8 / 50))
  if ((burst < 16384)); then burst=16384; fi
  tc -n "$BOX" qdisc replace dev "$name" root tbf rate "${kbit}kbit" burst "$burst" latency 100ms
  echo "lab: $name shaped to $kbit kbit/s"
}

# cut NAME / uncut NAME: drop everything arriving on the link on either side
# (neighbour discovery excepted, as netlab's Cut), in a table of its own.
cut() {
  need_root
  need_link "${1:-}"
  local name=$1 ns ifname
  for ns in "$STUDIO" "$BOX"; do
    ifname=$name
    if [ "$ns" = "$STUDIO" ]; then ifname=$name-stu; fi
    ip netns exec "$ns" nft -f - <<NFT
table inet cut_$name
delete table inet cut_$name
table inet cut_$name {
  chain pre {
    type filter hook prerouting priority -300; policy accept;
    iifname "$ifname" icmpv6 type $ND_TYPES accept
    iifname "$ifname" counter drop
  }
}
NFT
  done
  echo "lab: $name cut (scripts/lab.sh uncut $name to restore)"
}

uncut() {
  need_root
  need_link "${1:-}"
  local ns
  for ns in "$STUDIO" "$BOX"; do
    ip netns exec "$ns" nft delete table inet "cut_$1" 2>/dev/null || true
  done
  echo "lab: $1 carries again"
}

status() {
  local ns
  for ns in "$BOX" "$STUDIO"; do
    if ! has_ns "$ns"; then echo "$ns: not there"; continue; fi
    echo "== $ns"
    ip -n "$ns" -br addr
    echo "-- routes (all tables, v4 and v6)"
    ip -n "$ns" -4 route show table all | grep -v -e '^local' -e '^broadcast' || true
    ip -n "$ns" -6 route show table all | grep -v -e '^local' -e '^multicast' -e '^fe80' -e '^anycast' || true
    echo "-- rules"
    ip -n "$ns" rule; ip -n "$ns" -6 rule
    echo "-- qdiscs"
    ip netns exec "$ns" tc qdisc show | grep -v -e noqueue || true
    echo "-- nft"
    ip netns exec "$ns" nft list ruleset
    echo "-- counters (interface tx_bytes tx_packets rx_bytes rx_packets)"
    ip netns exec "$ns" sh -c 'for d in /sys/class/net/*; do s=$d/statistics;
      echo "${d##*/} $(cat $s/tx_bytes) $(cat $s/tx_packets) $(cat $s/rx_bytes) $(cat $s/rx_packets)"; done'
  done
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down ;;
  shape) shift; shape "$@" ;;
  cut) shift; cut "$@" ;;
  uncut) shift; uncut "$@" ;;
  status) status ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
