"""Put + get throughput of the OSS emulator on loopback, measured with oss2 (V1 and V4).

Run: ``.venv/bin/python -m tests.bench.oss_throughput [--rounds N]``. Prints MB/s per object size.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import oss2

from outpaint.local.oss import OssEmulator

AK, SK, REGION, BUCKET = "bench-ak", "bench-sk", "cn-hangzhou", "bench"
SIZES_MB = (1, 10)


def measure(bucket: oss2.Bucket, size_mb: int, rounds: int) -> tuple[float, float]:
    """MB/s for put_object and for get_object(...).read() of ``size_mb`` MiB objects."""
    body = os.urandom(size_mb * 1024 * 1024)
    started = time.perf_counter()
    for i in range(rounds):
        bucket.put_object(f"bench/{size_mb}/{i}", body)
    put_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(rounds):
        assert len(bucket.get_object(f"bench/{size_mb}/{i}").read()) == len(body)
    get_seconds = time.perf_counter() - started
    return size_mb * rounds / put_seconds, size_mb * rounds / get_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20, help="objects of each size per measurement")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as data_dir,
        OssEmulator(
            data_dir=data_dir, buckets=[BUCKET], access_key_id=AK, access_key_secret=SK, region=REGION
        ) as emu,
    ):
        clients = {
            "oss2 V1": oss2.Bucket(oss2.Auth(AK, SK), emu.endpoint, BUCKET),
            "oss2 V4": oss2.Bucket(oss2.AuthV4(AK, SK), emu.endpoint, BUCKET, region=REGION),
        }
        print(f"{'client':<8} {'size':>6} {'put MB/s':>9} {'get MB/s':>9}   ({args.rounds} objects each)")
        for name, bucket in clients.items():
            for size_mb in SIZES_MB:
                put_rate, get_rate = measure(bucket, size_mb, args.rounds)
                print(f"{name:<8} {size_mb:>4}MB {put_rate:>9.1f} {get_rate:>9.1f}")


if __name__ == "__main__":
    main()
