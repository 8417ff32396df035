#!/usr/bin/env bash
# Installs the Debian packages gradflow builds and tests with (see BUILD-NOTES.md in the shared notes for
# the versions). Idempotent: when every package is already installed it touches nothing and takes
# well under a second, so scripts may call it unconditionally.
# python3-torch is deliberately absent: only the benchmarks and the hand-run fixture generator
# (tests/fixtures/make_fixtures.py) use PyTorch.
set -euo pipefail

packages=(
  # toolchain
  cmake ninja-build g++ clang git python3
  # clang builds (tools/fuzz.sh): libFuzzer and the sanitizers, and clang's OpenMP runtime
  libclang-rt-14-dev libomp-dev
  # libraries (find_package names in third_party/dependencies.cmake)
  libtbb-dev libabsl-dev libflatbuffers-dev flatbuffers-compiler
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  libgloo-dev libhiredis-dev libibverbs-dev libdnnl-dev ocl-icd-opencl-dev libturbojpeg0-dev zlib1g-dev
  # data and rendezvous for the runtime's tests
  dataset-fashion-mnist redis-server
)

# One dpkg-query for all packages; unknown ones are simply absent from its answer.
declare -A installed=()
while read -r name status; do
  if [[ "${status}" == "installed" ]]; then
    installed["${name}"]=1
  fi
done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${packages[@]}" 2>/dev/null || true)

missing=()
for package in "${packages[@]}"; do
  [[ -n "${installed[${package}]:-}" ]] || missing+=("${package}")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup: all ${#packages[@]} packages already installed"
  exit 0
fi

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null; then
    echo "setup: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
  sudo_cmd=(sudo)
fi

echo "setup: installing ${missing[*]}"
# Another session may be installing at the same time: wait for dpkg's lock instead of failing.
apt_get=("${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600)
"${apt_get[@]}" update
"${apt_get[@]}" install -y --no-install-recommends "${missing[@]}"
