#!/usr/bin/env bash
# Cloud mode's coordination overhead, apart from the network: how frames per minute scale with the
# number of workers, and how many bytes each frame moves through storage, per frame format.
#
#   scripts/bench-cloud.sh                      # 1, 2, 4, 8 workers; png, jpeg, webp
#   WORKERS="1 2" FORMATS=png FRAMES=320 scripts/bench-cloud.sh
#
# Every worker runs the TEST-ONLY stylizer (`stylize worker --test-stylizer-ms MS`): it sleeps MS
# per frame and inverts the colours instead of running the network, so the only other costs are the
# protocol's: queue receives, lease renewals, frame downloads and uploads with their PNG/JPEG/WebP
# coding, done markers. Against a local Azurite (started here for each measurement on free loopback
# ports with fresh storage, in memory unless AZURITE_ARGS says otherwise, stopped by PID).
#
# For each measurement the coordinator first uploads the frames and queues the jobs on a side queue
# (`--no-wait`, not timed); N workers start and wait on the empty main queue; `stylize runs requeue`
# then sends the jobs there, and the styling window runs from the first job's start to the last
# job's done marker (from the done markers). Efficiency = throughput(N) / (N × throughput(1)).
#
# Environment: FRAMES (640), SIZE (720x720), MS (100), FRAMES_PER_JOB (8), WORKERS ("1 2 4 8"),
# FORMATS ("png jpeg webp"; the scaling series runs for the first, the others at the largest count).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

FRAMES=${FRAMES:-640}
SIZE=${SIZE:-720x720}
MS=${MS:-100}
FRAMES_PER_JOB=${FRAMES_PER_JOB:-8}
WORKERS=${WORKERS:-"1 2 4 8"}
FORMATS=${FORMATS:-"png jpeg webp"}
# Extra Azurite options. By default the emulator keeps blobs in memory: on this one machine its disk
# persistence costs CPU that the workers need, a cost Azure Storage (on its own servers) never puts
# on the workers' nodes. AZURITE_ARGS= (empty) measures with the emulator writing to disk.
AZURITE_ARGS=${AZURITE_ARGS---inMemoryPersistence}
# Long enough for the requeue below to start after all workers are ready.
IDLE_EXIT=4

cargo build --release --quiet --bin stylize
BIN=$PWD/target/release/stylize
ENTRY=$(scripts/azurite.sh path)
WORK=$(mktemp -d /tmp/stylize-bench-cloud.XXXXXX)
AZURITE_PID=
cleanup() {
    stop_azurite
    rm -rf "$WORK"
}
trap cleanup EXIT

# A fresh Azurite (new data folder, free ports) for every measurement: the emulator keeps all
# metadata in one in-process database that slows down as earlier runs pile up in it, which a
# storage account does not.
start_azurite() {
    local blob_port queue_port table_port
    read -r blob_port queue_port table_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
    rm -rf "$WORK/azurite" && mkdir -p "$WORK/azurite"
    local location=(--location "$WORK/azurite")
    [[ "$AZURITE_ARGS" == *--inMemoryPersistence* ]] && location=()
    node "$ENTRY" "${location[@]}" --blobHost 127.0.0.1 --blobPort "$blob_port" \
        --queueHost 127.0.0.1 --queuePort "$queue_port" --tableHost 127.0.0.1 --tablePort "$table_port" \
        --skipApiVersionCheck --disableTelemetry --silent $AZURITE_ARGS >"$WORK/azurite.log" 2>&1 &
    AZURITE_PID=$!
    for _ in $(seq 100); do
        (echo >/dev/tcp/127.0.0.1/"$blob_port") 2>/dev/null && (echo >/dev/tcp/127.0.0.1/"$queue_port") 2>/dev/null && break
        sleep 0.1
    done
    local key
    key=$(scripts/azurite.sh connection-string | sed 's/.*AccountKey=\([^;]*\);.*/\1/')
    # The key travels in the environment (`--cloud env`), never on a command line.
    export AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=http://127.0.0.1:$blob_port/devstoreaccount1;QueueEndpoint=http://127.0.0.1:$queue_port/devstoreaccount1"
}
stop_azurite() {
    if [[ -n "$AZURITE_PID" ]]; then
        kill "$AZURITE_PID" 2>/dev/null || true
        wait "$AZURITE_PID" 2>/dev/null || true
    fi
    AZURITE_PID=
}

# Real-looking frames: the bundled sample scaled to SIZE and looped to FRAMES frames.
CLIP=$WORK/clip.mp4
ffmpeg -loglevel error -y -stream_loop -1 -i samples/sample.mp4 -vf "scale=${SIZE/x/:}" -frames:v "$FRAMES" \
    -c:v libx264 -preset veryfast -crf 12 -pix_fmt yuv420p -an "$CLIP"

now() { date +%s.%N; }

# measure FORMAT N → prints "seconds moved_bytes_per_frame input_bytes_per_frame styled_bytes_per_frame"
measure() {
    local fmt=$1 n=$2 name="b-$1-$2"
    # measure runs in a subshell, which does not inherit the EXIT trap.
    trap stop_azurite EXIT
    start_azurite
    # Frames up and jobs on a side queue first, while no worker runs: the upload is not timed.
    "$BIN" "$CLIP" --style preset:0 --cloud env --container "$name" --queue "$name-stage" \
        --frame-format "$fmt" --frames-per-job "$FRAMES_PER_JOB" --no-wait --quiet
    local run
    run=$("$BIN" runs --cloud env --container "$name" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["run"])')
    # Workers start (loading LibTorch costs ~0.7 s of CPU each) and wait on an empty queue ...
    local pids=()
    for i in $(seq 0 $((n - 1))); do
        "$BIN" worker --cloud env --container "$name" --queue "$name" --worker-id "$i" \
            --test-stylizer-ms "$MS" --idle-exit "$IDLE_EXIT" --poll-interval 0.1 2>"$WORK/$name-$i.log" &
        pids+=($!)
    done
    for i in $(seq 0 $((n - 1))); do
        until grep -q ": ready" "$WORK/$name-$i.log" 2>/dev/null; do sleep 0.05; done
    done
    # ... until the jobs move to their queue. The styling window runs from the first job's
    # start to the last job's done marker (both from the markers), so no process start counts.
    "$BIN" runs requeue "$run" --cloud env --container "$name" --queue "$name" 2>/dev/null
    for p in "${pids[@]}"; do wait "$p"; done
    local done_frames
    done_frames=$(cat "$WORK/$name"-*.log | sed -n 's/.* processed \([0-9]*\) frames.*/\1/p' | awk '{s += $1} END {print s + 0}')
    [[ "$done_frames" == "$FRAMES" ]] || { echo "bench: $name styled $done_frames of $FRAMES frames" >&2; cat "$WORK/$name"-*.log >&2; exit 1; }
    "$BIN" runs --cloud env --container "$name" --queue "$name" --json --details >"$WORK/$name.json"
    stop_azurite
    python3 - "$WORK/$name.json" <<'EOF'
import json, sys
from datetime import datetime
run = json.load(open(sys.argv[1]))["runs"][0]
def t(s):
    # RFC 3339 with up to nanoseconds; Python reads microseconds.
    s = s.replace("Z", "+00:00")
    if "." in s:
        head, rest = s.split(".", 1)
        frac, tz = rest[:-6], rest[-6:]
        s = f"{head}.{frac[:6].ljust(6, '0')}{tz}"
    return datetime.fromisoformat(s).timestamp()
jobs = run["done_jobs"]
start = min(t(j["finished"]) - j["seconds"] for j in jobs)
end = max(t(j["finished"]) for j in jobs)
# Each input frame is uploaded once and downloaded once, and so is each styled frame.
moved = 2 * (run["bytes_frames"] + run["bytes_styled"]) / run["frames"]
print(f"{end - start:.3f} {moved:.0f} {run['bytes_frames'] / run['frames']:.0f} {run['bytes_styled'] / run['frames']:.0f}")
EOF
}

echo "stylize cloud benchmark: $FRAMES frames of $SIZE, test stylizer $MS ms/frame, $FRAMES_PER_JOB frames/job," \
     "Azurite on 127.0.0.1, $(nproc) CPU cores" >&2
FIRST=${FORMATS%% *}
LAST_N=${WORKERS##* }
declare -A SECONDS_FOR BYTES_FOR IN_FOR OUT_FOR
for n in $WORKERS; do
    read -r s b i o < <(measure "$FIRST" "$n")
    SECONDS_FOR[$FIRST-$n]=$s BYTES_FOR[$FIRST-$n]=$b IN_FOR[$FIRST]=$i OUT_FOR[$FIRST]=$o
    echo "  $FIRST, $n worker(s): ${s} s" >&2
done
for fmt in $FORMATS; do
    [[ "$fmt" == "$FIRST" ]] && continue
    read -r s b i o < <(measure "$fmt" "$LAST_N")
    SECONDS_FOR[$fmt-$LAST_N]=$s BYTES_FOR[$fmt-$LAST_N]=$b IN_FOR[$fmt]=$i OUT_FOR[$fmt]=$o
    echo "  $fmt, $LAST_N worker(s): ${s} s" >&2
done

ONE=${SECONDS_FOR[$FIRST-${WORKERS%% *}]}
BASE_N=${WORKERS%% *}
echo
echo "Throughput by worker count ($FIRST frames, $MS ms/frame test stylizer; ideal: $((60000 / MS)) frames/min per worker)"
printf '%-8s %12s %14s %10s %11s\n' workers seconds frames/min speed-up efficiency
for n in $WORKERS; do
    python3 -c "
s, one, n, base, frames = ${SECONDS_FOR[$FIRST-$n]}, $ONE, $n, $BASE_N, $FRAMES
fpm = frames / s * 60
speed = one / s
eff = speed / (n / base)
print(f'{n:<8} {s:12.2f} {fpm:14.0f} {speed:9.2f}x {eff * 100:10.1f}%')"
done
echo
echo "Bytes per frame by format ($SIZE; moved = each input and styled frame uploaded once and downloaded once)"
printf '%-7s %14s %14s %16s %14s\n' format input-frame styled-frame moved/frame "frames/min@$LAST_N"
for fmt in $FORMATS; do
    python3 -c "
i, o, b, s, frames = ${IN_FOR[$fmt]}, ${OUT_FOR[$fmt]}, ${BYTES_FOR[$fmt-$LAST_N]}, ${SECONDS_FOR[$fmt-$LAST_N]}, $FRAMES
print(f'{\"$fmt\":<7} {i / 1e3:11.0f} KB {o / 1e3:11.0f} KB {b / 1e6:13.2f} MB {frames / s * 60:14.0f}')"
done
