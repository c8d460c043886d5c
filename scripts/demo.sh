#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The README demo on an already configured build directory ($1).
set -euo pipefail
build=${1:?usage: demo.sh BUILD_DIR}
echo "== example VMM flow on the embedded simulated IOMMU"
"$build/examples/vmm_flow"
