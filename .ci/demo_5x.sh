#!/usr/bin/env bash
# CI step (issue 8): `make demo` passes 5 times in a row from `make clean`, in a fresh clone of
# this repository's HEAD (never in a working tree: `make clean` removes .venv). Needs the package
# registry for the set-up. Usage: .ci/demo_5x.sh [N]
set -euo pipefail
n="${1:-5}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/depth_nodes_demo_5x.XXXXXX)"
trap 'rm -rf "$work"' EXIT
git clone --quiet "$repo" "$work/clone"
cd "$work/clone"
for i in $(seq 1 "$n"); do
    make clean >/dev/null
    echo "== make demo, run $i/$n from make clean"
    ROS_DOMAIN_ID=$((120 + i)) make demo
done
echo "make demo passed $n/$n runs from make clean"
