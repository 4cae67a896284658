#!/usr/bin/env bash
# fuzz.sh: a short run (FUZZTIME, default 10s) of every fuzz target of the
# module, found with `go test -list '^Fuzz'` (so a new target runs without
# anyone listing it here). Each target's name is printed before its run.
set -euo pipefail
cd "$(dirname "$0")/.."
go=${GO:-go}
fuzztime=${FUZZTIME:-10s}

# `go test -list` prints a package's matching names, then "ok  <package> ...".
list=$($go test -list '^Fuzz' ./...) # a package that does not build stops here
targets=()
names=()
while read -r first second _; do
	case $first in
	Fuzz*) names+=("$first") ;;
	ok)
		for n in "${names[@]}"; do targets+=("$second $n"); done
		names=()
		;;
	esac
done <<<"$list"
if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi

start=$(date +%s)
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	echo "fuzz: $name ($pkg, $fuzztime)"
	$go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"
done
echo "fuzz: ${#targets[@]} targets in $(($(date +%s) - start)) s"
