#!/usr/bin/env bash
# From a fresh clone to music in one command, on a laptop CPU (about 9 minutes on 2 cores):
# set up .venv, prepare the bundled corpus, train a small model for a few minutes, generate with it.
# Environment: QUICKSTART_MINUTES (training minutes, default 5), QUICKSTART_ARCH (default hier).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${QUICKSTART_MINUTES:-5}
arch=${QUICKSTART_ARCH:-hier}
run="runs/quickstart-$(date +%Y%m%d-%H%M%S)"
out="samples/$(basename "$run")"

echo "== 1/4 setting up .venv (torch for the CPU, midilm and its tools)"
bash scripts/setup.sh

echo "== 2/4 preparing the bundled corpus (music21's Bach chorales and Essen folk songs, converted on this machine once)"
.venv/bin/midilm prepare

echo "== 3/4 training a small $arch model for $minutes minutes (Ctrl-C stops and saves; resume with: midilm train --resume $run)"
.venv/bin/midilm train --arch "$arch" --preset small --context-events 128 --eval-every 100 --eval-batches 16 \
  --max-minutes "$minutes" --out "$run"

echo "== 4/4 generating music with it"
.venv/bin/midilm generate --checkpoint "$run" --num-samples 2 --events 384 --min-events 128 --audio --piano-roll --out "$out"

cat <<DONE

Done. Listen to $out/*.wav, look at $out/*.png, open $out/*.mid in any MIDI player or DAW.
Training curves: $run/curves.png. For better music right away, use the model that ships with midilm:
  .venv/bin/midilm generate --audio --piano-roll
or open the web app: .venv/bin/midilm app
DONE
