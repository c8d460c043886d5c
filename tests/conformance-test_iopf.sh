#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# tests/test_iopf once more, through a real ioasidd (see conformance.sh).
# One daemon serves every test, so a test must leave shared state (such as
# an unplugged device) as it found it.
exec "$(dirname "$0")/conformance.sh" "${top_builddir:-.}/tests/test_iopf" "$@"
