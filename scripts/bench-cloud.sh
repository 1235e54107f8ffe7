#!/usr/bin/env bash
# Cloud mode end to end, coordinator included, both transports side by side: how whole runs scale
# with the number of workers, what each frame costs the coordinator and the workers in CPU, and how
# many bytes each frame stores and moves.
#
#   scripts/bench-cloud.sh                               # segments and frames; 1, 2, 4, 8 workers
#   WORKERS="1 2" TRANSPORTS=segments FRAMES=240 scripts/bench-cloud.sh
#
# Every worker runs the TEST-ONLY stylizer (`stylize worker --test-stylizer-ms MS`): it sleeps MS
# per frame and inverts the colours instead of running the network, so what is measured is the
# rest: queue, leases, transfers and, per transport, the coding. Segments: the coordinator cuts
# and joins by stream copy while the workers decode and x264-encode; frames: the coordinator
# decodes, PNG-codes and x264-encodes every frame while the workers PNG-code them. Against a local
# Azurite (started for each measurement on free loopback ports with fresh storage, in memory unless
# AZURITE_ARGS says otherwise, stopped by PID).
#
# Each measurement starts N workers, waits until they are ready, then times one whole coordinator
# run (hash, count, upload, queue, follow, join or restitch, commit), with CPU from /usr/bin/time
# for the coordinator and for the workers (less a worker's start-up, measured once). Efficiency =
# throughput(N) / (N × throughput(1)). All processes share this machine's cores: the workers'
# encoders compete with each other as they never would on separate GPU nodes, so the scaling runs
# of both transports use x264 at PRESET (ultrafast). The bytes each frame stores and moves are
# measured apart, at stylize's default preset (BYTES_PRESET, fast) with the test stylizer at 0 ms:
# a faster preset makes bigger segments.
#
# The input is the bundled sample scaled to SIZE and looped, at the reference clip's bit rate
# (the orangutan clip: 720×720, 30 fps, ~10 KB per frame, so INPUT_RATE 2400k).
#
# Two efficiencies are reported: of whole runs (what users wait for), and of the styling window,
# first job started to last job done (the measure of the benchmark before whole runs were timed).
# REPEAT runs each measurement that many times and keeps the one of median wall time: on two
# shared cores one 8-worker run varies by ±0.3 s.
#
# Environment: FRAMES (768), SIZE (720x720), MS (100), FRAMES_PER_JOB (24), WORKERS ("1 2 4 8"),
# TRANSPORTS ("segments frames"), PRESET (ultrafast), BYTES_PRESET (fast), CRF (18), INPUT_RATE
# (2400k), REPEAT (1). The defaults make 32 jobs, whole rounds for 1, 2, 4 and 8 workers, so no worker count
# waits on a last, partly filled round; the clip has a keyframe every 24 frames, so each job's
# piece is its own.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

FRAMES=${FRAMES:-768}
SIZE=${SIZE:-720x720}
MS=${MS:-100}
FRAMES_PER_JOB=${FRAMES_PER_JOB:-24}
WORKERS=${WORKERS:-"1 2 4 8"}
TRANSPORTS=${TRANSPORTS:-"segments frames"}
PRESET=${PRESET:-ultrafast}
BYTES_PRESET=${BYTES_PRESET:-fast}
CRF=${CRF:-18}
INPUT_RATE=${INPUT_RATE:-2400k}
REPEAT=${REPEAT:-1}
# Extra Azurite options. By default the emulator keeps blobs in memory: on this one machine its disk
# persistence costs CPU that the workers need, a cost Azure Storage (on its own servers) never puts
# on the workers' nodes. AZURITE_ARGS= (empty) measures with the emulator writing to disk.
AZURITE_ARGS=${AZURITE_ARGS---inMemoryPersistence}
# Workers leave once the queue has been empty this long after the run.
IDLE_EXIT=3

cargo build --release --quiet --bins
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

# Real-looking frames: the bundled sample scaled to SIZE and looped to FRAMES frames, at the
# reference clip's bit rate, a keyframe every FRAMES_PER_JOB frames.
CLIP=$WORK/clip.mp4
ffmpeg -loglevel error -y -stream_loop -1 -i samples/sample.mp4 -vf "scale=${SIZE/x/:}" -frames:v "$FRAMES" \
    -c:v libx264 -preset fast -b:v "$INPUT_RATE" -maxrate "$INPUT_RATE" -bufsize "$INPUT_RATE" \
    -g "$FRAMES_PER_JOB" -pix_fmt yuv420p -an "$CLIP"

cpu_of() { awk '{print $1 + $2}' "$1"; }

# A worker's start-up CPU (LibTorch, storage clients), taken off each worker's total below.
start_azurite
/usr/bin/time -f "%U %S" -o "$WORK/startup.time" "$BIN" worker --cloud env --container startup \
    --queue startup --test-stylizer-ms 0 --idle-exit 0.1 2>/dev/null || true
STARTUP=$(cpu_of "$WORK/startup.time")
stop_azurite

# Each line of stdin, stamped with the time it arrived (for the styling window).
STAMP='import sys, time
for line in sys.stdin:
    sys.stdout.write(f"{time.time():.3f} {line}")
    sys.stdout.flush()'

# measure TRANSPORT N [PRESET MS] → prints
# "wall_s coordinator_cpu_s workers_cpu_s stored_bytes moved_bytes window_s"
measure() {
    local transport=$1 n=$2 preset=${3:-$PRESET} ms=${4:-$MS} name="b-$1-$2-${3:-scaling}"
    # measure runs in a subshell, which does not inherit the EXIT trap.
    trap stop_azurite EXIT
    start_azurite
    rm -rf "$WORK/out-$name" "$WORK/$name"-*.log
    local pids=()
    for i in $(seq 0 $((n - 1))); do
        /usr/bin/time -f "%U %S" -o "$WORK/$name-$i.time" "$BIN" worker --cloud env --container "$name" \
            --queue "$name" --worker-id "$i" --test-stylizer-ms "$ms" --idle-exit "$IDLE_EXIT" \
            --poll-interval 0.1 2> >(python3 -u -c "$STAMP" >"$WORK/$name-$i.log") &
        pids+=($!)
    done
    for i in $(seq 0 $((n - 1))); do
        until grep -q ": ready" "$WORK/$name-$i.log" 2>/dev/null; do sleep 0.05; done
    done
    local t0 t1
    t0=$(date +%s.%N)
    /usr/bin/time -f "%U %S" -o "$WORK/$name.time" "$BIN" "$CLIP" --style preset:0 --cloud env \
        --container "$name" --queue "$name" --transport "$transport" --frames-per-job "$FRAMES_PER_JOB" \
        --preset "$preset" --crf "$CRF" --steady 0 --out-dir "$WORK/out-$name" --quiet 2>"$WORK/$name.log"
    t1=$(date +%s.%N)
    for p in "${pids[@]}"; do wait "$p" || true; done
    # The stamping pipes end just after their workers.
    for i in $(seq 0 $((n - 1))); do
        until grep -q " processed " "$WORK/$name-$i.log" 2>/dev/null; do sleep 0.05; done
    done
    local done_frames
    done_frames=$(cat "$WORK/$name"-*.log | sed -n 's/.* processed \([0-9]*\) frames.*/\1/p' | awk '{s += $1} END {print s + 0}')
    [[ "$done_frames" == "$FRAMES" ]] || { echo "bench: $name styled $done_frames of $FRAMES frames" >&2; cat "$WORK/$name"*.log >&2; exit 1; }
    "$BIN" runs --cloud env --container "$name" --queue "$name" --json >"$WORK/$name.json"
    stop_azurite
    local workers_cpu=0
    for i in $(seq 0 $((n - 1))); do
        workers_cpu=$(python3 -c "print($workers_cpu + max(0.0, $(cpu_of "$WORK/$name-$i.time") - $STARTUP))")
    done
    # Each piece or frame goes up once and down once, and so does each segment or styled frame
    # (with --steady 0 no job fetches pieces for warm-up frames; steadied, a job fetches at most
    # the piece before its range as well).
    # The styling window: the first "started" line to the last job's "frames in" line.
    local window
    window=$(cat "$WORK/$name"-*.log | awk '/: started,/ {if (!s || $1 < s) s = $1} / frames in [0-9.]+ s/ {if ($1 > e) e = $1} END {printf "%.3f", e - s}')
    python3 -c '
import json, sys
run = json.load(open(sys.argv[1]))["runs"][0]
t0, t1, coord, workers, window = map(float, sys.argv[2:7])
stored = run["bytes_frames"] + run["bytes_styled"]
print(f"{t1 - t0:.3f} {coord:.3f} {workers:.3f} {stored} {2 * stored} {window:.3f}")' \
        "$WORK/$name.json" "$t0" "$t1" "$(cpu_of "$WORK/$name.time")" "$workers_cpu" "$window"
}

INPUT_KB=$(python3 -c "print(round($(stat -c %s "$CLIP") / $FRAMES / 1000, 1))")
echo "stylize cloud benchmark: $FRAMES frames of $SIZE (input $INPUT_KB KB/frame)," \
     "test stylizer $MS ms/frame, $FRAMES_PER_JOB frames/job, x264 $PRESET CRF $CRF, --steady 0," \
     "Azurite on 127.0.0.1, $(nproc) CPU cores; worker start-up ${STARTUP} s CPU (taken off)" >&2
# median_of TRANSPORT N → the measurement of median wall time among REPEAT.
median_of() {
    local runs=() r
    for r in $(seq "$REPEAT"); do
        runs+=("$(measure "$1" "$2")")
        echo "  $1, $2 worker(s), run $r: ${runs[-1]%% *} s" >&2
    done
    printf '%s\n' "${runs[@]}" | sort -n | sed -n "$(((REPEAT + 1) / 2))p"
}

declare -A WALL COORD WORK_CPU STORED MOVED WINDOW
for transport in $TRANSPORTS; do
    for n in $WORKERS; do
        read -r w c k s m win < <(median_of "$transport" "$n")
        WALL[$transport-$n]=$w COORD[$transport-$n]=$c WORK_CPU[$transport-$n]=$k
        STORED[$transport-$n]=$s MOVED[$transport-$n]=$m WINDOW[$transport-$n]=$win
    done
    read -r _ _ _ s m _ < <(measure "$transport" 2 "$BYTES_PRESET" 0)
    STORED[$transport-bytes]=$s MOVED[$transport-bytes]=$m
    echo "  $transport, bytes at $BYTES_PRESET: done" >&2
done

BASE_N=${WORKERS%% *}
echo
echo "Whole runs at x264 $PRESET CRF $CRF, coordinator included ($FRAMES frames; ideal: $((60000 / MS)) frames/min per worker)"
printf '%-9s %-8s %8s %11s %11s %11s %12s %13s %11s %11s\n' transport workers seconds frames/min efficiency \
    window-eff coord-ms/fr worker-ms/fr stored/fr moved/fr
for transport in $TRANSPORTS; do
    for n in $WORKERS; do
        python3 -c "
w, one, n, base, frames = ${WALL[$transport-$n]}, ${WALL[$transport-$BASE_N]}, $n, $BASE_N, $FRAMES
win, win_one = ${WINDOW[$transport-$n]}, ${WINDOW[$transport-$BASE_N]}
c, k, s, m = ${COORD[$transport-$n]}, ${WORK_CPU[$transport-$n]}, ${STORED[$transport-$n]}, ${MOVED[$transport-$n]}
eff = (one / w) / (n / base)
win_eff = (win_one / win) / (n / base)
print(f'{\"$transport\":<9} {n:<8} {w:8.2f} {frames / w * 60:11.0f} {eff * 100:10.1f}% {win_eff * 100:10.1f}% {c * 1000 / frames:12.1f} {k * 1000 / frames:13.1f} {s / frames / 1e3:8.1f} KB {m / frames / 1e3:8.1f} KB')"
    done
done
echo
echo "Bytes per frame at x264 $BYTES_PRESET CRF $CRF (stylize's default preset; input $INPUT_KB KB/frame)"
for transport in $TRANSPORTS; do
    python3 -c "
s, m, frames = ${STORED[$transport-bytes]}, ${MOVED[$transport-bytes]}, $FRAMES
print(f'{\"$transport\":<9} stored {s / frames / 1e3:6.1f} KB   moved {m / frames / 1e3:6.1f} KB')"
done
echo
echo "Ceiling: frames/s that one coordinator core sustains (1000 / its CPU ms per frame, at $BASE_N worker(s))"
for transport in $TRANSPORTS; do
    python3 -c "
c, frames = ${COORD[$transport-$BASE_N]}, $FRAMES
print(f'{\"$transport\":<9} {frames / c:8.0f} frames/s per core')"
done
