#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# tests/test_ioasidctl.sh once more, through a real ioasidd (conformance.sh).
exec "$(dirname "$0")/conformance.sh" "$(dirname "$0")/test_ioasidctl.sh" "$@"
