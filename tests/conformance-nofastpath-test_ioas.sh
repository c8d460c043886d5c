#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# tests/test_ioas through a real ioasidd once more, without the fast path
# (no shared view, no request ring: every call over the socket), so both
# ways to the daemon stay conformant.
IOASID_NO_FASTPATH=1 exec "$(dirname "$0")/conformance.sh" \
	"${top_builddir:-.}/tests/test_ioas" "$@"
