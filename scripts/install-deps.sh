#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu machine lacks to build, run and test vidsight:
# ffmpeg/ffprobe, Tesseract and Node.js/npm, and for the tests nginx and Chromium (through apt when missing
# and we are root). Idempotent and quiet when
# everything is already there.
set -euo pipefail

need_apt=()
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || need_apt+=(ffmpeg)
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
# on-screen text (OCR) of the local analyzer; without it analyses skip OCR
command -v tesseract >/dev/null 2>&1 || need_apt+=(tesseract-ocr tesseract-ocr-eng)
# the font the OCR test draws its text with
[ "${1:-}" = "--test" ] && [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf ] && need_apt+=(fonts-dejavu-core)
# the web app's build (Node.js and npm; the packages come from the npm registry)
command -v npm >/dev/null 2>&1 || need_apt+=(nodejs npm)
# the API gateway of the cluster test
[ "${1:-}" = "--test" ] && ! command -v nginx >/dev/null 2>&1 && need_apt+=(nginx-light)
# a processor without AVX2, emulated, for the analyzer's plain x86-64 pixel loops
[ "${1:-}" = "--test" ] && [ "$(uname -m)" = x86_64 ] && ! command -v qemu-x86_64 >/dev/null 2>&1 && need_apt+=(qemu-user)
# the browser the web app's end-to-end tests drive (playwright-core, no downloaded browsers)
[ "${1:-}" = "--test" ] && ! command -v chromium >/dev/null 2>&1 && need_apt+=(chromium fonts-dejavu-core)

if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing: ${need_apt[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "vidsight needs: ${need_apt[*]}. Install them (e.g. sudo apt-get install ${need_apt[*]}) and retry." >&2
    exit 1
  fi
fi

# the S3-compatible server the storage tests run against; PyJWT, the independent JWT library
# the auth tests check tokens with; tuspy, the independent tus client of the upload tests
if [ "${1:-}" = "--test" ] && ! python3 -c "import moto.server, jwt, cryptography, tusclient" >/dev/null 2>&1; then
  echo "installing: moto[server] (S3 test server), PyJWT and tuspy (independent token and tus clients)" >&2
  python3 -m pip install -q 'moto[server]' 'pyjwt[crypto]' tuspy 2>&1 | grep -v "Running pip as the 'root' user" >&2 || true
  python3 -c "import moto.server, jwt, cryptography, tusclient" >/dev/null 2>&1 || { echo "could not install moto[server], pyjwt and tuspy" >&2; exit 1; }
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "vidsight needs a Rust toolchain (cargo): see https://rustup.rs" >&2
  exit 1
fi
