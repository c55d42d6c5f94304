#!/usr/bin/env bash
# mypy's stubtest: the type stub (python/swiftsocket/__init__.pyi) against the
# built module, on 3.11 and 3.13 (3.13t has 3.13's API). It tests the wheels
# in dist/ (tools/wheels.sh), each in a cached venv with mypy from PyPI;
# tools/stubtest-allowlist.txt lists what stubtest cannot judge, with reasons.
#
#   tools/stubtest.sh [VERSION...]
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${SWIFTSOCKET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/swiftsocket}
say() { printf '[stubtest] %s\n' "$*" >&2; }

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(3.11 3.13)
for version in "${versions[@]}"; do
    tag=cp${version/./}
    wheel=$(ls dist/swiftsocket-*-"$tag"-"$tag"-*.whl 2>/dev/null | head -n 1)
    [ -n "$wheel" ] || { say "no $tag wheel in dist/: run tools/wheels.sh $version"; exit 1; }
    venv="$CACHE/stubtest-$version"
    if [ ! -x "$venv/bin/stubtest" ]; then
        "$(tools/interpreters.sh python "$version")" -m venv "$venv"
        "$venv/bin/pip" install -q mypy
    fi
    "$venv/bin/pip" install -q --force-reinstall --no-deps "$wheel"
    say "$(basename "$wheel")"
    (cd "$venv" && bin/python -m mypy.stubtest swiftsocket --allowlist "$OLDPWD/tools/stubtest-allowlist.txt")
done
