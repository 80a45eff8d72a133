#!/usr/bin/env bash
# Reproduce the reference training runs of docs/training.md on the CPU (2 cores: about an hour).
#
#   data   16 training episodes (seeds 10..25, 60 frames each), 1 validation episode (seed 200,
#          100 frames) that the runs validate on while training, and 3 test episodes (seeds
#          300..302, 100 frames each) that only the final evaluation sees; all recorded by
#          `depth-train sim` (320x240, 10 Hz).
#   train  each mode on the 16 episodes at 128x160 with the mobile encoder.
#   test   every model next to the two baselines (untrained network, constant depth) on the 300
#          test frames, against the simulator's exact depth of the camera the mode learns from
#          (the wrist RGB-D camera for mono and supervised, the left stereo camera for stereo).
#
# Results: out/ref/<run>/eval_model.{json,txt} (the final weights) and eval_model_best.* (the
# weights of the best validation, model_best.pt), plus *_median.* for the metric models: the same
# after per-image median scaling. Training logs: out/ref/<run>.train.log.
#   usage: scripts/reference_runs.sh [STEPS_SCALE [RUN ...]]
#     STEPS_SCALE  multiplies every run's steps (default 1; e.g. 0.05 for a quick smoke run)
#     RUN          only these runs (supervised_silog supervised_ssi mono_tf mono_posenet stereo)
# A run whose out/ref/<run>/model.pt exists is not trained again (delete the folder to retrain);
# its evaluation is always redone. REF_OUT=DIR writes elsewhere; DEPTH_TRAIN=EXE picks the tool.
set -euo pipefail
cd "$(dirname "$0")/.."
export MUJOCO_GL=${MUJOCO_GL:-osmesa} PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-osmesa}
DT=${DEPTH_TRAIN:-.venv/bin/depth-train}
OUT=${REF_OUT:-out/ref}
SCALE=${1:-1}
shift || true
ONLY=("$@")
steps() { python3 -c "print(max(10, int($1 * $SCALE)))"; }

TRAIN_SEEDS=$(seq 10 25)
VAL_SEED=200
TEST_SEEDS="300 301 302"
mkdir -p "$OUT"
record() {  # seed frames
  [ -d "$OUT/ep$1" ] || $DT sim --out "$OUT/ep$1" --frames "$2" --seed "$1" --quiet > "$OUT/ep$1.sim.log"
}
for s in $TRAIN_SEEDS; do record "$s" 60; done
for s in $VAL_SEED $TEST_SEEDS; do record "$s" 100; done

TRAIN=()
for s in $TRAIN_SEEDS; do TRAIN+=(--dataset "$OUT/ep$s"); done
TRAIN+=(--val-bag "$OUT/ep$VAL_SEED")
TEST=()
for s in $TEST_SEEDS; do TEST+=(--npz "$OUT/ep$s.groundtruth.npz"); done
COMMON=(--height 128 --width 160 --encoder mobile --min-depth 0.1 --max-depth 10 --batch-size 8
        --val-every 100 --val-samples 50 --image-every 0 --log-every 100 --workers 1 --cpu --seed 0
        --cache-dir "$OUT/cache")

wanted() { [ ${#ONLY[@]} -eq 0 ] && return 0; local r; for r in "${ONLY[@]}"; do [ "$r" = "$1" ] && return 0; done; return 1; }

evaluate() {  # name model(model|model_best) camera alignment(""=model default) suffix
  $DT eval --model "$OUT/$1/$2.pt" "${TEST[@]}" --sim-camera "$3" ${4:+--alignment $4} --device cpu \
      --json "$OUT/$1/eval_$2$5.json" > "$OUT/$1/eval_$2$5.txt"
  sed -n '/AbsRel/,$p' "$OUT/$1/eval_$2$5.txt" | grep -v "^wrote"
}

run() {  # name, sim camera, metric (1 = also evaluate with median scaling), mode and its options...
  local name=$1 camera=$2 metric=$3 mode=$4; shift 4
  wanted "$name" || return 0
  if [ ! -f "$OUT/$name/model.pt" ]; then
    echo "== training $name: $mode $*"
    # the run's own options come last, so they override COMMON's
    $DT "$mode" "${TRAIN[@]}" "${COMMON[@]}" "$@" --out "$OUT/$name" > "$OUT/$name.train.log" 2>&1 \
      || { tail -n 20 "$OUT/$name.train.log"; exit 1; }
    grep -E "validation (before|at step)" "$OUT/$name.train.log" | sed -e 's/^.*INFO depth_training.train: /   /' \
      | cut -c1-100
  fi
  for model in model model_best; do
    echo "== test $name/$model.pt ($camera camera, $(echo $TEST_SEEDS | wc -w) episodes)"
    evaluate "$name" "$model" "$camera" "" ""
    if [ "$metric" = 1 ]; then
      echo "   after median scaling:"
      evaluate "$name" "$model" "$camera" median _median
    fi
  done
}

run supervised_silog color       1 supervised --loss silog --steps "$(steps 800)"
run supervised_ssi   color       0 supervised --loss ssi --steps "$(steps 800)"
run mono_tf          color       1 mono --pose-source tf --steps "$(steps 600)"
# the camera turns ~1.5 deg but moves only ~5 mm per frame: frames t-3, t+3 give the pose network
# three times the parallax
run mono_posenet     color       0 mono --pose-source net --frame-stride 3 --steps "$(steps 600)"
# the rig sees 0.46-3.6 m: an untrained network predicts ~2 x min-depth, and from 0.2 m (disparities
# 2-8x too large) the photometric loss gives no gradient towards the right depth; from 0.6 m it does
run stereo           stereo_left 1 stereo --min-depth 0.3 --steps "$(steps 600)"

echo "== all test results (docs/training.md#reference-results)"
python3 scripts/reference_table.py "$OUT"
