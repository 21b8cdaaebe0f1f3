# Sourced by the scripts: the platform's cache folder for Camshow Deepfaker
# (CAMSHOW_CACHE overrides it, as in the engine), the Python to use, and the
# pins more than one script needs.
if [ "$(uname -s)" = "Darwin" ]; then
  CACHE="${CAMSHOW_CACHE:-$HOME/Library/Caches/camshow-deepfaker}"
else
  CACHE="${CAMSHOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/camshow-deepfaker}"
fi
PYTHON="${CAMSHOW_PYTHON:-python3}"
# The ONNX Runtime release the setup installs (and the Python tests install as a package).
ORT_VERSION="1.32.0"
