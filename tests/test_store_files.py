"""The database holds phone numbers, messages and password hashes: alertd.db,
-wal and -shm are created 0600 and the folder alertd creates for them 0700,
whatever the umask (outside systemd there is no UMask=0077)."""
from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from alertd.store import Store


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def loose_umask():
    old = os.umask(0o022)  # the usual login shell's: files 0644, folders 0755
    yield
    os.umask(old)


def test_the_database_its_wal_and_shm_are_0600_and_new_folders_0700(tmp_path, loose_umask):
    db = tmp_path / "state" / "alertd" / "alertd.db"
    store = Store(db)
    try:
        store.keys.create("k", "ak_live_abcd", "hash", 1.0)  # a write: the -wal and -shm exist now
        files = {p.name: mode(p) for p in db.parent.iterdir()}
    finally:
        store.close()
    assert files == {"alertd.db": 0o600, "alertd.db-wal": 0o600, "alertd.db-shm": 0o600}, files
    assert mode(db.parent) == 0o700 and mode(db.parent.parent) == 0o700


def test_a_folder_that_already_exists_keeps_its_mode(tmp_path, loose_umask):
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o755)
    Store(folder / "alertd.db").close()
    assert mode(folder) == 0o755  # not ours to change
    assert mode(folder / "alertd.db") == 0o600


def test_alertd_keys_create_under_umask_022_makes_a_private_database(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("database: data/alertd.db\nrules: rules\n")
    done = subprocess.run(["sh", "-c", 'umask 022; exec "$0" -m alertd keys create --name x -c "$1"',
                           sys.executable, str(config)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert mode(tmp_path / "data") == 0o700
    assert mode(tmp_path / "data" / "alertd.db") == 0o600
    for extra in ("alertd.db-wal", "alertd.db-shm"):
        if (tmp_path / "data" / extra).exists():
            assert mode(tmp_path / "data" / extra) == 0o600, extra
