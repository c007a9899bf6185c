#!/usr/bin/env bash
# The benchmark set on one GPU, in one shot (about 8 minutes with the install):
#
#   bash benchmarks/gpu_suite.sh            # from a copy of the working tree
#
# 1. a fresh virtual environment with tensorflow[and-cuda] and this package;
# 2. benchmarks/speed.py on every preset, the video preset at its full 256×256×16
#    size: mixed_float16, XLA, MirroredStrategy over the one GPU (one replica);
# 3. if time is left (8-minute budget): the MNIST preset in float32 without XLA,
#    for reference, and the distribution tests (on the CPU) as a smoke test.
#
# Results go to $OUT (default benchmarks/gpu-results): RESULTS-gpu.md (the tables,
# ready to paste into RESULTS.md's Speed section), the logs, and nvidia-smi's view.
# Environment: PYTHON (interpreter, default python3.11 or python3), VENV (default
# /tmp/memae-gpu-venv; reused when present), OUT.
#
# Needs a package index (or a VENV that already holds tensorflow[and-cuda]): the
# GPU machines lent to this project so far hold PyTorch/JAX but no TensorFlow, have
# no network, and take at most 64 MiB of carried files (the TensorFlow wheel alone
# is several hundred MiB), so this script has not run there yet.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
OUT="${OUT:-benchmarks/gpu-results}"
VENV="${VENV:-/tmp/memae-gpu-venv}"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
mkdir -p "$OUT"
log() { echo "[gpu_suite $((SECONDS - start))s] $*" | tee -a "$OUT/suite.log"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/nvidia-smi.csv" \
  || log "nvidia-smi unavailable"

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
log "installing tensorflow[and-cuda] and memae-tf"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "tensorflow[and-cuda]>=2.21,<2.22" -e . "pytest>=8,<10" \
  2>&1 | tail -5 | tee -a "$OUT/suite.log"
"$VENV/bin/python" - <<'EOF' 2>&1 | tee -a "$OUT/suite.log"
import memae_tf, tensorflow as tf
gpus = tf.config.list_physical_devices("GPU")
assert gpus, "TensorFlow sees no GPU: check the driver and the CUDA wheels"
print("TensorFlow", tf.__version__, "GPUs:", [tf.config.experimental.get_device_details(g).get("device_name") for g in gpus])
EOF

log "speed: all presets, mixed_float16 + XLA + MirroredStrategy (1 replica)"
timeout 360 "$VENV/bin/python" benchmarks/speed.py --workload gpu --strategy mirrored \
  --precision mixed_float16 --jit --steps-per-execution 8 --repeats 3 \
  --write --results "$OUT/RESULTS-gpu.md" --section "Speed on a GPU" \
  > "$OUT/speed.md" 2> "$OUT/speed.log" || log "speed run FAILED (see speed.log)"

if [ $((SECONDS - start)) -lt 390 ]; then
  log "speed: MNIST preset, float32 without XLA (reference)"
  timeout 60 "$VENV/bin/python" benchmarks/speed.py --workload gpu --presets mnist \
    --strategy mirrored --no-jit --steps-per-execution 8 --repeats 3 \
    --write --results "$OUT/RESULTS-gpu.md" --section "Speed on a GPU, float32 without XLA" \
    > "$OUT/speed-float32.md" 2> "$OUT/speed-float32.log" || log "reference run FAILED"
fi
if [ $((SECONDS - start)) -lt 420 ]; then
  log "distribution tests (on the CPU: their references are single-CPU runs)"
  CUDA_VISIBLE_DEVICES="" timeout 60 "$VENV/bin/python" -m pytest -q tests/test_distribute.py \
    > "$OUT/test_distribute.log" 2>&1 && log "distribution tests passed" \
    || log "distribution tests FAILED or timed out (see test_distribute.log)"
fi
log "done; results in $OUT/RESULTS-gpu.md"
