#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# tests/test_viommu once more, through a real ioasidd (see conformance.sh).
exec "$(dirname "$0")/conformance.sh" "${top_builddir:-.}/tests/test_viommu" "$@"
