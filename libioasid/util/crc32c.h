/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * CRC-32C (Castagnoli, the polynomial of iSCSI, ext4 and btrfs), in
 * software, incremental: crc32c(crc32c(0, a), b) == crc32c(0, a || b).
 */
#ifndef IOASID_UTIL_CRC32C_H
#define IOASID_UTIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extend @crc (0 to start) over @len bytes at @buf. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

#endif
