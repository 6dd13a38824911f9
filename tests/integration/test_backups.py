"""file_write and file_delete keep the old bytes and mode; restore brings them back byte for byte."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from tests.support.cli import aibus_async
from tests.support.daemon import RunningDaemon, running_daemon, write_config
from tests.support.runs import run_context

ORIGINAL = bytes(range(256)) * 64 + b"\x00\xff\r\n tail"


async def approve(d: RunningDaemon, proposal: dict[str, Any]) -> dict[str, Any]:
    [outcome] = await d.daemon.executor.handle_proposals([proposal], await run_context(d))
    if outcome.status == "pending":
        answer = await d.client.post(f"/api/v1/actions/{outcome.action_id}/approve")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body
    return {"status": outcome.status, "result": outcome.result, "error": outcome.error or outcome.reason}


async def test_file_write_over_a_binary_file_then_restore_over_the_api(tmp_path: Path) -> None:
    target = tmp_path / "blob.bin"
    target.write_bytes(ORIGINAL)
    target.chmod(0o640)
    async with running_daemon(tmp_path) as d:
        done = await approve(d, {"action_type": "file_write", "path": str(target), "content": "replaced"})
        assert done["status"] == "executed", done
        assert target.read_bytes() == b"replaced"
        assert stat.S_IMODE(target.stat().st_mode) == 0o640
        backup_id = done["result"]["backup_id"]

        listed = (await d.client.get("/api/v1/backups")).json()["backups"]
        assert [b["id"] for b in listed] == [backup_id]
        assert listed[0]["size"] == len(ORIGINAL) and listed[0]["mode"] == 0o640 and listed[0]["path"] == str(target)
        stored = d.daemon.config.backups_dir / listed[0]["stored_as"]
        assert stat.S_IMODE(stored.stat().st_mode) == 0o600

        restored = await d.client.post(f"/api/v1/backups/{backup_id}/restore")
        assert restored.status_code == 200, restored.text
        assert target.read_bytes() == ORIGINAL
        assert stat.S_IMODE(target.stat().st_mode) == 0o640
        # The replaced content was itself saved before the restore, so the restore can be undone.
        newest = (await d.client.get("/api/v1/backups", params={"path": str(target)})).json()["backups"][0]
        assert newest["id"] != backup_id and newest["size"] == len(b"replaced")
        assert (await d.client.post("/api/v1/backups/bak_nothing/restore")).status_code == 404


async def test_file_delete_then_restore_with_the_cli(tmp_path: Path) -> None:
    target = tmp_path / "keep.sh"
    target.write_bytes(b"#!/bin/sh\necho kept\n")
    target.chmod(0o755)
    async with running_daemon(tmp_path) as d:
        done = await approve(d, {"action_type": "file_delete", "path": str(target)})
        assert done["status"] == "executed", done
        assert not target.exists()
        config = write_config(tmp_path, port=d.daemon.config.server.port)
        code, out, err = await aibus_async(config, "backups", "list")
        assert code == 0, err
        backup_id = done["result"]["backup_id"]
        assert backup_id in out and str(target) in out
        code, out, err = await aibus_async(config, "backups", "restore", backup_id)
        assert code == 0, err
        assert target.read_bytes() == b"#!/bin/sh\necho kept\n"
        assert stat.S_IMODE(target.stat().st_mode) == 0o755
        code, out, err = await aibus_async(config, "backups", "restore", "bak_nothing")
        assert code == 1 and "404" in err and "Traceback" not in err


async def test_a_damaged_backup_is_not_restored(tmp_path: Path) -> None:
    target = tmp_path / "data.txt"
    target.write_bytes(b"v1")
    async with running_daemon(tmp_path) as d:
        done = await approve(d, {"action_type": "file_write", "path": str(target), "content": "v2"})
        record = (await d.client.get("/api/v1/backups")).json()["backups"][0]
        (d.daemon.config.backups_dir / record["stored_as"]).write_bytes(b"tampered")
        answer = await d.client.post(f"/api/v1/backups/{done['result']['backup_id']}/restore")
        assert answer.status_code == 409 and "damaged" in answer.json()["detail"]
        assert target.read_bytes() == b"v2"


async def test_file_caps_and_missing_files_fail_cleanly(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 2048)
    async with running_daemon(tmp_path, {"policy": {"file_max_bytes": 1024}}) as d:
        too_big = await approve(
            d, {"action_type": "file_write", "path": str(tmp_path / "n.txt"), "content": "y" * 2000}
        )
        assert too_big["status"] == "failed" and "file_max_bytes" in too_big["error"]
        over = await approve(d, {"action_type": "file_delete", "path": str(big)})
        assert over["status"] == "failed" and big.exists()
        missing = await approve(d, {"action_type": "file_delete", "path": str(tmp_path / "absent")})
        assert missing["status"] == "failed" and "does not exist" in missing["error"]
        relative = await approve(d, {"action_type": "file_write", "path": "relative.txt", "content": "x"})
        assert relative["status"] in ("failed", "denied")
        assert not exists(Path("relative.txt"))


def exists(path: Path) -> bool:
    return path.exists()
