#!/bin/sh
# Fetches and exports Morsel's default model: the nsfwjs 4.4.0 MobileNetV2 classifier
# (npm package nsfwjs, MIT licensed, (c) Infinite Red, Inc.; a Keras 2.2.4 model in TF.js layers
# format with uint8-quantized weights; classes Drawing, Hentai, Neutral, Porn, Sexy; 224x224
# input, pixels / 255).
#
#   sh weights/get_default_model.sh          (from the repository root)
#
# Writes weights/nsfwjs_mobilenet_v2.morsel (gitignored); downloads go to .deps/ (gitignored).
# Idempotent: what is already there is reused. Python: $MORSEL_PYTHON or .venv/bin/python.
set -eu

VERSION=4.4.0
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEPS="$ROOT/.deps"
PKG="$DEPS/nsfwjs-$VERSION"
TFJS="$DEPS/nsfwjs-$VERSION-mobilenet_v2-tfjs"
OUT="$ROOT/weights/nsfwjs_mobilenet_v2.morsel"
PY=${MORSEL_PYTHON:-"$ROOT/.venv/bin/python"}

die() { echo "get_default_model: $*" >&2; exit 1; }

command -v node >/dev/null 2>&1 || die "node is required (Node.js >= 16)"
[ -x "$PY" ] || command -v "$PY" >/dev/null 2>&1 || die "python not found: $PY (set MORSEL_PYTHON)"

mkdir -p "$DEPS"
TGZ="$DEPS/nsfwjs-$VERSION.tgz"
if [ ! -f "$TGZ" ]; then
    command -v npm >/dev/null 2>&1 || die "npm is required to download nsfwjs@$VERSION"
    echo "downloading nsfwjs@$VERSION with npm pack ..."
    (cd "$DEPS" && npm pack --silent "nsfwjs@$VERSION" >/dev/null) ||
        die "npm pack nsfwjs@$VERSION failed"
    [ -f "$TGZ" ] || die "npm pack did not produce $TGZ"
fi
if [ ! -f "$PKG/package/dist/models/mobilenet_v2/model.min.js" ]; then
    rm -rf "$PKG.tmp"
    mkdir -p "$PKG.tmp"
    tar -xzf "$TGZ" -C "$PKG.tmp" || die "cannot extract $TGZ"
    rm -rf "$PKG"
    mv "$PKG.tmp" "$PKG"
fi
if [ ! -f "$TFJS/model.json" ]; then
    rm -rf "$TFJS.tmp"
    node "$ROOT/weights/nsfwjs_to_tfjs.js" "$PKG/package/dist/models/mobilenet_v2" "$TFJS.tmp"
    rm -rf "$TFJS"
    mv "$TFJS.tmp" "$TFJS"
fi

LABELS="$TFJS/labels.txt"
printf 'Drawing\nHentai\nNeutral\nPorn\nSexy\n' > "$LABELS"

if [ -f "$OUT" ] && [ "$OUT" -nt "$TFJS/model.json" ] && [ "$OUT" -nt "$ROOT/weights/morsel_export.py" ] &&
   [ -z "$(find "$ROOT/weights/morsel_exporter" -name '*.py' -newer "$OUT" 2>/dev/null)" ]; then
    echo "$OUT is up to date"
    exit 0
fi
"$PY" "$ROOT/weights/morsel_export.py" "$TFJS" -o "$OUT" \
    --labels "$LABELS" --name "nsfwjs-$VERSION-mobilenet_v2" \
    --preprocess unit --resize bilinear \
    --license "MIT; nsfwjs $VERSION (c) Infinite Red, Inc."
