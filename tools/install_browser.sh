#!/usr/bin/env bash
# Makes sure Debian's headless Chromium is at /usr/bin/chromium for the viewer's
# browser tests (tests/browser/). Never downloads a browser build of its own.
#
# Already there: nothing to do. As root (CI): apt-get installs it. Otherwise it
# tries sudo without a password. If it still can't, it says so and fails when
# CI=true (the browser tests must run there), or lets the tests skip elsewhere.
set -u
CHROMIUM="${VIZVIEWER_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if [ "$(id -u)" = "0" ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    SUDO="none"
fi
if [ "$SUDO" != "none" ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing Debian's chromium for the browser tests"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q >/dev/null && \
        $SUDO apt-get install -y -q chromium >/dev/null
fi
if [ -x "$CHROMIUM" ]; then
    "$CHROMIUM" --version 2>/dev/null | head -n1
    exit 0
fi
echo "Chromium is not installed at $CHROMIUM (apt-get install chromium); the browser tests will not run."
case "${CI:-}" in
    true|1|yes) exit 1 ;;
esac
exit 0
