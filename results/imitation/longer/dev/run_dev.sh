#!/usr/bin/env bash
# Development runs (seed 99, never an evaluation seed): why does AILBoost stay at the random level on
# walker-walk at 60k env steps? Same configuration as ../run.sh, one change per run:
#   gp10   the table's setting (grad_penalty 10, reverse-KL loss)  -- the baseline on this seed
#   gp1    grad_penalty 1
#   js     the JS (GAN) discriminator loss, grad_penalty 10
#
#   bash results/imitation/longer/dev/run_dev.sh gp1 js gp10
set -eu
cd "$(dirname "$0")/../../../.."
DEMOS=${AGENTLAB_DATA:-$HOME/.cache/agentlab/datasets}/demos/dmc_walker-walk-expert.hdf5
SETS=(--set hidden=[64,64] --set action_repeat=4 --set seed_steps=500 --set update_every=1 --set batch_size=256
      --set round_steps=500 --set disc_updates=100 --set disc_hidden=[64,64] --set actor_lr=0.001
      --set critic_lr=0.001 --set alpha_lr=0.001 --set alpha=0.11)
for variant in "$@"; do
  case $variant in
    gp10) extra=() ;;
    gp1) extra=(--set grad_penalty=1.0) ;;
    js) extra=(--set disc_loss=js) ;;
    *) echo "unknown variant $variant"; exit 2 ;;
  esac
  [ -f "results/imitation/longer/dev/$variant/metrics.csv" ] && continue
  OMP_NUM_THREADS=1 .venv/bin/agentlab train ailboost --env dmc/walker-walk --demos "$DEMOS" --num-demos 1 \
    --steps 60000 --seed 99 --eval-every 12000 --eval-episodes 5 --log-every 4000 "${SETS[@]}" "${extra[@]}" \
    --out "runs/imitation_longer/dev/$variant" --force
  mkdir -p "results/imitation/longer/dev/$variant"
  cp "runs/imitation_longer/dev/$variant/"{config.yaml,metrics.csv} "results/imitation/longer/dev/$variant/"
done
