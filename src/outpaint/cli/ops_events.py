"""`outpaint events put KEY [--bucket B]`: the FC OSS-trigger event an upload of an existing object sends.

The event is built from the object as it is now (one HEAD: ETag, size, content type, user metadata), in
exactly the form the local OSS emulator delivers (``Notifier.render``), for `outpaint invoke upload -`,
FC's console test event, or ``s invoke --event-file``.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid

from outpaint.cli.ops_common import Ops, OpsError
from outpaint.naming import USER_META_HEADER

HELP = "`events put KEY`: print the FC upload event of an existing object (for invoke or FC's console)"
EVENT_ACCOUNT_ID = "0000000000000000"  # the event's owner id; on_upload does not read it


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    put = sub.add_parser("put", help="the ObjectCreated:PutObject event of the object at KEY")
    put.add_argument("key", metavar="KEY", help="an existing object's key")
    put.add_argument("--bucket", help="the bucket named in the event (default: OUTPAINT_BUCKET)")


def events(ops: Ops, args: argparse.Namespace) -> int:
    from outpaint.local.oss.notify import Notifier, ObjectEvent

    head = ops.store.storage.head_or_none(args.key)
    if head is None:
        raise OpsError(f"no object {args.key!r} in bucket {ops.settings.bucket!r}: an event needs one")
    event = ObjectEvent(
        name="ObjectCreated:PutObject",
        bucket=args.bucket or ops.settings.bucket,
        key=head.key,
        size=head.size,
        delta_size=head.size,
        etag=head.etag,
        time=time.time(),
        request_id=f"events-put-{uuid.uuid4().hex[:24].upper()}",
        source_ip="127.0.0.1",
        mime_type=head.content_type or "application/octet-stream",
        user_meta={USER_META_HEADER + name: value for name, value in head.user_meta.items()},
    )
    notifier = Notifier(region=ops.settings.region, account_id=EVENT_ACCOUNT_ID)
    sys.stdout.write(notifier.render(event, rule_id="outpaint-events-put").decode() + "\n")
    return 0
