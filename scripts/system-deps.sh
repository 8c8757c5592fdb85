#!/usr/bin/env bash
# Debian packages the C, Verilog and firmware back ends (and their tests) use; graphviz reads the
# DOT target back. Needs root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    gcc clang make iverilog verilator gcc-arm-none-eabi libnewlib-arm-none-eabi \
    qemu-system-arm graphviz dataset-fashion-mnist >/dev/null
