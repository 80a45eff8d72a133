#!/usr/bin/env bash
# Reference run of the dense descriptors (docs/training.md, "Dense descriptors"), CPU, ~17 min on 2 shared cores.
#
#   data   6 training scenes (seeds 101..106, different objects; seed 106 with a moving distractor,
#          whose pairs the static-scene test rejects) and 2 held-out scenes (seeds 201, 202) that
#          training never sees; `depth-train sim`, 50 frames at 5 Hz, 128x96.
#   train  `depth-train descriptors`, mobile encoder, D=16, poses from /tf, 600 steps of 4 pairs.
#   test   `depth-train eval-descriptors` on the held-out scenes: trained vs untrained network vs
#          SIFT vs ORB, all at the same pixels, best match over the whole image B; once on all
#          pairs the pair rules accept (>= 8 deg or 4 cm apart), once on wide-baseline pairs (>= 25 deg).
#   also   a keypoint reference file from a held-out frame, and the ONNX export (+ sidecar).
#
# Results in $OUT (default out/descriptor_reference): model.pt, eval_all/ and eval_wide/
# (eval_descriptors.json/.png), keypoints.npz/.png, descriptors.onnx/.json, train.log.
# DESC_STEPS=N changes the training steps; DESC_SCENES=N (> 6) adds training scenes 107..100+N;
# DESC_TRAIN_ARGS='...' adds options to `depth-train descriptors`; DEPTH_TRAIN=EXE picks the tool.
set -euo pipefail
cd "$(dirname "$0")/.."
export MUJOCO_GL=${MUJOCO_GL:-osmesa} PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-osmesa}
DT=${DEPTH_TRAIN:-.venv/bin/depth-train}
OUT=${DESC_OUT:-out/descriptor_reference}
STEPS=${DESC_STEPS:-600}
SCENES=${DESC_SCENES:-6}
SIM="$OUT/sim"
mkdir -p "$SIM"
run() { echo "+ $*" >&2; nice -n 10 "$@"; }

sim() {  # seed objects [extra]
  [ -f "$SIM/ep$1/metadata.yaml" ] || run "$DT" sim --out "$SIM/ep$1" --frames 50 --rate 5 --width 128 --height 96 \
    --seed "$1" --objects "$2" --quiet "${@:3}" >/dev/null
}
sim 101 1; sim 102 2; sim 103 3; sim 104 1; sim 105 2; sim 106 2 --distractor
sim 201 2; sim 202 1
TRAIN=()
for s in 101 102 103 104 105 106; do TRAIN+=(--dataset "$SIM/ep$s"); done
for ((s = 107; s <= 100 + SCENES; s++)); do  # DESC_SCENES > 6: more training scenes, 1-3 objects
  sim "$s" $((s % 3 + 1)); TRAIN+=(--dataset "$SIM/ep$s")
done
COMMON=(--height 96 --width 128 --cache-dir "$OUT/cache")
if [ ! -f "$OUT/model.pt" ]; then
  run "$DT" descriptors "${TRAIN[@]}" --val-bag "$SIM/ep201" --out "$OUT" "${COMMON[@]}" \
    --encoder mobile --decoder-channels 16 32 64 96 128 --descriptor-dim 16 --steps "$STEPS" --batch-size 4 \
    --epoch-samples 400 --lr 1e-3 --lr-drop-at 0.8 --workers 1 --threads 1 --val-every 200 --val-pairs 4 \
    --ckpt-every 200 --log-every 50 --image-every 200 --seed 0 ${DESC_TRAIN_ARGS:-} 2>&1 | tee "$OUT/train.log"
fi
EVAL=(--model "$OUT/model.pt" --bag "$SIM/ep201" --bag "$SIM/ep202" --cache-dir "$OUT/cache" --threads 1 --points 100)
run "$DT" eval-descriptors "${EVAL[@]}" --out "$OUT/eval_all" --pairs 12 | tee "$OUT/eval_all.txt"
run "$DT" eval-descriptors "${EVAL[@]}" --out "$OUT/eval_wide" --pairs 12 --min-rotation 25 --min-translation 100 \
  | tee "$OUT/eval_wide.txt"
run "$DT" keypoints --model "$OUT/model.pt" --bag "$SIM/ep201" --frame 10 --auto 6 --out "$OUT/keypoints.npz" \
  --cache-dir "$OUT/cache"
run "$DT" export --model "$OUT/model.pt" --onnx "$OUT/descriptors.onnx" || echo "export failed" >&2
