#!/usr/bin/env bash
# Builds ddlguard out of tree: build/ (normal) and, with --asan, build-asan/ (AddressSanitizer,
# used by the integration tests). Installs missing Debian packages first.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
asan=no
for a in "$@"; do case "$a" in --asan) asan=yes ;; *) echo "build.sh: unknown option $a" >&2; exit 2 ;; esac; done
bash scripts/install-deps.sh
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
  autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
fi
jobs=$(nproc 2>/dev/null || echo 2)
mkdir -p build
if [ ! -f build/Makefile ] || [ configure -nt build/Makefile ]; then
  (cd build && "$top/configure" --enable-werror CFLAGS="-O2 -g" >/dev/null)
fi
make -s -C build -j"$jobs"
if [ $asan = yes ]; then
  mkdir -p build-asan
  if [ ! -f build-asan/Makefile ] || [ configure -nt build-asan/Makefile ]; then
    (cd build-asan && "$top/configure" --enable-werror \
        CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" \
        LDFLAGS="-fsanitize=address,undefined" >/dev/null)
  fi
  make -s -C build-asan -j"$jobs" ddlguard
fi
