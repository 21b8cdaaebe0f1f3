#!/usr/bin/env bash
# The same on Slurm: an array job, one segment per task, then the join.
#   sbatch --array=0-3 slurm-array.sh me.jpg video.mp4     (then, when done:)
#   camshow join -t video.mp4 -o video-swapped.mp4 parts/part-*.mp4
#SBATCH --job-name=camshow-segments
#SBATCH --cpus-per-task=2
set -euo pipefail
mkdir -p parts
camshow swap -s "$1" -t "$2" -o "parts/part-${SLURM_ARRAY_TASK_ID}.mp4" \
  --segment "${SLURM_ARRAY_TASK_ID}/${SLURM_ARRAY_TASK_COUNT}"
