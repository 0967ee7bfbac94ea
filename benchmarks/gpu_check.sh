#!/usr/bin/env bash
# The GPU checks of BENCHMARKS.md ("GPU"), run in one go on a lent GPU machine (device tool).
#
#   bash benchmarks/gpu_check.sh              # on the GPU machine, from the repository root
#   DEVICE=cpu QUICK=1 bash benchmarks/gpu_check.sh   # the same plumbing on a CPU, tiny sizes
#
# Needs: python3 with torch (CUDA) and our dependencies (or wheels in .whl/), the dataset
# hopper-medium and the Hopper-v5 PPO expert under $AGENTLAB_DATA (default .devdata/).
# Phases (each logs to $OUT/gpu_check.log, a failing phase does not stop the next):
#   1. CUDA tests (QBM on CUDA == CPU) and a CUDA smoke run of each flow agent
#   2. benchmarks/bench_sso.py and benchmarks/bench_offline.py with --device cuda
#   3. DAgger on Hopper-v5 (table `sso`, small budget): adam vs SSO m=10, m=100, 3 seeds, on cuda:
#      return vs wall-clock
#   4. flow_bc, fql, fidec, deflow at reference sizes (4x512) on hopper-medium in parallel until the
#      deadline (the `full` budget's 500k steps do not fit in a device session): return vs steps
# Everything lands in $OUT (gpu_check.log, bench_*.json, gpu_runs.tar.gz).
set -u
START=$(date +%s)
BUDGET_S=${BUDGET_S:-450}          # whole script, seconds
OUT=${OUT:-/tmp/gpu_check_out}
DEVICE=${DEVICE:-cuda}
QUICK=${QUICK:-0}
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
WORK=$(mktemp -d /tmp/gpu_check.XXXX)
export AGENTLAB_DATA=${AGENTLAB_DATA:-$PWD/.devdata} AGENTLAB_PROGRESS=0 PYTHONUNBUFFERED=1 MUJOCO_GL=disable OMP_NUM_THREADS=2
if [ -d .whl ] && ! python3 -c "import gymnasium, mujoco" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "wheel install failed"; exit 1; }
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
AL="python3 -m agentlab.cli"
left() { echo $(( BUDGET_S - ($(date +%s) - START) )); }
say() { echo "[$(( $(date +%s) - START ))s] $*" | tee -a "$LOG"; }

say "phase 0: environment"
{ nvidia-smi -L 2>&1; python3 -c "import torch, gymnasium, mujoco, agentlab; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '-', 'mujoco', mujoco.__version__, 'agentlab', agentlab.__version__)"; } >>"$LOG" 2>&1 \
    || { say "imports failed"; tail -20 "$LOG"; exit 1; }
tail -2 "$LOG"

if [ "$QUICK" = 1 ]; then SIZES=32; OFFSIZE=2x256; UPD=2; DSTEPS=400; DB=100; HID=[32,32]; else SIZES=256,2048; OFFSIZE=4x512,2x256; UPD=30; DSTEPS=10000; DB=500; HID=[256,256]; fi

say "phase 1: CUDA tests and smoke runs"
python3 -m pytest -q -p no:cacheprovider tests/test_monitor_qbm.py -k cuda >>"$LOG" 2>&1; say "qbm cuda test rc=$?"
for a in flow_bc fql fidec; do
    $AL train $a --dataset hopper-medium --env Hopper-v5 --preset smoke --steps 20 --eval-episodes 1 --device "$DEVICE" \
        --out "$WORK/smoke_$a" >>"$LOG" 2>&1; say "smoke $a rc=$?"
done

say "phase 2: benchmarks"
python3 benchmarks/bench_sso.py --device "$DEVICE" --sizes $SIZES --json "$OUT/bench_sso_$DEVICE.json" >>"$LOG" 2>&1; say "bench_sso rc=$?"
python3 benchmarks/bench_offline.py --device "$DEVICE" --sizes $OFFSIZE --rounds 3 --updates $UPD \
    --json "$OUT/bench_offline_$DEVICE.json" >>"$LOG" 2>&1; say "bench_offline rc=$?"

say "phase 3: DAgger Hopper-v5, adam vs sso on $DEVICE"
COMMON=(--env Hopper-v5 --steps $DSTEPS --eval-every $((DSTEPS / 5)) --eval-episodes 5 --device "$DEVICE"
        --set beta=0.0 --set batch_states=$DB --set hidden=$HID)
for seed in 0 1 2; do
    [ "$(left)" -lt 200 ] && { say "skipping seed $seed: time"; break; }
    $AL train dagger "${COMMON[@]}" --seed $seed --optimizer adam --set lr=0.001 --out "$WORK/dagger_adam_s$seed" >>"$LOG" 2>&1 &
    $AL train dagger "${COMMON[@]}" --seed $seed --optimizer sso --set inner_steps=10 --set inner=sgd-armijo --set eta=1.0 \
        --out "$WORK/dagger_sso-m10_s$seed" >>"$LOG" 2>&1 &
    $AL train dagger "${COMMON[@]}" --seed $seed --optimizer sso --set inner_steps=100 --set inner=sgd-armijo --set eta=1.0 \
        --out "$WORK/dagger_sso-m100_s$seed" >>"$LOG" 2>&1 &
    wait; say "dagger seed $seed done"
done

T_OFF=$(( $(left) - 25 ))
say "phase 4: offline full-size runs on hopper-medium for ${T_OFF}s"
if [ "$T_OFF" -gt 30 ]; then
    PRESET=(); [ "$QUICK" = 1 ] && PRESET=(--preset smoke)
    declare -A RULE=([fidec]="--set target_divergence=0.001 --set normalize_q_loss=true"
                     [deflow]="--set target_divergence=0.001 --set normalize_q_loss=true"
                     [fql]="--set alpha=10 --set normalize_q_loss=true" [flow_bc]="")
    for a in fidec deflow fql flow_bc; do
        # shellcheck disable=SC2086
        timeout "$T_OFF" $AL train $a --dataset hopper-medium --env Hopper-v5 --steps 500000 "${PRESET[@]}" ${RULE[$a]} \
            --eval-every 5000 --eval-episodes 10 --log-every 1000 --device "$DEVICE" --out "$WORK/offline_$a" >>"$LOG" 2>&1 &
    done
    wait
    say "offline runs stopped (timeout rc 124 expected)"
fi

(cd "$WORK" && find . -name metrics.csv -o -name config.yaml -o -name meta.json | tar czf "$OUT/gpu_runs.tar.gz" -T -)
say "done; $(ls "$OUT" | tr '\n' ' ')"
