#!/usr/bin/env bash
# Times PeerSim 1.0.5 on its own event-driven averaging example
# (example/config-edexample.txt: push-pull averaging over a 20-out overlay, zero
# delay) at SIZE=100000 CYCLES=100, and peergrid on the same work
# (`peergrid bench --only peersim`), alternately, and prints the ratio of their
# CPU times (user + system, the whole process each: start-up, building the
# overlay, the run). See benches/README.md for where to get PeerSim.
#
# usage: benches/peersim.sh PEERSIM_DIR [ROUNDS]
#   PEERSIM_DIR  the unpacked peersim-1.0.5 distribution (peersim-1.0.5.jar,
#                jep-2.3.0.jar, djep-1.0.0.jar and example/ in it)
#   ROUNDS       how many times each runs (default 3); the medians are compared
# PEERGRID names the binary (default: target/release/peergrid, built if missing).
set -euo pipefail

dir=${1:-}
rounds=${2:-3}
if [ -z "$dir" ]; then
    echo "usage: benches/peersim.sh PEERSIM_DIR [ROUNDS]" >&2
    exit 2
fi
jars="$dir/peersim-1.0.5.jar:$dir/jep-2.3.0.jar:$dir/djep-1.0.0.jar"
config="$dir/example/config-edexample.txt"
for f in "$dir/peersim-1.0.5.jar" "$dir/jep-2.3.0.jar" "$dir/djep-1.0.0.jar" "$config"; do
    [ -f "$f" ] || { echo "benches/peersim.sh: $f not found; expected the peersim-1.0.5 distribution in $dir" >&2; exit 2; }
done
command -v java >/dev/null || { echo "benches/peersim.sh: java not found (PeerSim needs Java 8 or later)" >&2; exit 2; }
if ! [[ "$rounds" =~ ^[1-9][0-9]*$ ]]; then
    echo "benches/peersim.sh: ROUNDS: expected a whole number of at least 1, got '$rounds'" >&2
    exit 2
fi
peergrid=${PEERGRID:-target/release/peergrid}
if [ ! -x "$peergrid" ]; then
    cargo build --release --locked
fi

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
TIMEFORMAT='%U %S %R'

# Prints "cpu wall" seconds of one command; its output goes to $logs/$1.log.
timed() {
    local name=$1
    shift
    local t
    t=$({ time "$@" >"$logs/$name.log" 2>&1; } 2>&1) || { echo "benches/peersim.sh: $name failed:" >&2; tail -5 "$logs/$name.log" >&2; exit 1; }
    awk '{ printf "%.2f %.2f\n", $1 + $2, $3 }' <<<"$t"
}

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "PeerSim's example at SIZE=100000 CYCLES=100 (3*10^7 events), $rounds rounds:"
printf "  %-5s %14s %14s %14s %14s\n" round "PeerSim cpu s" "PeerSim wall" "peergrid cpu s" "peergrid wall"
: >"$logs/peersim.cpu"
: >"$logs/peergrid.cpu"
for r in $(seq 1 "$rounds"); do
    out=$(timed peersim java -Xmx16g -cp "$jars" peersim.Simulator "$config" SIZE=100000 CYCLES=100)
    read -r pc pw <<<"$out"
    out=$(timed peergrid "$peergrid" bench --only peersim)
    read -r gc gw <<<"$out"
    echo "$pc" >>"$logs/peersim.cpu"
    echo "$gc" >>"$logs/peergrid.cpu"
    printf "  %-5s %14s %14s %14s %14s\n" "$r" "$pc" "$pw" "$gc" "$gw"
done
p=$(median <"$logs/peersim.cpu")
g=$(median <"$logs/peergrid.cpu")
grep "peersim example" "$logs/peergrid.log" | sed 's/^/  peergrid: /'
awk -v p="$p" -v g="$g" 'BEGIN { printf "median CPU time: PeerSim %.2f s, peergrid %.2f s: peergrid uses 1/%.1f of PeerSim'"'"'s CPU time\n", p, g, p / g }'
