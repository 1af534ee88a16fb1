"""Tasks and results on disk, so a restarted emulator still knows them, as the real service keeps tasks
for 24 h: ``tasks/<id>.json`` per task, ``results/<id>.<ext>`` per output image, and the result-URL
signing key (URLs signed before a restart stay valid). Files are replaced atomically; a crash of the
process loses nothing written, a crash of the machine may lose the last moments (no fsync).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from .imaging import Result
from .validation import OutPaintParams, Submission
from .wire import ErrorCode, TaskFailure

log = logging.getLogger("outpaint.local.dashscope")

KEY_BYTES = 32


class TaskStore:
    """The emulator's durable state under ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.tasks = directory / "tasks"
        self.results = directory / "results"
        self.tasks.mkdir(parents=True, exist_ok=True)
        self.results.mkdir(parents=True, exist_ok=True)
        self._key = directory / "signing.key"

    def signing_key(self) -> bytes:
        """The result-URL signing key, made on first use."""
        if not self._key.exists():
            _write(self._key, secrets.token_bytes(KEY_BYTES))
        return self._key.read_bytes()

    def save(self, task: Any) -> None:
        """Write ``task`` (a ``tasks.Task``) as it is now."""
        _write(self.tasks / f"{task.task_id}.json", json.dumps(_record(task)).encode())

    def save_result(self, task_id: str, result: Result) -> None:
        """Write the output image of ``task_id`` (before the task is saved as SUCCEEDED)."""
        _write(self.results / f"{task_id}.{result.extension}", result.data)

    def load(self) -> list[dict[str, Any]]:
        """Every saved task as keyword values of ``tasks.Task`` (result included), oldest first."""
        tasks = []
        for path in self.tasks.glob("*.json"):
            try:
                tasks.append(self._restore(json.loads(path.read_bytes())))
            except (OSError, ValueError, TypeError, KeyError) as exc:
                log.error("task file %s is unreadable (%s): the task is forgotten", path.name, exc)
                path.unlink(missing_ok=True)
        return sorted(tasks, key=lambda values: values["submitted"])

    def remove(self, task_id: str) -> None:
        """Forget one task and its result."""
        (self.tasks / f"{task_id}.json").unlink(missing_ok=True)
        for result in self.results.glob(f"{task_id}.*"):
            result.unlink(missing_ok=True)

    def clear(self) -> None:
        """Forget every task and result (the signing key stays)."""
        for path in [*self.tasks.iterdir(), *self.results.iterdir()]:
            path.unlink(missing_ok=True)

    def _restore(self, record: dict[str, Any]) -> dict[str, Any]:
        values = dict(record)
        submission = values.pop("submission")
        values["submission"] = Submission(submission["image_url"], OutPaintParams(**submission["params"]))
        values["fated"] = _failure(values["fated"])
        values["failure"] = _failure(values["failure"])
        result = values.pop("result")
        values["result"] = None
        if result is not None:
            data = (self.results / f"{values['task_id']}.{result['extension']}").read_bytes()
            values["result"] = Result(data, result["extension"], result["width"], result["height"])
        return values


def _record(task: Any) -> dict[str, Any]:
    result = task.result
    return {
        "task_id": task.task_id,
        "submission": {
            "image_url": task.submission.image_url,
            "params": dataclasses.asdict(task.submission.params),
        },
        "submitted": task.submitted,
        "seconds": task.seconds,
        "fails": task.fails,
        "fated": _failure_record(task.fated),
        "status": task.status,
        "scheduled": task.scheduled,
        "ended": task.ended,
        "failure": _failure_record(task.failure),
        "result_path": task.result_path,
        "result": None
        if result is None
        else {"extension": result.extension, "width": result.width, "height": result.height},
    }


def _failure_record(failure: TaskFailure | None) -> dict[str, Any] | None:
    if failure is None:
        return None
    return {"status": failure.error.status, "code": failure.error.code, "message": failure.message}


def _failure(record: dict[str, Any] | None) -> TaskFailure | None:
    if record is None:
        return None
    return TaskFailure(ErrorCode(record["status"], record["code"], record["message"]))


def _write(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".tmp")
    partial.write_bytes(data)
    os.replace(partial, path)
