#!/usr/bin/env bash
# Debian roots (debootstrap, minbase) where the project meets interpreters this
# machine's pyenv lacks:
#
#   sid        Python 3.14 and 3.15 (and 3.14's debug build), Debian's unstable
#              distribution: the extension is built and tested there, and the 3.14
#              and 3.15 wheels are built there
#   bullseye   Debian 11 (glibc 2.31) with its own Python 3.9: an old distribution the
#              manylinux wheel is installed into as a user would (make dist-test)
#
#   tools/debian-root.sh SUITE ensure          make the root if it is not there yet (or
#                                              add packages it lacks); prints its path
#   tools/debian-root.sh SUITE run CMD...      run CMD inside the root, in this checkout,
#                                              with this machine's Rust toolchain
#   tools/debian-root.sh SUITE isolated DIR CMD...
#                                              run CMD inside the root in DIR, with DIR
#                                              the only directory of this machine
#                                              mounted: no checkout, no toolchain, a
#                                              PATH of /usr/bin and /bin
#   tools/debian-root.sh sid test VERSION      `make pytest-VERSION` inside the root:
#                                              3.14, 3.15, or 3.14d (the debug
#                                              interpreter, core tests)
#
# The roots live outside the checkout, in $VIZTRACER_ROOT_CACHE (default
# ~/.cache/viztracer), as debian-SUITE, and are reused by every later run. Each command
# runs in a mount namespace of its own (unshare), so /proc, /dev and the directories
# mounted into the root exist for that command only and vanish with it: nothing is
# left mounted when the command ends or is killed. /tmp is a fresh tmpfs each time.
#
# Needs root and debootstrap (installed with apt-get when missing). Where either is
# missing, `test` says so in one line and exits 0, so `make test` goes on with the
# other interpreters; under CI=true it fails instead.
set -euo pipefail

top="$(cd "$(dirname "$0")/.." && pwd)"
cache="${VIZTRACER_ROOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/viztracer}"
mirror="${VIZTRACER_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
apt_opts=(-o Acquire::Check-Valid-Until=false -o Acquire::Retries=3 -q -y)
# The toolchain of this machine, bound at the same paths inside the root by `run`.
rust_dirs=("${CARGO_HOME:-$HOME/.cargo}" "${RUSTUP_HOME:-$HOME/.rustup}")

suite="${1:-}"
[ $# -gt 0 ] && shift
# What each root holds besides minbase. A change here is applied to an existing root.
case "$suite" in
    sid) packages=(python3.14-dev python3.14-venv python3.14-dbg python3.15-dev python3.15-venv
                   gcc libc6-dev git ca-certificates make nodejs) ;;
    bullseye) packages=(python3.9 python3-venv ca-certificates) ;;
    *) echo "usage: $0 sid|bullseye ensure | run CMD... | isolated DIR CMD... | test VERSION" >&2; exit 2 ;;
esac
root="$cache/debian-$suite"

is_ci() { case "${CI:-}" in true|1|yes) return 0 ;; esac; return 1; }

# One line, then exit 0 (make test goes on) or 1 under CI=true.
unavailable() {
    echo "== Python $version not tested: $1"
    if is_ci; then exit 1; fi
    exit 0
}

can_make_root() {
    [ "$(id -u)" = 0 ] || { echo "the Debian $suite root needs root (chroot, mounts)"; return 1; }
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

# in_root WORKDIR MOUNTS PATH CMD...: runs CMD inside the root, in WORKDIR, with /proc,
# /dev and the directories of MOUNTS (one string, space-separated; those that exist)
# mounted at the same paths, in a private mount namespace, with a clean environment
# whose PATH is PATH. SIGINT is reset to its default: a background job starts with it
# ignored, and the chroot (and the tests' own Ctrl+C) would inherit that.
in_root() {
    local workdir="$1" mounts="$2" path="$3"; shift 3
    copy_host_config "$root"
    local script='
        set -e
        r="$1"; shift
        mount --make-rprivate /
        mount -t proc proc "$r/proc"
        mount --rbind /dev "$r/dev"
        mkdir -p "$r/dev/shm" && mount -t tmpfs tmpfs "$r/dev/shm"
        mount -t tmpfs tmpfs "$r/tmp"
        for d in '"$mounts"'; do
            [ -d "$d" ] || continue
            mkdir -p "$r$d"; mount --bind "$d" "$r$d"
        done
        exec chroot "$r" "$@"
    '
    local keep=(HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" PATH="$path" DEBIAN_FRONTEND=noninteractive)
    [ "$suite" = sid ] && keep+=(VIZTRACER_IN_SID=1)
    local v
    for v in CI PIP_FIND_LINKS PIP_DEFAULT_TIMEOUT PIP_DISABLE_PIP_VERSION_CHECK PIP_CERT \
             SSL_CERT_FILE REQUESTS_CA_BUNDLE CURL_CA_BUNDLE GIT_SSL_CAINFO PYTEST_ARGS \
             PYTHONUNBUFFERED PYTHONDONTWRITEBYTECODE; do
        [ -n "${!v:-}" ] && keep+=("$v=${!v}")
    done
    env --default-signal=INT unshare --mount --fork bash -c "$script" in_root "$root" \
        /usr/bin/env -i "${keep[@]}" bash -c 'cd "$0" && exec "$@"' "$workdir" "$@"
}

# With the Rust toolchain and the checkout mounted, as `run` and `test` use it.
in_checkout() {
    in_root "$top" "${rust_dirs[*]} $top /opt/wheels" \
        "${CARGO_HOME:-$HOME/.cargo}/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" \
        env CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" "$@"
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
        local tmp="$root.partial"
        rm -rf "$tmp"
        echo "== making the Debian $suite root in $root (debootstrap, a few minutes)" >&2
        debootstrap --variant=minbase "$suite" "$tmp" "$mirror" >"$cache/debootstrap-$suite.log" 2>&1 || {
            echo "debootstrap failed, see $cache/debootstrap-$suite.log:" >&2
            tail -n 5 "$cache/debootstrap-$suite.log" >&2
            return 1
        }
        printf 'deb %s %s main\n' "$mirror" "$suite" >"$tmp/etc/apt/sources.list"
        : >"$tmp/.viztracer-packages"
        mv "$tmp" "$root"
    fi
    echo "== installing into the $suite root: $want" >&2
    local log="$cache/apt-$suite.log"
    in_root / "" /usr/bin:/bin:/usr/sbin:/sbin apt-get "${apt_opts[@]}" update >"$log" 2>&1 &&
        in_root / "" /usr/bin:/bin:/usr/sbin:/sbin \
            apt-get "${apt_opts[@]}" install --no-install-recommends "${packages[@]}" >>"$log" 2>&1 || {
        echo "apt-get in the $suite root failed, see $log:" >&2
        tail -n 5 "$log" >&2
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
        [ $# -gt 0 ] || { echo "usage: $0 $suite run CMD..." >&2; exit 2; }
        why=$(can_make_root) || { echo "$why" >&2; exit 1; }
        ensure_root
        in_checkout "$@"
        ;;
    isolated)
        [ $# -gt 1 ] && [ -d "$1" ] || { echo "usage: $0 $suite isolated DIR CMD... (DIR an existing directory)" >&2; exit 2; }
        dir="$(cd "$1" && pwd)"; shift
        why=$(can_make_root) || { echo "$why" >&2; exit 1; }
        ensure_root
        in_root "$dir" "$dir" /usr/bin:/bin "$@"
        ;;
    test)
        [ "$suite" = sid ] && [ $# -eq 1 ] || { echo "usage: $0 sid test VERSION" >&2; exit 2; }
        version="$1"
        why=$(can_make_root) || unavailable "$why"
        ensure_root || unavailable "the Debian sid root could not be made"
        in_checkout make "pytest-$1"
        ;;
    *)
        echo "usage: $0 $suite ensure | run CMD... | isolated DIR CMD... | test VERSION" >&2
        exit 2
        ;;
esac
