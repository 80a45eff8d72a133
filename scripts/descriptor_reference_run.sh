#!/usr/bin/env bash
# Reference run of the dense descriptors (docs/training.md, "Dense descriptors"), CPU, ~40 min on 2 shared cores.
#
#   data   `depth-train sim`, 50 frames at 5 Hz, 128x96, poses from /tf.
#          Known objects (the protocol of Dense Object Nets: learn the objects, then meet them in new
#          scenes): object set 7 (8 objects, `--object-set 7`). Training: 16 recordings (seeds
#          401..416), each with 2 or 3 of the objects in an arrangement of its own; validation: seed
#          451; test: seeds 452..455, new recordings (new arrangements, camera paths and tables)
#          that training never sees.
#          Unseen objects: seeds 201..208, each with objects of its own, none of them in the set.
#   train  `depth-train descriptors`, mobile encoder, D=16, 2000 steps of 4 pairs, pixel-contrastive
#          loss plus the pixelwise distribution term (--weight-distribution 1).
#   test   `depth-train eval-descriptors`: trained vs untrained network vs SIFT vs ORB, all at the
#          same pixels, best match over the whole image B; on all pairs the pair rules accept
#          (>= 8 deg or 4 cm apart) and on wide-baseline pairs (>= 25 deg); known objects (cross-object
#          measure off: the test recordings share objects) and unseen objects.
#   also   a keypoint reference file from a held-out frame, and the ONNX export (+ sidecar).
#
# Results in $OUT (default out/descriptor_reference): model.pt, eval_{known,unseen}_{all,wide}/
# (eval_descriptors.json/.png) and .txt tables, keypoints.npz/.png, descriptors.onnx/.json, train.log.
# DESC_STEPS=N changes the training steps; DESC_SCENES=N the training recordings (401..400+N);
# DESC_TRAIN_ARGS='...' adds options to `depth-train descriptors`; DESC_WIDTH/DESC_HEIGHT change the image
# size (default 128x96; multiples of 32); DEPTH_TRAIN=EXE picks the tool. Re-running skips what exists.
set -euo pipefail
cd "$(dirname "$0")/.."
export MUJOCO_GL=${MUJOCO_GL:-osmesa} PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-osmesa}
DT=${DEPTH_TRAIN:-.venv/bin/depth-train}
OUT=${DESC_OUT:-out/descriptor_reference}
STEPS=${DESC_STEPS:-2000}
SCENES=${DESC_SCENES:-16}
W=${DESC_WIDTH:-128}
H=${DESC_HEIGHT:-96}
SET=7
SIM="$OUT/sim"
mkdir -p "$SIM"
run() { echo "+ $*" >&2; nice -n 10 "$@"; }

sim() {  # seed objects [extra]
  [ -f "$SIM/ep$1/metadata.yaml" ] || run "$DT" sim --out "$SIM/ep$1" --frames 50 --rate 5 --width "$W" --height "$H" \
    --seed "$1" --objects "$2" --quiet "${@:3}" >/dev/null
}
TRAIN=()
for ((s = 401; s <= 400 + SCENES; s++)); do sim "$s" $((s % 2 + 2)) --object-set $SET; TRAIN+=(--dataset "$SIM/ep$s"); done
KNOWN=()
for s in 451 452 453 454 455; do sim "$s" $((s % 2 + 2)) --object-set $SET; done
for s in 452 453 454 455; do KNOWN+=(--bag "$SIM/ep$s"); done
UNSEEN=()
for s in 201 202 203 204 205 206 207 208; do sim "$s" $((s % 3 + 1)); UNSEEN+=(--bag "$SIM/ep$s"); done
COMMON=(--height "$H" --width "$W" --cache-dir "$OUT/cache")
if [ ! -f "$OUT/model.pt" ]; then
  run "$DT" descriptors "${TRAIN[@]}" --val-bag "$SIM/ep451" --out "$OUT" "${COMMON[@]}" \
    --encoder mobile --decoder-channels 16 32 64 96 128 --descriptor-dim 16 --steps "$STEPS" --batch-size 4 \
    --epoch-samples 400 --lr 1e-3 --lr-drop-at 0.8 --workers 1 --threads 1 --val-every 250 --val-pairs 4 \
    --ckpt-every 250 --log-every 50 --image-every 250 --seed 0 --weight-distribution 1 ${DESC_TRAIN_ARGS:-} \
    2>&1 | tee "$OUT/train.log"
fi
EVAL=(--model "$OUT/model.pt" --cache-dir "$OUT/cache" --threads 1 --points 100 --pairs-per-bag 12)
WIDE=(--min-rotation 25 --min-translation 100)
evaluate() {  # name [args]
  [ -f "$OUT/$1/eval_descriptors.json" ] || run "$DT" eval-descriptors "${EVAL[@]}" --out "$OUT/$1" "${@:2}" \
    | tee "$OUT/$1.txt"
}
evaluate eval_known_all "${KNOWN[@]}" --no-cross
evaluate eval_known_wide "${KNOWN[@]}" --no-cross "${WIDE[@]}"
evaluate eval_unseen_all "${UNSEEN[@]}"
evaluate eval_unseen_wide "${UNSEEN[@]}" "${WIDE[@]}"
run "$DT" keypoints --model "$OUT/model.pt" --bag "$SIM/ep452" --frame 10 --auto 6 --out "$OUT/keypoints.npz" \
  --cache-dir "$OUT/cache"
run "$DT" export --model "$OUT/model.pt" --onnx "$OUT/descriptors.onnx" || echo "export failed" >&2
for t in eval_known_all eval_known_wide eval_unseen_all eval_unseen_wide; do echo "== $t"; cat "$OUT/$t.txt"; done
