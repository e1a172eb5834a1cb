#!/usr/bin/env bash
# The Debian sid root where the project is built and tested with Python 3.14 and 3.15
# (and 3.14's debug build): pyenv on these machines stops at 3.13, Debian's unstable
# distribution packages the current releases.
#
#   tools/debian-sid.sh ensure         make the root if it is not there yet (or add
#                                      packages it lacks); prints its path
#   tools/debian-sid.sh run CMD...     run CMD inside the root, in this checkout
#   tools/debian-sid.sh test VERSION   `make pytest-VERSION` inside the root: 3.14, 3.15,
#                                      or 3.14d (the debug interpreter, core tests)
#
# The root lives outside the checkout, in $VIZTRACER_SID_CACHE (default
# ~/.cache/viztracer), and is reused by every later run. Each `run` happens in a mount
# namespace of its own (unshare), so /proc, /dev, the Rust toolchain and the checkout
# are mounted into the root for that command only and vanish with it: nothing is left
# mounted when the command ends or is killed.
#
# Needs root and debootstrap (installed with apt-get when missing). Where either is
# missing, `test` says so in one line and exits 0, so `make test` goes on with the
# other interpreters; under CI=true it fails instead.
set -euo pipefail

top="$(cd "$(dirname "$0")/.." && pwd)"
cache="${VIZTRACER_SID_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/viztracer}"
root="$cache/debian-sid"
mirror="${VIZTRACER_SID_MIRROR:-http://deb.debian.org/debian}"
# What the root holds besides minbase. A change here is applied to an existing root.
packages=(python3.14-dev python3.14-venv python3.14-dbg python3.15-dev python3.15-venv
          gcc libc6-dev git ca-certificates make nodejs)
apt_opts=(-o Acquire::Check-Valid-Until=false -o Acquire::Retries=3 -q -y)
# The toolchain of this machine, bound at the same paths inside the root.
rust_dirs=("${CARGO_HOME:-$HOME/.cargo}" "${RUSTUP_HOME:-$HOME/.rustup}")

is_ci() { case "${CI:-}" in true|1|yes) return 0 ;; esac; return 1; }

# One line, then exit 0 (make test goes on) or 1 under CI=true.
unavailable() {
    echo "== Python $version not tested: $1"
    if is_ci; then exit 1; fi
    exit 0
}

can_make_root() {
    [ "$(id -u)" = 0 ] || { echo "the Debian sid root needs root (chroot, mounts)"; return 1; }
    command -v unshare >/dev/null || { echo "unshare (util-linux) is missing"; return 1; }
    if ! command -v debootstrap >/dev/null; then
        if command -v apt-get >/dev/null; then
            echo "== installing debootstrap" >&2
            DEBIAN_FRONTEND=noninteractive apt-get install "${apt_opts[@]}" debootstrap >/dev/null 2>&1 ||
                { apt-get update -q >/dev/null 2>&1 &&
                  DEBIAN_FRONTEND=noninteractive apt-get install "${apt_opts[@]}" debootstrap >/dev/null 2>&1; } || true
        fi
        command -v debootstrap >/dev/null || { echo "debootstrap is missing (apt-get install debootstrap)"; return 1; }
    fi
}

# Files the root takes from this machine on every run: name resolution, the CA bundle
# that pip and git trust, pip's own configuration.
copy_host_config() {
    local r="$1"
    cp -L /etc/resolv.conf "$r/etc/resolv.conf" 2>/dev/null || true
    [ -f /etc/pip.conf ] && cp -L /etc/pip.conf "$r/etc/pip.conf"
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
        mkdir -p "$r/etc/ssl/certs"
        cp -L /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/ca-certificates.crt"
    fi
    return 0
}

# Runs "$@" inside root $1 with /proc, /dev, the Rust toolchain and the checkout
# mounted, in a private mount namespace. SIGINT is reset to its default: a background
# job starts with it ignored, and the chroot (and the tests' own Ctrl+C) would inherit
# that.
in_root() {
    local r="$1"; shift
    copy_host_config "$r"
    local script='
        set -e
        r="$1"; top="$2"; shift 2
        mount --make-rprivate /
        mount -t proc proc "$r/proc"
        mount --rbind /dev "$r/dev"
        mkdir -p "$r/dev/shm" && mount -t tmpfs tmpfs "$r/dev/shm"
        mount -t tmpfs tmpfs "$r/tmp"
        for d in '"${rust_dirs[*]}"' "$top" /opt/wheels; do
            [ -d "$d" ] || continue
            mkdir -p "$r$d"; mount --bind "$d" "$r$d"
        done
        exec chroot "$r" "$@"
    '
    local keep=(HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}"
                PATH="${CARGO_HOME:-$HOME/.cargo}/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
                CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
                VIZTRACER_IN_SID=1 DEBIAN_FRONTEND=noninteractive)
    local v
    for v in CI PIP_FIND_LINKS PIP_DEFAULT_TIMEOUT PIP_DISABLE_PIP_VERSION_CHECK PIP_CERT \
             SSL_CERT_FILE REQUESTS_CA_BUNDLE CURL_CA_BUNDLE GIT_SSL_CAINFO PYTEST_ARGS \
             PYTHONUNBUFFERED PYTHONDONTWRITEBYTECODE; do
        [ -n "${!v:-}" ] && keep+=("$v=${!v}")
    done
    env --default-signal=INT unshare --mount --fork bash -c "$script" in_root "$r" "$top" \
        /usr/bin/env -i "${keep[@]}" "$@"
}

ensure_root() {
    local want="${packages[*]}"
    if [ -f "$root/.viztracer-packages" ] && [ "$(cat "$root/.viztracer-packages")" = "$want" ]; then
        return 0
    fi
    mkdir -p "$cache"
    if [ ! -f "$root/.viztracer-packages" ]; then
        # Made in a scratch directory and renamed at the end: a root whose making was
        # interrupted is never taken for a finished one.
        local tmp="$cache/debian-sid.partial"
        rm -rf "$tmp"
        echo "== making the Debian sid root in $root (debootstrap, a few minutes)" >&2
        debootstrap --variant=minbase sid "$tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
            echo "debootstrap failed, see $cache/debootstrap.log:" >&2
            tail -n 5 "$cache/debootstrap.log" >&2
            return 1
        }
        printf 'deb %s sid main\n' "$mirror" >"$tmp/etc/apt/sources.list"
        : >"$tmp/.viztracer-packages"
        mv "$tmp" "$root"
    fi
    echo "== installing into the sid root: $want" >&2
    in_root "$root" apt-get "${apt_opts[@]}" update >"$cache/apt.log" 2>&1 &&
        in_root "$root" apt-get "${apt_opts[@]}" install --no-install-recommends "${packages[@]}" \
            >>"$cache/apt.log" 2>&1 || {
        echo "apt-get in the sid root failed, see $cache/apt.log:" >&2
        tail -n 5 "$cache/apt.log" >&2
        return 1
    }
    echo "$want" >"$root/.viztracer-packages"
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
    ensure)
        why=$(can_make_root) || { echo "$why" >&2; exit 1; }
        ensure_root
        echo "$root"
        ;;
    run)
        [ $# -gt 0 ] || { echo "usage: $0 run CMD..." >&2; exit 2; }
        why=$(can_make_root) || { echo "$why" >&2; exit 1; }
        ensure_root
        in_root "$root" bash -c 'cd "$0" && exec "$@"' "$top" "$@"
        ;;
    test)
        [ $# -eq 1 ] || { echo "usage: $0 test VERSION" >&2; exit 2; }
        version="$1"
        why=$(can_make_root) || unavailable "$why"
        ensure_root || unavailable "the Debian sid root could not be made"
        in_root "$root" bash -c 'cd "$0" && exec make "pytest-$1"' "$top" "$1"
        ;;
    *)
        echo "usage: $0 ensure | run CMD... | test VERSION" >&2
        exit 2
        ;;
esac
