#!/usr/bin/env bash
# From a fresh clone to music in one command, on a laptop CPU: set up .venv, prepare the bundled corpus,
# fine-tune the model that ships with midilm on it for a few minutes, and generate two pieces with the result.
# Times measured on a 2-core machine are in the README ("Two commands") and BENCHMARKS.md.
# Environment: QUICKSTART_MINUTES (fine-tuning minutes, default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${QUICKSTART_MINUTES:-5}
run="runs/quickstart-$(date +%Y%m%d-%H%M%S)"
out="samples/$(basename "$run")"
shipped=midilm/assets/default-model
times=()

stage() {
  printf '\n== %s %s\n' "$(date +%H:%M:%S)" "$*"
  stage_started=$SECONDS
}
stage_done() { times+=("$1 $(((SECONDS - stage_started) / 60)):$(printf '%02d' $(((SECONDS - stage_started) % 60)))"); }

stage "1/4 setting up .venv: torch for the CPU, midilm and its tools (pip shows each download)"
bash scripts/setup.sh
stage_done setup

stage "2/4 preparing the bundled corpus: music21's Bach chorales and Essen folk songs, converted to MIDI once (the bar shows the time left)"
.venv/bin/midilm prepare
stage_done prepare

stage "3/4 fine-tuning the shipped model on it for $minutes minutes (Ctrl-C stops and saves; resume with: .venv/bin/midilm train --resume $run)"
.venv/bin/midilm train --init "$shipped" --eval-every 50 --eval-batches 8 --max-minutes "$minutes" --out "$run"
stage_done train

stage "4/4 generating two pieces with it (each line says how long the piece is and why it stopped)"
.venv/bin/midilm generate --checkpoint "$run" --num-samples 2 --events 384 --min-events 128 --audio --piano-roll --out "$out"
stage_done generate

cat <<DONE

Done in $((SECONDS / 60)) min $((SECONDS % 60)) s (${times[*]}).
Listen to $out/*.wav, look at $out/*.png, open $out/*.mid in any MIDI player or DAW.
Training curves: $run/curves.png. The model that ships with midilm, without fine-tuning:
  .venv/bin/midilm generate --audio --piano-roll
or in the web app: .venv/bin/midilm app
(.venv/bin/midilm, or \`source .venv/bin/activate\` once and then plain \`midilm\`.)
DONE
