#!/usr/bin/env bash
# The system packages some features need, installed by `make test` and `make demo` where it can:
# the lz4 headers (FST traces of --waves), headless Chromium (the sweep report's HTML page is
# loaded in it), Icarus Verilog (the second simulator) and OpenSTA (static timing); the OSU 0.18 um
# Liberty ships with peforge. Installs with apt-get when run as root on Debian; otherwise says in
# one line what is missing and which tests will skip.
set -u
missing=()
[ -e /usr/include/lz4.h ] || missing+=(liblz4-dev)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/iverilog ] || missing+=(iverilog)
command -v sta > /dev/null || missing+=(opensta)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") > /dev/null 2>&1; then
        exit 0
    fi
fi
echo "note: not installed: ${missing[*]} (needs root and apt-get: sudo apt-get install ${missing[*]}); the tests that need them are skipped"
exit 0
