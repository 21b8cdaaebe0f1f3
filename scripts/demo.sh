#!/usr/bin/env bash
# The main job on the built-in sample assets: set up, check the machine, then
# put the astronaut's face on the six faces of insightface's t1.jpg.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
. "$ROOT/scripts/cache.sh"
CAMSHOW="$ROOT/target/debug/camshow"
mkdir -p "$ROOT/out"
"$CAMSHOW" doctor
echo
"$CAMSHOW" detect -i "$CACHE/samples/t1.jpg" --detector centerface -o "$ROOT/out/t1-faces.png"
echo
"$CAMSHOW" swap -s "$CACHE/samples/astronaut.png" -t "$CACHE/samples/t1.jpg" -o "$ROOT/out/astronaut-t1.png" --many-faces
echo
echo "Result: $ROOT/out/astronaut-t1.png (detections drawn in $ROOT/out/t1-faces.png)"
