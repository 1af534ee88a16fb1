"""pytest plugin loaded into oss2's own tests by oss2_suite: loopback only, and no Alibaba Cloud KMS.

Every connection or name lookup that is not loopback fails at once, so no test reaches the internet.
Tests that pick a KMS-encrypting bucket get the SDK's RSA provider instead: both are client-side
encryption, so the emulator sees the same kind of traffic, without a KMS account.
"""

from __future__ import annotations

import socket
from typing import Any

import oss2
from Crypto.PublicKey import RSA

_LOOPBACK = ("127.0.0.1", "::1", "localhost")
_connect = socket.socket.connect
_getaddrinfo = socket.getaddrinfo


def _refuse(host: object) -> None:
    if host not in _LOOPBACK:
        raise OSError(f"oss2_suite: {host} is not loopback; the suite talks to the emulator only")


def _loopback_connect(self: socket.socket, address: Any) -> None:
    if isinstance(address, tuple):
        _refuse(address[0])
    _connect(self, address)


def _loopback_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    _refuse(host.decode() if isinstance(host, bytes) else host)
    return _getaddrinfo(host, *args, **kwargs)


def _rsa_instead_of_kms(*args: Any, **kwargs: Any) -> oss2.RsaProvider:
    key = RSA.generate(2048)
    return oss2.RsaProvider({"private_key": key.export_key(), "public_key": key.publickey().export_key()})


def pytest_configure(config: Any) -> None:
    socket.socket.connect = _loopback_connect  # type: ignore[method-assign]
    socket.getaddrinfo = _loopback_getaddrinfo
    oss2.AliKMSProvider = _rsa_instead_of_kms
