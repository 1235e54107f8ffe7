#!/usr/bin/env bash
# What following a run costs the coordinator, by the run's length: storage requests per minute
# while it waits for workers, and its resident memory.
#
#   scripts/bench-poll-cost.sh                            # 3,600 and 432,000 frames (1 min, 2 h at 60 fps)
#   BACKEND=azurite LENGTHS="3600 14400" scripts/bench-poll-cost.sh
#
# For each length the coordinator first uploads the frames and queues the jobs (`--no-wait`; tiny
# 32×32 frames, so the upload is quick), then runs again to follow the run. No worker runs, so
# nothing changes while it waits: every request is the cost of polling.
#
# BACKEND=dir (the default) uses a `dir:` folder and the coordinator's own count
# (`STYLIZE_STORAGE_STATS=1`: one request per call, and one per 5,000 entries listed, as Azure
# pages listings); the second minute is reported, the first holding its one whole reading of the
# run. BACKEND=azurite counts the requests in a local Azurite's own log (started here in memory on
# free loopback ports, stopped by PID) over WINDOW seconds after SETTLE; the emulator slows down
# as it holds more blobs (36,000 frames took over 8 minutes to upload on the 2-core build
# machine), so keep its lengths short.
#
# Environment: BACKEND (dir), LENGTHS ("3600 432000"; azurite: "3600 14400"), WINDOW (60),
# SETTLE (20).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

BACKEND=${BACKEND:-dir}
if [[ "$BACKEND" == azurite ]]; then LENGTHS=${LENGTHS:-"3600 14400"}; else LENGTHS=${LENGTHS:-"3600 432000"}; fi
WINDOW=${WINDOW:-60}
SETTLE=${SETTLE:-20}

cargo build --release --quiet --bin stylize
BIN=$PWD/target/release/stylize
ENTRY=$(scripts/azurite.sh path)
WORK=$(mktemp -d /tmp/stylize-bench-poll.XXXXXX)
AZURITE_PID=
FOLLOWER_PID=
cleanup() {
    [[ -n "$FOLLOWER_PID" ]] && kill "$FOLLOWER_PID" 2>/dev/null || true
    [[ -n "$AZURITE_PID" ]] && kill "$AZURITE_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

start_azurite() {
    local blob_port queue_port table_port key
    read -r blob_port queue_port table_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
    : >"$WORK/requests.log"
    node "$ENTRY" --inMemoryPersistence --blobHost 127.0.0.1 --blobPort "$blob_port" \
        --queueHost 127.0.0.1 --queuePort "$queue_port" --tableHost 127.0.0.1 --tablePort "$table_port" \
        --skipApiVersionCheck --disableTelemetry --silent --debug "$WORK/requests.log" >"$WORK/azurite.log" 2>&1 &
    AZURITE_PID=$!
    for _ in $(seq 100); do
        (echo >/dev/tcp/127.0.0.1/"$blob_port") 2>/dev/null && (echo >/dev/tcp/127.0.0.1/"$queue_port") 2>/dev/null && break
        sleep 0.1
    done
    key=$(scripts/azurite.sh connection-string | sed 's/.*AccountKey=\([^;]*\);.*/\1/')
    export AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=http://127.0.0.1:$blob_port/devstoreaccount1;QueueEndpoint=http://127.0.0.1:$queue_port/devstoreaccount1"
}

requests() { grep -c 'StorageContextMiddleware: RequestMethod=' "$WORK/requests.log" || true; }
stop_azurite() { kill "$AZURITE_PID"; wait "$AZURITE_PID" 2>/dev/null || true; AZURITE_PID=; }

printf '%-9s %-6s %-10s %-16s %-12s %s\n' frames jobs upload requests/min "RSS MB" "peak RSS MB"
for frames in $LENGTHS; do
    if [[ "$BACKEND" == azurite ]]; then
        start_azurite
        spec=env
    else
        spec="dir:$WORK/store-$frames"
    fi
    clip=$WORK/clip-$frames.mp4
    ffmpeg -loglevel error -y -f lavfi -i "testsrc2=size=32x32:rate=60" -frames:v "$frames" \
        -c:v libx264 -preset ultrafast -g 600 -pix_fmt yuv420p "$clip"
    started=$(date +%s)
    "$BIN" "$clip" --style preset:0 --cloud "$spec" --no-wait --quiet -o "$WORK/out-$frames.mp4"
    upload=$(( $(date +%s) - started ))
    jobs=$("$BIN" runs --cloud "$spec" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["jobs"])' 2>/dev/null || echo "?")
    log=$WORK/follow-$frames.log
    STYLIZE_STORAGE_STATS=1 "$BIN" "$clip" --style preset:0 --cloud "$spec" --quiet -o "$WORK/out-$frames.mp4" 2>"$log" &
    FOLLOWER_PID=$!
    if [[ "$BACKEND" == azurite ]]; then
        sleep "$SETTLE"
        before=$(requests)
        sleep "$WINDOW"
        after=$(requests)
        per_minute=$(( (after - before) * 60 / WINDOW ))
    else
        until [[ $(grep -c '^storage: ' "$log") -ge 2 ]]; do sleep 1; done
        per_minute=$(grep '^storage: ' "$log" | sed -n 2p | awk '{print $2}')
    fi
    rss=$(awk '/^VmRSS/ {printf "%.0f", $2/1024}' "/proc/$FOLLOWER_PID/status")
    peak=$(awk '/^VmHWM/ {printf "%.0f", $2/1024}' "/proc/$FOLLOWER_PID/status")
    kill "$FOLLOWER_PID"; wait "$FOLLOWER_PID" 2>/dev/null || true; FOLLOWER_PID=
    [[ "$BACKEND" == azurite ]] && stop_azurite
    rm -rf "$WORK/store-$frames"
    printf '%-9s %-6s %-10s %-16s %-12s %s\n' "$frames" "$jobs" "${upload}s" "$per_minute" "$rss" "$peak"
done
