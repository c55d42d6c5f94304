#!/usr/bin/env bash
# Proof that the wheels need no Swift: each one installed into a fresh virtual
# environment of its interpreter and tested there, with the toolchain out of
# reach (a private mount namespace with an empty tmpfs over the toolchain's
# folder, and no `swift` on PATH), the tests run from a copy outside the
# source tree so that only the installed wheel can be imported.
#
#   tools/wheel-check.sh [--quick] [WHEEL...]     (default: dist/*.whl)
#
# --quick: the suite without its slow part (CPython's suites), plus CPython's
# test_ssl and asyncio's test_ssl (TLS through _socket.CAPI): what CI runs,
# after the source-built suites. Without it, the whole suite. Needs root
# (unshare -m).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[wheel-check] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

quick=0
[ "${1:-}" = --quick ] && { quick=1; shift; }
wheels=("$@")
[ ${#wheels[@]} -gt 0 ] || wheels=(dist/*.whl)
[ -e "${wheels[0]}" ] || die "no wheels: build them with tools/wheels.sh"

swift=$(command -v swift || echo /opt/swift/usr/bin/swift)
toolchain=$(dirname "$(dirname "$(dirname "$(readlink -f "$swift")")")")   # <root>/usr/bin/swift
[ -d "$toolchain" ] || die "toolchain folder not found from $swift"
# PATH without any folder that holds a swift executable.
clean_path=$(printf '%s' "$PATH" | tr ':' '\n' | while read -r dir; do
    [ -n "$dir" ] && [ ! -x "$dir/swift" ] && printf '%s:' "$dir"; done)
clean_path=${clean_path%:}

suites=("tests/test_cpython_suite.py::test_cpython_suite_passes_on_swiftsocket[test.test_ssl]"
        "tests/test_cpython_suite.py::test_cpython_suite_passes_on_swiftsocket[test.test_asyncio.test_ssl]")

failed=()
for wheel in "${wheels[@]}"; do
    wheel=$(readlink -f "$wheel")
    case "$(basename "$wheel")" in
        *-cp311-cp311-*) version=3.11 ;;
        *-cp313-cp313t-*) version=3.13t ;;
        *-cp313-cp313-*) version=3.13 ;;
        *) die "no tested interpreter for $(basename "$wheel")" ;;
    esac
    python=$(tools/interpreters.sh python "$version")
    [ -x "$python" ] || python=$(command -v "$python")
    work=$(mktemp -d)
    cp -r tests "$work/tests"
    say "$(basename "$wheel") on $version, Swift hidden ($toolchain)"
    start=$SECONDS
    if unshare -m --propagation private env PATH="$clean_path" WHEEL="$wheel" PYTHON="$python" \
        TOOLCHAIN="$toolchain" QUICK="$quick" WORK="$work" bash -euo pipefail -c '
        mount -t tmpfs -o size=1m swift-hidden "$TOOLCHAIN"
        ! command -v swift >/dev/null || { echo "swift still reachable" >&2; exit 1; }
        [ -z "$(ls -A "$TOOLCHAIN")" ] || { echo "toolchain still visible" >&2; exit 1; }
        cd "$WORK"
        "$PYTHON" -m venv venv
        venv/bin/pip install -q "$WHEEL[test]"
        venv/bin/python -c "import swiftsocket, sys; assert \"site-packages\" in swiftsocket.__file__, swiftsocket.__file__; print(\"installed:\", swiftsocket.__file__)"
        if [ "$QUICK" = 1 ]; then
            venv/bin/python -m pytest -q -p no:cacheprovider -m "not slow" tests
            venv/bin/python -m pytest -q -p no:cacheprovider '"${suites[*]@Q}"'
        else
            venv/bin/python -m pytest -q -p no:cacheprovider tests
        fi
    '; then
        say "$(basename "$wheel"): passed in $((SECONDS - start)) s"
    else
        failed+=("$(basename "$wheel")")
    fi
    rm -rf "$work"
done
[ ${#failed[@]} -eq 0 ] || die "failed: ${failed[*]}"
say "all wheels passed without a Swift toolchain"
