#!/usr/bin/env bash
# Azurite (the Azure Storage emulator) for stylize's cloud tests and for trying
# `--cloud` without an Azure account.
#
#   scripts/azurite.sh install   install the pinned Azurite into the cache (idempotent)
#   scripts/azurite.sh path      install if needed, then print the entry script to run with `node`
#   scripts/azurite.sh start DIR run Azurite in the foreground on the default ports, data in DIR
#   scripts/azurite.sh connection-string
#                                print the connection string for `start` (the emulator's public,
#                                well-known development key; never a real account's)
#
# Tests do not use `start`: the harness in crates/cloud (feature `testing`) calls
# `path`, then launches `node <entry>` itself on free ports with a fresh data
# folder, so the PID it holds is Azurite's own and it can kill it by PID.
#
# Environment: STYLIZE_CACHE (default ~/.cache/stylize) is where it is installed;
# AZURITE_VERSION overrides the pinned version.
set -euo pipefail

# 3.36+ require Node >= 21; this is the newest release that runs on Node 20. Its whole
# dependency tree is locked in scripts/azurite/package-lock.json (installed with `npm ci`).
LOCKED_VERSION=3.35.0
AZURITE_VERSION="${AZURITE_VERSION:-$LOCKED_VERSION}"
CACHE="${STYLIZE_CACHE:-$HOME/.cache/stylize}"
PREFIX="$CACHE/azurite-$AZURITE_VERSION"
ENTRY="$PREFIX/node_modules/azurite/dist/src/azurite.js"
LOCK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/azurite"
# The installed tree remembers which lock it came from: a changed lock installs again.
STAMP="$PREFIX/.package-lock-sha256"
if [[ "$AZURITE_VERSION" == "$LOCKED_VERSION" ]]; then
    WANT_STAMP="$(sha256sum "$LOCK_DIR/package-lock.json" | cut -d' ' -f1)"
else
    WANT_STAMP="unlocked azurite@$AZURITE_VERSION"
fi

die() { echo "azurite.sh: $*" >&2; exit 1; }

installed() {
    [[ -f "$ENTRY" && "$(cat "$STAMP" 2>/dev/null)" == "$WANT_STAMP" ]]
}

install() {
    if installed; then
        return 0
    fi
    command -v node >/dev/null || die "node is not installed (Azurite needs Node.js >= 18)"
    local node_major
    node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
    [[ "$node_major" -ge 18 ]] \
        || die "Node.js $(node --version 2>/dev/null) is too old: Azurite $AZURITE_VERSION needs Node.js >= 18 (Debian 12 and Ubuntu 24.04 ship 18)"
    command -v npm >/dev/null || die "npm is not installed"
    mkdir -p "$CACHE"
    # Parallel test processes may all ask at once: one installs, the others wait.
    exec 9>"$CACHE/.azurite-install.lock"
    flock 9
    if installed; then
        return 0
    fi
    # Install into a scratch folder and move it into place, so an interrupted
    # install never leaves a half-populated prefix that looks finished.
    local tmp
    tmp="$(mktemp -d "$CACHE/.azurite-install.XXXXXX")"
    # The path is fixed now: at exit the local is gone and a same-named variable could be anyone's.
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" EXIT
    echo "azurite.sh: installing azurite@$AZURITE_VERSION into $PREFIX" >&2
    if [[ "$AZURITE_VERSION" == "$LOCKED_VERSION" ]]; then
        cp "$LOCK_DIR/package.json" "$LOCK_DIR/package-lock.json" "$tmp/"
        (cd "$tmp" && npm ci --no-audit --no-fund --loglevel=error >&2) \
            || die "npm ci (azurite@$AZURITE_VERSION from scripts/azurite/package-lock.json) failed"
    else
        echo "azurite.sh: AZURITE_VERSION=$AZURITE_VERSION is not the locked $LOCKED_VERSION; its dependencies are not pinned" >&2
        npm install --prefix "$tmp" --no-audit --no-fund --no-save --loglevel=error \
            "azurite@$AZURITE_VERSION" >&2 \
            || die "npm install azurite@$AZURITE_VERSION failed"
    fi
    [[ -f "$tmp/node_modules/azurite/dist/src/azurite.js" ]] \
        || die "azurite@$AZURITE_VERSION installed, but dist/src/azurite.js is missing"
    echo "$WANT_STAMP" >"$tmp/.package-lock-sha256"
    rm -rf "$PREFIX"
    mv "$tmp" "$PREFIX"
    trap - EXIT
}

case "${1:-}" in
    install)
        install
        echo "$ENTRY"
        ;;
    path)
        install
        echo "$ENTRY"
        ;;
    start)
        [[ $# -ge 2 ]] || die "usage: scripts/azurite.sh start DATA_DIR"
        install
        mkdir -p "$2"
        exec node "$ENTRY" --location "$2" \
            --blobHost 127.0.0.1 --blobPort 10000 \
            --queueHost 127.0.0.1 --queuePort 10001 \
            --tableHost 127.0.0.1 --tablePort 10002 \
            --skipApiVersionCheck --disableTelemetry --silent
        ;;
    connection-string)
        echo "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1"
        ;;
    *)
        die "usage: scripts/azurite.sh install|path|start DATA_DIR|connection-string"
        ;;
esac
