"""What the SQLite tests share: one `manage.py migrate` of a fresh SQLite file per session
(the embedded default's migrations take some 18 s), copied for each module that needs a
migrated database of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory) -> Path:
    """A SQLite portal database migrated as `make run` migrates it, in a fresh process
    that names no external service. Copy it (``copy_migrated_sqlite``); never write it."""
    root = tmp_path_factory.mktemp("sqlite-template")
    database = root / "portal.sqlite3"
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL"}}
    env.update(
        DATABASE_URL=f"sqlite:///{database}",
        CELERY_BROKER_URL="filesystem://",
        PORTAL_VAR_DIR=str(root / "var"),
        PORTAL_ENV="development",
        PYTHONDONTWRITEBYTECODE="1",
    )
    result = subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), "migrate", "--noinput"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"manage.py migrate:\n{result.stderr}"
    return database


@pytest.fixture(scope="session")
def copy_migrated_sqlite(migrated_sqlite):
    def copy(to: Path) -> Path:
        to.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(migrated_sqlite, to)
        return to

    return copy
