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
# Each row gives the coordinator's CPU per minute of waiting, and with Azurite the emulator's: they
# grow with what each request lists, where the number of requests need not.
#
# STYLED=1 (dir only) first has a worker style every job (test stylizer, 0 ms), then takes job 0's
# done marker away: the coordinator waits on its first job with the rest of the run done, which is
# where following used to cost the most (every done marker and styled frame listed again and again).
#
# OLD_BIN=path/to/an/older/stylize measures that binary too, each length side by side with this one
# (an older binary may not count its own requests: on dir: its requests column is "-"). Both then
# send frames (an older binary knows no other transport), which is what the bookkeeping grew with.
#
# Environment: BACKEND (dir), LENGTHS ("3600 432000"; azurite: "3600 14400"), WINDOW (60),
# SETTLE (20), OLD_BIN, STYLED.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

BACKEND=${BACKEND:-dir}
if [[ "$BACKEND" == azurite ]]; then LENGTHS=${LENGTHS:-"3600 14400"}; else LENGTHS=${LENGTHS:-"3600 432000"}; fi
WINDOW=${WINDOW:-60}
SETTLE=${SETTLE:-20}
OLD_BIN=${OLD_BIN:-}
TRANSPORT_ARGS=()
STYLED=${STYLED:-}
[[ -z "$OLD_BIN" && -z "$STYLED" ]] || TRANSPORT_ARGS=(--transport frames)
[[ -z "$STYLED" || "$BACKEND" == dir ]] || { echo "bench-poll-cost: STYLED needs BACKEND=dir" >&2; exit 2; }

cargo build --release --quiet --bins
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

requests() { grep -c 'StorageContextMiddleware: RequestMethod=' "$WORK/requests.log" 2>/dev/null || true; }
stop_azurite() { kill "$AZURITE_PID"; wait "$AZURITE_PID" 2>/dev/null || true; AZURITE_PID=; }

# measure BIN FRAMES [ARGS…] → prints "jobs upload_s requests_per_minute rss_mb peak_rss_mb"
measure() {
    local bin=$1 frames=$2 spec; shift 2
    if [[ "$BACKEND" == azurite ]]; then
        start_azurite
        spec=env
    else
        spec="dir:$WORK/store-$frames"
    fi
    local clip=$WORK/clip-$frames.mp4
    [[ -f "$clip" ]] || ffmpeg -loglevel error -y -f lavfi -i "testsrc2=size=32x32:rate=60" -frames:v "$frames" \
        -c:v libx264 -preset ultrafast -g 600 -pix_fmt yuv420p "$clip"
    local started upload jobs per_minute rss peak after storage_cpu=- coordinator_cpu
    started=$(date +%s)
    "$bin" "$clip" --style preset:0 --cloud "$spec" "$@" --no-wait --quiet -o "$WORK/out-$frames.mp4"
    upload=$(( $(date +%s) - started ))
    jobs=$("$bin" runs --cloud "$spec" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["jobs"])' 2>/dev/null || echo "?")
    if [[ -n "$STYLED" ]]; then
        # Every job styled, then job 0's done marker taken away: the coordinator waits on its first
        # job with the rest of the run done, where following costs the most.
        "$bin" worker --cloud "$spec" --test-stylizer-ms 0 --idle-exit 2 --poll-interval 0.1 2>"$WORK/worker-$frames.log"
        rm -f "$WORK/store-$frames"/blobs/stylize/runs/*/done/00000.*
    fi
    local log=$WORK/follow-$frames.log
    STYLIZE_STORAGE_STATS=1 "$bin" "$clip" --style preset:0 --cloud "$spec" "$@" --quiet -o "$WORK/out-$frames.mp4" 2>"$log" &
    FOLLOWER_PID=$!
    sleep "$SETTLE"
    local before cpu_before storage_before
    before=$(requests)
    cpu_before=$(cpu_ticks "$FOLLOWER_PID")
    [[ "$BACKEND" == azurite ]] && storage_before=$(cpu_ticks "$AZURITE_PID")
    sleep "$WINDOW"
    after=$(requests)
    coordinator_cpu=$(cpu_per_minute "$FOLLOWER_PID" "$cpu_before")
    if [[ "$BACKEND" == azurite ]]; then
        per_minute=$(( (after - before) * 60 / WINDOW ))
        storage_cpu=$(cpu_per_minute "$AZURITE_PID" "$storage_before")
    else
        # The coordinator's own count, its second minute (the first holds its one whole reading);
        # "-" from a binary that does not count (no line by then).
        local waited=0
        until [[ $(grep -c '^storage: ' "$log") -ge 2 || $waited -ge 90 ]]; do sleep 1; waited=$((waited + 1)); done
        per_minute=$(grep '^storage: ' "$log" | sed -n 2p | awk '{print $2 "/" $13}')
        per_minute=${per_minute:--}
    fi
    rss=$(awk '/^VmRSS/ {printf "%.0f", $2/1024}' "/proc/$FOLLOWER_PID/status")
    peak=$(awk '/^VmHWM/ {printf "%.0f", $2/1024}' "/proc/$FOLLOWER_PID/status")
    kill "$FOLLOWER_PID"; wait "$FOLLOWER_PID" 2>/dev/null || true; FOLLOWER_PID=
    [[ "$BACKEND" == azurite ]] && stop_azurite
    rm -rf "$WORK/store-$frames"
    echo "$jobs ${upload}s $per_minute $coordinator_cpu $storage_cpu $rss $peak"
}

# User + system CPU ticks a process has used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# CPU seconds per minute a process used since it had used `ticks`, over the window.
cpu_per_minute() {
    python3 -c "print(f'{($(cpu_ticks "$1") - $2) / $(getconf CLK_TCK) * 60 / $WINDOW:.1f}s')"
}

# CPU per minute of waiting, the coordinator's and (Azurite) the emulator's: they grow with what
# each request lists, where the number of requests need not.
# On dir: the requests column is "requests/entries listed" in the coordinator's second minute.
ROW='%-6s %-8s %-6s %-8s %-16s %-10s %-12s %-7s %s\n'
printf "$ROW" binary frames jobs upload requests/min "coord CPU" "storage CPU" "RSS MB" "peak RSS MB"
for frames in $LENGTHS; do
    if [[ -n "$OLD_BIN" ]]; then
        read -r jobs upload rate cpu scpu rss peak < <(measure "$OLD_BIN" "$frames")
        printf "$ROW" old "$frames" "$jobs" "$upload" "$rate" "$cpu" "$scpu" "$rss" "$peak"
    fi
    read -r jobs upload rate cpu scpu rss peak < <(measure "$BIN" "$frames" "${TRANSPORT_ARGS[@]}")
    printf "$ROW" this "$frames" "$jobs" "$upload" "$rate" "$cpu" "$scpu" "$rss" "$peak"
done
