#!/usr/bin/env bash
# AILBoost vs DAC at 5x the `small` table's env steps (60k) on one DeepMind Control task.
#
#   TASK=cartpole-swingup bash results/imitation/longer/run.sh [SEEDS...]   # default seeds 0 1 2; skips finished runs
#   TASK=walker-walk bash results/imitation/longer/run.sh
#
# Same learner configuration as `agentlab reproduce imitation --budget small` (64x64 SAC, action
# repeat 4, discriminator round every 500 agent steps with 100 updates, 1 demonstration from the
# cached expert); only the length changes. AILBoost's alpha follows the table's rule (the first,
# seed-phase learner's mixture weight (1 - alpha)^(T - 1) falls to ~3% by the end): T = 30 rounds ->
# alpha = 1 - 0.03^(1/29) ~= 0.11. Run directories go to runs/imitation_longer/ (ignored); their
# config.yaml and metrics.csv are copied here; `python results/imitation/longer/summarise.py` prints
# the table.
set -eu
cd "$(dirname "$0")/../../.."
TASK=${TASK:-cartpole-swingup}
DEMOS=${AGENTLAB_DATA:-$HOME/.cache/agentlab/datasets}/demos/dmc_${TASK}-expert.hdf5
SETS=(--set hidden=[64,64] --set action_repeat=4 --set seed_steps=500 --set update_every=1 --set batch_size=256
      --set round_steps=500 --set disc_updates=100 --set disc_hidden=[64,64] --set actor_lr=0.001
      --set critic_lr=0.001 --set alpha_lr=0.001)
seeds=("$@"); [ ${#seeds[@]} -eq 0 ] && seeds=(0 1 2)
for seed in "${seeds[@]}"; do
  for algo in ailboost dac; do
    name=$TASK/${algo}_s${seed}
    [ -f "results/imitation/longer/$name/metrics.csv" ] && continue
    extra=(); [ "$algo" = ailboost ] && extra=(--set alpha=0.11)
    OMP_NUM_THREADS=1 .venv/bin/agentlab train "$algo" --env "dmc/$TASK" --demos "$DEMOS" --num-demos 1 \
      --steps 60000 --seed "$seed" --eval-every 12000 --eval-episodes 5 --log-every 4000 "${SETS[@]}" "${extra[@]}" \
      --out "runs/imitation_longer/$name" --force
    mkdir -p "results/imitation/longer/$name"
    cp "runs/imitation_longer/$name/"{config.yaml,metrics.csv} "results/imitation/longer/$name/"
  done
done
