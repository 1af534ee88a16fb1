"""Durable bucket and object storage on disk.

Layout under the data directory (one emulator process per directory, enforced by a lock file)::

    emulator.lock
    tmp/                                     bodies being received, temp records (cleared at start)
    buckets/<bucket>/bucket.json             creation time and ACL
    buckets/<bucket>/meta/<h[:2]>/<h>.json   one object's record, h = sha256(key)
    buckets/<bucket>/blobs/<b[:2]>/<b>       immutable object bodies, b = random id
    buckets/<bucket>/uploads/<id>/           a multipart upload: upload.json, part-<n>.json, part bodies

A write streams into ``tmp/``, is fsynced and renamed into place, then its record is written the same
way; the record's rename is the commit point. Bodies are never modified in place, so a reader that has
opened one keeps a consistent view while the key is overwritten or deleted.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

from .checksums import Digest
from .errors import OssError

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_COPY_CHUNK = 1 << 20
MIN_PART_SIZE = 100 * 1024
MAX_PART_NUMBER = 10000
ACLS = ("private", "public-read", "public-read-write")


class DataDirInUse(RuntimeError):
    """Another emulator process holds the data directory's lock (two emulators would corrupt it)."""


@dataclass(frozen=True)
class ObjectAttrs:
    """What a client sets on an object besides its body."""

    content_type: str = "application/octet-stream"
    user_meta: dict[str, str] = field(default_factory=dict)  # "x-oss-meta-<name>" (lower-cased) -> value
    headers: dict[str, str] = field(default_factory=dict)  # stored standard headers, lower-cased names


@dataclass(frozen=True)
class ObjectRecord:
    """One stored object: its checksums, attributes and the body file holding it."""

    key: str
    size: int
    etag: str  # uppercase hex, no quotes; "<HEX>-<parts>" for multipart objects
    crc64: int
    last_modified: int  # whole seconds, OSS's resolution
    attrs: ObjectAttrs
    blob: str
    object_type: str = "Normal"  # or "Appendable", "Multipart", "Symlink"
    storage_class: str = "Standard"
    acl: str = "default"  # object ACL; "default" follows the bucket's
    tags: dict[str, str] = field(default_factory=dict)
    symlink_target: str | None = None  # the key a "Symlink" object points to


@dataclass(frozen=True)
class BucketRecord:
    name: str
    created: int
    acl: str = "private"


@dataclass(frozen=True)
class PartRecord:
    number: int
    size: int
    etag: str  # uppercase hex MD5 of the part
    crc64: int
    last_modified: int
    blob: str


@dataclass
class UploadRecord:
    upload_id: str
    key: str
    attrs: ObjectAttrs
    initiated: int
    parts: dict[int, PartRecord] = field(default_factory=dict)
    acl: str = "default"  # given to the completed object, like its tags
    tags: dict[str, str] = field(default_factory=dict)


class BlobWriter:
    """A body being received: written to a temp file while its size, MD5 and CRC-64 are computed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.digest = Digest()
        self._file: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed by finish() or discard()

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self.digest.update(chunk)

    def finish(self) -> None:
        """Flush the body to stable storage (blocking: call from a worker thread)."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


@dataclass
class _Bucket:
    record: BucketRecord
    root: Path
    objects: dict[str, ObjectRecord] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)  # sorted, for listing
    uploads: dict[str, UploadRecord] = field(default_factory=dict)

    def meta_path(self, key: str) -> Path:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return self.root / "meta" / digest[:2] / f"{digest}.json"

    def blob_path(self, blob: str) -> Path:
        return self.root / "blobs" / blob[:2] / blob

    def upload_dir(self, upload_id: str) -> Path:
        return self.root / "uploads" / upload_id

    def put(self, record: ObjectRecord) -> ObjectRecord | None:
        previous = self.objects.get(record.key)
        if previous is None:
            bisect.insort(self.keys, record.key)
        self.objects[record.key] = record
        return previous

    def pop(self, key: str) -> ObjectRecord | None:
        previous = self.objects.pop(key, None)
        if previous is not None:
            del self.keys[bisect.bisect_left(self.keys, key)]
        return previous


class Storage:
    """All buckets of one data directory; thread-safe, the in-memory index is rebuilt from disk at start."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._lock_file = _acquire_directory_lock(root / "emulator.lock")
        self._tmp = root / "tmp"
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp.mkdir()
        (root / "buckets").mkdir(exist_ok=True)
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        for bucket_dir in sorted((root / "buckets").iterdir()):
            if (bucket_dir / "bucket.json").is_file():
                self._buckets[bucket_dir.name] = _load_bucket(bucket_dir)

    def close(self) -> None:
        """Release the data directory for another process."""
        self._lock_file.close()

    # -- buckets ---------------------------------------------------------------------------------

    def create_bucket(self, name: str, acl: str = "private", *, exist_ok: bool = False) -> BucketRecord:
        """Create a bucket (BucketAlreadyExists unless ``exist_ok``, which also applies ``acl``)."""
        if not _BUCKET_NAME.match(name):
            raise OssError(
                "InvalidBucketName",
                f"Bucket name {name!r} is invalid: 3-63 characters of a-z, 0-9 and '-', "
                "starting and ending with a letter or digit.",
                BucketName=name,
            )
        with self._lock:
            if name in self._buckets:
                if not exist_ok:
                    raise OssError("BucketAlreadyExists", BucketName=name)
                return self._set_acl_locked(name, acl)
            root = self.root / "buckets" / name
            for sub in ("meta", "blobs", "uploads"):
                (root / sub).mkdir(parents=True, exist_ok=True)
            record = BucketRecord(name=name, created=int(time.time()), acl=acl)
            self._write_json(root / "bucket.json", dataclasses.asdict(record))
            self._buckets[name] = _Bucket(record=record, root=root)
            return record

    def set_bucket_acl(self, name: str, acl: str) -> BucketRecord:
        with self._lock:
            return self._set_acl_locked(name, acl)

    def _set_acl_locked(self, name: str, acl: str) -> BucketRecord:
        bucket = self._bucket(name)
        bucket.record = dataclasses.replace(bucket.record, acl=acl)
        self._write_json(bucket.root / "bucket.json", dataclasses.asdict(bucket.record))
        return bucket.record

    def bucket(self, name: str) -> BucketRecord:
        """The bucket's record, or NoSuchBucket."""
        with self._lock:
            return self._bucket(name).record

    def buckets(self) -> list[BucketRecord]:
        with self._lock:
            return [self._buckets[name].record for name in sorted(self._buckets)]

    def delete_bucket(self, name: str) -> None:
        with self._lock:
            bucket = self._bucket(name)
            if bucket.objects or bucket.uploads:
                raise OssError("BucketNotEmpty", BucketName=name)
            del self._buckets[name]
            # Rename first so a crash mid-delete never leaves a half-removed bucket that loads.
            graveyard = self._tmp / f"deleted-{uuid.uuid4().hex}"
            os.replace(bucket.root, graveyard)
        shutil.rmtree(graveyard, ignore_errors=True)

    def _bucket(self, name: str) -> _Bucket:
        bucket = self._buckets.get(name)
        if bucket is None:
            raise OssError("NoSuchBucket", BucketName=name)
        return bucket

    # -- objects ---------------------------------------------------------------------------------

    def new_writer(self) -> BlobWriter:
        """A temp file to stream a body into; pass it to a commit method or discard it."""
        return BlobWriter(self._tmp / uuid.uuid4().hex)

    def put_object(
        self,
        bucket: str,
        key: str,
        writer: BlobWriter,
        attrs: ObjectAttrs,
        *,
        forbid_overwrite: bool,
        replacing: str | None = None,
        **extra: Any,
    ) -> tuple[ObjectRecord, ObjectRecord | None]:
        """Commit a finished writer as ``key``; returns the new record and the one it replaced.

        ``extra`` sets further record fields (object type, ACL, tags, symlink target). ``replacing``
        (a blob id, "" for none) commits only if the current object is still that one, else
        PositionNotEqualToLength: an append that lost a race."""
        digest = writer.digest
        record = ObjectRecord(
            key=key,
            size=digest.size,
            etag=digest.md5.hex().upper(),
            crc64=digest.crc64,
            last_modified=int(time.time()),
            attrs=attrs,
            blob=uuid.uuid4().hex,
            **extra,
        )
        return self._commit(
            bucket, record, writer.path, forbid_overwrite=forbid_overwrite, replacing=replacing
        )

    def update_object(self, bucket: str, key: str, **changes: Any) -> ObjectRecord:
        """Change record fields of ``key`` in place (tags, ACL): the body stays as it is."""
        with self._lock:
            entry = self._bucket(bucket)
            current = entry.objects.get(key)
            if current is None:
                raise OssError("NoSuchKey", Key=key)
            record = dataclasses.replace(current, **changes)
            meta_path = entry.meta_path(key)
            os.replace(self._stage_json(_encode_object(record)), meta_path)
            entry.put(record)
        _fsync_dir(meta_path.parent)
        return record

    def copy_object(
        self,
        source: tuple[str, str],
        bucket: str,
        key: str,
        attrs: ObjectAttrs | None,
        *,
        forbid_overwrite: bool,
        tags: dict[str, str] | None = None,
        acl: str = "default",
    ) -> tuple[ObjectRecord, ObjectRecord | None]:
        """Copy ``source`` (bucket, key) to ``key``, keeping its attributes unless ``attrs`` is given
        and its tags unless ``tags`` is; the copy gets ``acl``, not the source's."""
        staged = self._tmp / uuid.uuid4().hex
        with self._lock:
            src_bucket = self._bucket(source[0])
            src = src_bucket.objects.get(source[1])
            if src is None:
                raise OssError("NoSuchKey", Key=source[1])
            # Bodies are immutable, so a hard link is a complete, instant copy.
            try:
                os.link(src_bucket.blob_path(src.blob), staged)
            except OSError:
                shutil.copyfile(src_bucket.blob_path(src.blob), staged)
        record = dataclasses.replace(
            src,
            key=key,
            last_modified=int(time.time()),
            attrs=attrs if attrs is not None else src.attrs,
            blob=uuid.uuid4().hex,
            object_type="Normal",
            acl=acl,
            tags=src.tags if tags is None else tags,
        )
        return self._commit(bucket, record, staged, forbid_overwrite=forbid_overwrite)

    def head_object(self, bucket: str, key: str) -> ObjectRecord:
        """The object's record, or NoSuchBucket / NoSuchKey."""
        with self._lock:
            record = self._bucket(bucket).objects.get(key)
        if record is None:
            raise OssError("NoSuchKey", Key=key)
        return record

    def open_object(self, bucket: str, key: str) -> tuple[ObjectRecord, BinaryIO]:
        """The record and an open body file that stays consistent with it whatever happens next."""
        for _ in range(10):
            record = self.head_object(bucket, key)
            try:
                return record, open(self._blob_path(bucket, record.blob), "rb")
            except FileNotFoundError:
                continue  # overwritten between the lookup and the open: look again
        raise OssError("NoSuchKey", Key=key)

    def delete_object(self, bucket: str, key: str) -> ObjectRecord | None:
        """Remove ``key``; returns what was removed (None if nothing was there)."""
        with self._lock:
            entry = self._bucket(bucket)
            previous = entry.pop(key)
            if previous is None:
                return None
            meta_path = entry.meta_path(key)
            meta_path.unlink(missing_ok=True)
            blob_path = entry.blob_path(previous.blob)
        _fsync_dir(meta_path.parent)
        blob_path.unlink(missing_ok=True)
        return previous

    @contextlib.contextmanager
    def reading(self, bucket: str) -> Iterator[tuple[list[str], dict[str, ObjectRecord]]]:
        """Hold the bucket still: its sorted keys and records, for a listing."""
        with self._lock:
            entry = self._bucket(bucket)
            yield entry.keys, entry.objects

    def _blob_path(self, bucket: str, blob: str) -> Path:
        with self._lock:
            return self._bucket(bucket).blob_path(blob)

    def _commit(
        self,
        bucket: str,
        record: ObjectRecord,
        staged: Path,
        *,
        forbid_overwrite: bool,
        replacing: str | None = None,
    ) -> tuple[ObjectRecord, ObjectRecord | None]:
        record_tmp = self._stage_json(_encode_object(record))
        try:
            with self._lock:
                entry = self._bucket(bucket)
                # Checked under the lock that also covers the rename: exactly one concurrent create wins.
                if forbid_overwrite and record.key in entry.objects:
                    raise OssError("FileAlreadyExists", Key=record.key)
                current = entry.objects.get(record.key)
                if replacing is not None and replacing != (current.blob if current else ""):
                    raise OssError("PositionNotEqualToLength")
                blob_path = entry.blob_path(record.blob)
                blob_path.parent.mkdir(exist_ok=True)
                os.replace(staged, blob_path)
                meta_path = entry.meta_path(record.key)
                meta_path.parent.mkdir(exist_ok=True)
                os.replace(record_tmp, meta_path)
                previous = entry.put(record)
                old_blob = entry.blob_path(previous.blob) if previous else None
        except BaseException:
            staged.unlink(missing_ok=True)
            record_tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(blob_path.parent)
        _fsync_dir(meta_path.parent)
        if old_blob is not None:
            old_blob.unlink(missing_ok=True)
        return record, previous

    # -- multipart uploads -----------------------------------------------------------------------

    def create_upload(
        self,
        bucket: str,
        key: str,
        attrs: ObjectAttrs,
        acl: str = "default",
        tags: dict[str, str] | None = None,
    ) -> UploadRecord:
        upload = UploadRecord(
            upload_id=_upload_id(),
            key=key,
            attrs=attrs,
            initiated=int(time.time()),
            acl=acl,
            tags=tags or {},
        )
        with self._lock:
            entry = self._bucket(bucket)
            directory = entry.upload_dir(upload.upload_id)
            directory.mkdir(parents=True)
            self._write_json(directory / "upload.json", _encode_upload(upload))
            entry.uploads[upload.upload_id] = upload
        return upload

    def upload(self, bucket: str, key: str, upload_id: str) -> UploadRecord:
        """A snapshot of the upload with its parts, or NoSuchUpload."""
        with self._lock:
            upload = self._upload(bucket, key, upload_id)
            return dataclasses.replace(upload, parts=dict(upload.parts))

    def uploads(self, bucket: str) -> list[UploadRecord]:
        """In-progress uploads ordered by key, then upload id (which orders by initiation)."""
        with self._lock:
            uploads = list(self._bucket(bucket).uploads.values())
        return sorted(uploads, key=lambda u: (u.key, u.upload_id))

    def put_part(self, bucket: str, key: str, upload_id: str, number: int, writer: BlobWriter) -> PartRecord:
        """Commit a finished writer as part ``number`` (replacing an earlier upload of that part)."""
        digest = writer.digest
        part = PartRecord(
            number=number,
            size=digest.size,
            etag=digest.md5.hex().upper(),
            crc64=digest.crc64,
            last_modified=int(time.time()),
            blob=f"{uuid.uuid4().hex}.part",
        )
        record_tmp = self._stage_json(dataclasses.asdict(part))
        try:
            with self._lock:
                upload = self._upload(bucket, key, upload_id)
                directory = self._bucket(bucket).upload_dir(upload_id)
                os.replace(writer.path, directory / part.blob)
                os.replace(record_tmp, directory / f"part-{number:05d}.json")
                previous = upload.parts.get(number)
                upload.parts[number] = part
        except BaseException:
            writer.path.unlink(missing_ok=True)
            record_tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(directory)
        if previous is not None:
            (directory / previous.blob).unlink(missing_ok=True)
        return part

    def complete_upload(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        requested: list[tuple[int, str]] | None,
        *,
        forbid_overwrite: bool,
    ) -> tuple[ObjectRecord, ObjectRecord | None]:
        """Join the requested (number, ETag) parts, or all parts when None, into the object."""
        with contextlib.ExitStack() as stack:
            with self._lock:
                upload = self._upload(bucket, key, upload_id)
                parts = _select_parts(upload, requested)
                directory = self._bucket(bucket).upload_dir(upload_id)
                # Open every part now: a concurrent re-upload or abort cannot pull them away afterwards.
                files = [stack.enter_context(open(directory / part.blob, "rb")) for part in parts]
            writer = self.new_writer()
            try:
                for part_file in files:
                    while chunk := part_file.read(_COPY_CHUNK):
                        writer.write(chunk)
                writer.finish()
            except BaseException:
                writer.discard()
                raise
        joined = hashlib.md5(b"".join(bytes.fromhex(p.etag) for p in parts))  # noqa: S324 - ETag scheme
        record = ObjectRecord(
            key=key,
            size=writer.digest.size,
            etag=f"{joined.hexdigest().upper()}-{len(parts)}",
            crc64=writer.digest.crc64,
            last_modified=int(time.time()),
            attrs=upload.attrs,
            blob=uuid.uuid4().hex,
            object_type="Multipart",
            acl=upload.acl,
            tags=upload.tags,
        )
        result = self._commit(bucket, record, writer.path, forbid_overwrite=forbid_overwrite)
        self._drop_upload(bucket, upload_id)
        return result

    def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        with self._lock:
            self._upload(bucket, key, upload_id)
        self._drop_upload(bucket, upload_id)

    def _drop_upload(self, bucket: str, upload_id: str) -> None:
        with self._lock:
            entry = self._bucket(bucket)
            if entry.uploads.pop(upload_id, None) is None:
                return
            graveyard = self._tmp / f"upload-{upload_id}"
            os.replace(entry.upload_dir(upload_id), graveyard)
        shutil.rmtree(graveyard, ignore_errors=True)

    def _upload(self, bucket: str, key: str, upload_id: str) -> UploadRecord:
        upload = self._bucket(bucket).uploads.get(upload_id)
        if upload is None or upload.key != key:
            raise OssError("NoSuchUpload", UploadId=upload_id)
        return upload

    # -- durable small files ---------------------------------------------------------------------

    def _stage_json(self, data: dict[str, Any]) -> Path:
        path = self._tmp / f"{uuid.uuid4().hex}.json"
        with open(path, "wb") as file:
            file.write(json.dumps(data, ensure_ascii=False, sort_keys=True).encode())
            file.flush()
            os.fsync(file.fileno())
        return path

    def _write_json(self, path: Path, data: dict[str, Any]) -> None:
        os.replace(self._stage_json(data), path)
        _fsync_dir(path.parent)


def _select_parts(upload: UploadRecord, requested: list[tuple[int, str]] | None) -> list[PartRecord]:
    if requested is None:
        parts = [upload.parts[n] for n in sorted(upload.parts)]
    else:
        numbers = [number for number, _ in requested]
        if numbers != sorted(set(numbers)):
            raise OssError("InvalidPartOrder")
        parts = []
        for number, etag in requested:
            part = upload.parts.get(number)
            if part is None or part.etag != etag.strip('"').upper():
                raise OssError("InvalidPart", PartNumber=str(number))
            parts.append(part)
    if not parts:
        raise OssError("InvalidPart", message="The upload has no parts to complete.")
    for part in parts[:-1]:
        if part.size < MIN_PART_SIZE:
            raise OssError("EntityTooSmall", PartNumber=str(part.number), MinSizeAllowed=str(MIN_PART_SIZE))
    return parts


def _upload_id() -> str:
    """32 uppercase hex digits that sort by creation time, as OSS's do (its listings rely on it)."""
    return f"{time.time_ns():016X}{uuid.uuid4().hex[:16].upper()}"


def _encode_object(record: ObjectRecord) -> dict[str, Any]:
    return dataclasses.asdict(record)


def _decode_object(data: dict[str, Any]) -> ObjectRecord:
    return ObjectRecord(**{**data, "attrs": ObjectAttrs(**data["attrs"])})


def _encode_upload(upload: UploadRecord) -> dict[str, Any]:
    data = dataclasses.asdict(upload)
    del data["parts"]  # each part has its own file
    return data


def _load_bucket(root: Path) -> _Bucket:
    """Rebuild one bucket's index from disk and remove bodies no record points to (crash leftovers)."""
    bucket = _Bucket(record=BucketRecord(**_read_json(root / "bucket.json")), root=root)
    for meta in (root / "meta").glob("*/*.json"):
        record = _decode_object(_read_json(meta))
        bucket.objects[record.key] = record
    bucket.keys = sorted(bucket.objects)
    referenced = {record.blob for record in bucket.objects.values()}
    for blob in (root / "blobs").glob("*/*"):
        if blob.name not in referenced:
            blob.unlink()
    for directory in (root / "uploads").iterdir():
        if not (directory / "upload.json").is_file():
            shutil.rmtree(directory)  # a crash inside InitiateMultipartUpload: it never answered
            continue
        data = _read_json(directory / "upload.json")
        upload = UploadRecord(**{**data, "attrs": ObjectAttrs(**data["attrs"])})
        for part_file in directory.glob("part-*.json"):
            part = PartRecord(**_read_json(part_file))
            upload.parts[part.number] = part
        kept = {part.blob for part in upload.parts.values()}
        for body in directory.glob("*.part"):
            if body.name not in kept:
                body.unlink()
        bucket.uploads[upload.upload_id] = upload
    return bucket


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_bytes())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _acquire_directory_lock(path: Path) -> IO[str]:
    lock_file = open(path, "a+")  # noqa: SIM115 - held open for the life of the Storage
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock_file.close()
        raise DataDirInUse(f"{path.parent} is in use by another OSS emulator process") from None
    return lock_file
