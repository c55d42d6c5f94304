#!/usr/bin/env bash
# Every interpreter swiftsocket is tested on, built once and cached, and the
# test suite run on each.
#
#   tools/interpreters.sh [test] [VERSION...]   build what is missing, then run the
#                                               README's test steps on each (default)
#   tools/interpreters.sh build [VERSION...]    only build what is missing
#   tools/interpreters.sh bench [VERSION...] [-- BENCH OPTIONS]
#                                               install into each one's venv and run
#                                               `python -m swiftsocket bench` there
#   tools/interpreters.sh python VERSION        print that interpreter's path
#
# VERSION is 3.11 (the machine's python3), 3.13 or 3.13t (free-threaded); the
# default is all three. 3.13 and 3.13t are built from Debian's source package
# of python3.13 (suite trixie), fetched with a private apt configuration that
# names the Debian archive the machine's own apt sources use, into
#   ${SWIFTSOCKET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/swiftsocket}/python-VERSION
# Each interpreter's tests run in its own virtual environment, .venv-VERSION
# (3.11's is .venv, the README's).
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_VERSIONS=(3.11 3.13 3.13t)
DEBIAN_SOURCE_PACKAGE=python3.13
DEBIAN_SUITE=trixie
CACHE=${SWIFTSOCKET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/swiftsocket}

say() { printf '[interpreters] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

python_path() {
    case "$1" in
        3.11) command -v python3.11 || command -v python3 ;;
        3.13) echo "$CACHE/python-3.13/bin/python3.13" ;;
        3.13t) echo "$CACHE/python-3.13t/bin/python3.13t" ;;
        *) die "unknown interpreter '$1' (known: ${ALL_VERSIONS[*]})" ;;
    esac
}

# The URI of the Debian archive that the machine's apt sources name (deb822
# .sources stanzas or one-line .list entries), without the security archive.
debian_archive_uri() {
    local files=(/etc/apt/sources.list.d/*.sources)
    [ -e "${files[0]}" ] && awk '
        /^URIs:/ { uri = $2 }
        /^Suites:/ { for (i = 2; i <= NF; i++) if ($i !~ /-/) main = 1 }
        /^$/ { if (uri && main && uri !~ /security/) { print uri; exit } uri = ""; main = 0 }
        END { if (uri && main && uri !~ /security/) print uri }
    ' "${files[@]}" | head -n 1 && return
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk '$1 == "deb" && $2 !~ /security/ && $3 !~ /-/ { print $2; exit }'
}

# Debian's upstream tarball of CPython 3.13, downloaded once into the cache.
python313_tarball() {
    local dir="$CACHE/src"
    local tarball
    tarball=$(ls "$dir"/${DEBIAN_SOURCE_PACKAGE}_*.orig.tar.xz 2>/dev/null | head -n 1 || true)
    if [ -z "$tarball" ]; then
        local uri
        uri=$(debian_archive_uri)
        [ -n "$uri" ] || die "no Debian archive found in /etc/apt/sources.list*"
        say "fetching Debian's $DEBIAN_SOURCE_PACKAGE source ($DEBIAN_SUITE) from $uri"
        local apt="$dir/apt"
        rm -rf "$apt"
        mkdir -p "$apt/parts" "$apt/lists/partial" "$apt/cache/archives/partial"
        : > "$apt/sources.list"
        printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
            "$uri" "$DEBIAN_SUITE" > "$apt/parts/swiftsocket.sources"
        local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=$apt/parts"
                    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o "APT::Sandbox::User=root")
        apt-get -q "${opts[@]}" update >&2
        (cd "$dir" && apt-get -q "${opts[@]}" source --download-only "$DEBIAN_SOURCE_PACKAGE" >&2)
        rm -rf "$apt"
        tarball=$(ls "$dir"/${DEBIAN_SOURCE_PACKAGE}_*.orig.tar.xz | head -n 1)
    fi
    echo "$tarball"
}

build_python313() {  # $1: 3.13 or 3.13t
    local version=$1 prefix="$CACHE/python-$1"
    [ -f "$prefix/.complete" ] && return
    local tarball build configure_flags=(--with-ensurepip=install)
    [ "$version" = 3.13t ] && configure_flags+=(--disable-gil)
    mkdir -p "$CACHE/src"
    tarball=$(python313_tarball)
    build=$(mktemp -d "$CACHE/build-$version.XXXXXX")
    rm -rf "$prefix"
    say "building CPython $version into $prefix (a few minutes, once)"
    local start=$SECONDS
    tar -xJf "$tarball" -C "$build" --strip-components=1
    (
        cd "$build"
        ./configure -q --prefix="$prefix" "${configure_flags[@]}" > configure.log 2>&1 ||
            { tail -n 30 configure.log; exit 1; }
        make -s -j"$(nproc)" > make.log 2>&1 || { tail -n 40 make.log; exit 1; }
        make -s install > install.log 2>&1 || { tail -n 40 install.log; exit 1; }
    ) >&2 || die "building CPython $version failed (log in $build)"
    rm -rf "$build"
    "$(python_path "$version")" -c 'import ssl, venv, test.support' ||
        die "CPython $version was built without ssl, venv or its test package"
    touch "$prefix/.complete"
    say "CPython $version built in $((SECONDS - start)) s"
}

ensure_interpreter() {
    case "$1" in
        3.11) [ -x "$(python_path 3.11)" ] || die "python3.11 not found" ;;
        *) build_python313 "$1" ;;
    esac
}

venv_of() { if [ "$1" = 3.11 ]; then echo .venv; else echo ".venv-$1"; fi; }

run_tests() {  # the README's test steps, with this interpreter and its own venv
    local version=$1 python venv
    python=$(python_path "$version")
    venv=$(venv_of "$version")
    say "tests on $version: $("$python" -VV | head -n 1)"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q '.[test]'
    "$venv/bin/python" -m pytest -q
}

run_bench() {  # $1: version; the rest: options for the bench
    local version=$1 venv
    shift
    venv=$(venv_of "$version")
    say "bench on $version: $("$(python_path "$version")" -VV | head -n 1)"
    [ -x "$venv/bin/python" ] || "$(python_path "$version")" -m venv "$venv"
    "$venv/bin/pip" install -q .
    "$venv/bin/python" -m swiftsocket bench "$@"
}

command=test
case "${1:-}" in test|build|bench|python) command=$1; shift ;; esac
versions=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do versions+=("$1"); shift; done
[ "${1:-}" = -- ] && shift   # what is left goes to the bench
[ ${#versions[@]} -gt 0 ] || versions=("${ALL_VERSIONS[@]}")

case "$command" in
    python) python_path "${versions[0]}" ;;
    build) for v in "${versions[@]}"; do ensure_interpreter "$v"; done ;;
    bench)
        for v in "${versions[@]}"; do ensure_interpreter "$v"; done
        for v in "${versions[@]}"; do run_bench "$v" "$@"; done
        ;;
    test)
        for v in "${versions[@]}"; do ensure_interpreter "$v"; done
        failed=()
        for v in "${versions[@]}"; do run_tests "$v" || failed+=("$v"); done
        [ ${#failed[@]} -eq 0 ] || die "tests failed on: ${failed[*]}"
        say "tests passed on: ${versions[*]}"
        ;;
esac
