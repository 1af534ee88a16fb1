"""Running MD5 + CRC-64/XZ (``x-oss-hash-crc64ecma``) over a stream of chunks."""

from __future__ import annotations

import hashlib

import crcmod

# CRC-64/XZ: ECMA-182 polynomial, reflected, init and xor-out all ones (crcmod folds init into xorOut).
crc64 = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, rev=True, xorOut=0xFFFFFFFFFFFFFFFF)


class Digest:
    """Size, MD5 and CRC-64 of everything passed to :meth:`update`."""

    def __init__(self) -> None:
        self.size = 0
        self.crc64 = 0
        self._md5 = hashlib.md5()  # noqa: S324 - MD5 is the protocol's ETag, not a security measure

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self.crc64 = crc64(chunk, self.crc64)
        self._md5.update(chunk)

    @property
    def md5(self) -> bytes:
        return self._md5.digest()
