"""The local FC runner's durable queue: one file per pending invocation, rewritten, removed, recovered."""

from __future__ import annotations

from outpaint.local.spool import PendingEvent, Spool


def event(request_id: str, born: float, **changes) -> PendingEvent:
    return PendingEvent(request_id, "on-upload", b'{"events": [\xff]}', "upload inbox/a.jpg", born, **changes)


def test_events_come_back_oldest_first_with_their_retry_state(tmp_path):
    spool = Spool(tmp_path / "pending")
    spool.put(event("1-b", born=20.0))
    spool.put(event("1-a", born=10.0))
    spool.put(event("1-b", born=20.0, attempt=2, not_before=99.5))  # a rewrite after a failed attempt

    again = Spool(tmp_path / "pending").load()  # another instance: a restart

    assert [e.request_id for e in again] == ["1-a", "1-b"]
    assert again[1] == event("1-b", born=20.0, attempt=2, not_before=99.5)
    assert again[0].payload == b'{"events": [\xff]}'  # bytes kept exactly, not only UTF-8
    assert sorted(p.name for p in (tmp_path / "pending").iterdir()) == ["1-a.json", "1-b.json"]


def test_a_removed_event_is_gone_and_removing_twice_is_harmless(tmp_path):
    spool = Spool(tmp_path)
    spool.put(event("1-a", born=1.0))
    spool.remove("1-a")
    spool.remove("1-a")
    assert spool.load() == []


def test_an_unreadable_file_is_set_aside_and_logged(tmp_path, caplog):
    spool = Spool(tmp_path)
    spool.put(event("1-a", born=1.0))
    (tmp_path / "1-torn.json").write_text('{"request_id": "1-torn", "payl')

    assert [e.request_id for e in spool.load()] == ["1-a"]
    assert (tmp_path / "1-torn.bad").exists()
    assert "pending event 1-torn.json is unreadable" in caplog.text
