"""Operators' commands on a live SQLite database (issue 11, door 5).

The database broke when Gradio copied `atelier.db` inside the app's process (door 1): closing that
copy's file descriptor dropped the app's POSIX locks on the file, so the next process to close its
last connection (`python -m auth.cli create-user`) believed it was the only user, checkpointed and
deleted `atelier.db-shm` under the running app. With door 1 closed nothing in the app opens the
database file; this checks that the commands an operator runs beside the app leave it whole.
"""
import os
import sqlite3
import subprocess
import sys
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_cli_beside_a_running_app_leaves_the_database_whole(atelier, client, settings):
    from auth import local_owner

    database = settings.data_dir / "atelier.db"
    env = {**os.environ, "ATELIER_DATA_DIR": str(settings.data_dir), "ATELIER_CATALOGUE": str(settings.catalogue)}
    client.predict(api_name="/jobs")                 # the app has served a call, so it holds the database open
    made_jobs = []
    for _ in range(3):
        email = f"{uuid.uuid4().hex[:8]}@cli.example"
        made = subprocess.run([sys.executable, "-m", "auth.cli", "create-user", email, "--api-key"], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=120)
        assert made.returncode == 0, made.stderr
        assert os.path.exists(f"{database}-shm"), "the CLI removed the running app's shared-memory file"
        # The app still reads and writes: a job goes through, and its listing grows.
        files, info = client.predict(prompt="still whole", seed=5, api_name="/txt2img")
        assert len(files) == len(info["artifact_ids"]) == 1
        made_jobs.append(info["job_id"])
    after = client.predict(api_name="/jobs")
    assert [j["job_id"] for j in after[:3]] == made_jobs[::-1]        # newest first
    assert [j["status"] for j in after[:3]] == ["succeeded"] * 3
    with sqlite3.connect(database) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    [newest] = atelier.service.recent(local_owner(), limit=1)
    assert (newest["job_id"], newest["status"]) == (made_jobs[-1], "succeeded")
