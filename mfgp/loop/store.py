"""A campaign's state in SQLite: configuration, pool, observations, suggestions, checkpoints.

One file (the standard library's ``sqlite3``, WAL journal, ``synchronous=FULL``), so a campaign
survives its process: every mutation is one transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``),
so a kill at any moment leaves either the whole change or none of it. One process works on a
store at a time: a second one opening it gets :class:`~mfgp.exceptions.CampaignLockedError`
(an advisory lock on ``<store>.lock``, released when the owner closes it or dies), never a
half-written state.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from mfgp.exceptions import CampaignClosedError, CampaignLockedError, SerializationError

__all__ = ["SCHEMA_VERSION", "Store"]

#: bumped when the tables change incompatibly
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pool (
    id INTEGER PRIMARY KEY, formula TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS observations (
    id INTEGER PRIMARY KEY AUTOINCREMENT, formula TEXT NOT NULL, fidelity TEXT NOT NULL,
    value REAL NOT NULL, noise REAL, source TEXT NOT NULL, suggestion INTEGER,
    created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS suggestions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, round INTEGER NOT NULL, rank INTEGER NOT NULL,
    formula TEXT NOT NULL, fidelity TEXT NOT NULL, score REAL, mean REAL, std REAL,
    cost REAL NOT NULL, status TEXT NOT NULL, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT, n_obs INTEGER NOT NULL, blob BLOB NOT NULL,
    created TEXT NOT NULL);
"""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


class Store:
    """The SQLite file of one campaign (see the module).

    Args:
        path: the database file (created if missing).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        lock = Path(f"{self.path}.lock")
        made_lock = not lock.exists()
        self._lock = open(lock, "a+")  # noqa: SIM115 (held while open)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            self._lock.close()
            raise CampaignLockedError(
                f"campaign store {str(self.path)!r} is open in another process; close that "
                "campaign first (or wait for it to finish)"
            ) from err
        self._db: sqlite3.Connection | None = None
        try:
            self._open()
        except BaseException as err:
            self.close()
            if made_lock:
                lock.unlink(missing_ok=True)
            if isinstance(err, sqlite3.DatabaseError):
                raise SerializationError(
                    f"{str(self.path)!r} is not a campaign store (SQLite says: {err}); pass the "
                    "file a Campaign created, or a new path"
                ) from None
            raise

    def _open(self) -> None:
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        with self.transaction():
            for stmt in filter(str.strip, _SCHEMA.split(";")):
                self.db.execute(stmt)
            version = self.get("schema_version")
            if version is None:
                self.set("schema_version", SCHEMA_VERSION)
            elif version > SCHEMA_VERSION:
                raise SerializationError(
                    f"campaign store {str(self.path)!r} has schema {version}; this mfgp reads "
                    f"up to {SCHEMA_VERSION}: upgrade mfgp"
                )

    @property
    def db(self) -> sqlite3.Connection:
        """The open connection (an error naming the store once it is closed)."""
        if getattr(self, "_db", None) is None:
            raise CampaignClosedError(
                f"campaign store {str(self.path)!r} is closed; reopen it with "
                f"Campaign.open({str(self.path)!r})"
            )
        return self._db

    # -- transactions ------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; any error rolls the whole change back."""
        if self.db.in_transaction:  # nested: part of the outer one
            yield self.db
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        """Close the database and release the lock."""
        if getattr(self, "_db", None) is not None:
            self._db.close()
            self._db = None
        if not self._lock.closed:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- meta --------------------------------------------------------------------------------
    def get(self, key: str, default=None):
        """A configuration value (JSON)."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set(self, key: str, value) -> None:
        """Set a configuration value (JSON), in a transaction."""
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    # -- rows --------------------------------------------------------------------------------
    def add_pool(self, formulas) -> None:
        """Add formulas to the pool (known ones are kept once)."""
        with self.transaction():
            self.db.executemany("INSERT OR IGNORE INTO pool (formula) VALUES (?)",
                                [(str(f),) for f in formulas])  # fmt: skip

    def pool(self) -> list[str]:
        """The pool's formulas, in the order added."""
        return [r[0] for r in self.db.execute("SELECT formula FROM pool ORDER BY id")]

    def add_observations(self, frame: pd.DataFrame, source: str) -> None:
        """Insert rows ``formula, fidelity, value[, noise][, suggestion]`` in one transaction."""
        now = _now()
        rows = [(str(r.formula), str(r.fidelity), float(r.value),
                 None if pd.isna(getattr(r, "noise", None)) else float(r.noise), source,
                 None if pd.isna(getattr(r, "suggestion", None)) else int(r.suggestion), now)
                for r in frame.itertuples(index=False)]  # fmt: skip
        with self.transaction():
            self.db.executemany(
                "INSERT INTO observations (formula, fidelity, value, noise, source, suggestion, "
                "created) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)  # fmt: skip
            answered = [(r[5],) for r in rows if r[5] is not None]
            self.db.executemany("UPDATE suggestions SET status = 'answered' WHERE id = ?",
                                answered)  # fmt: skip

    def observations(self) -> pd.DataFrame:
        """Every observation, in the order recorded."""
        return pd.read_sql_query(
            "SELECT id, formula, fidelity, value, noise, source, suggestion, created "
            "FROM observations ORDER BY id", self.db)  # fmt: skip

    def add_suggestions(self, frame: pd.DataFrame, round_: int) -> list[int]:
        """Record a batch as pending; returns their ids."""
        now = _now()
        ids = []
        with self.transaction():
            for r in frame.itertuples(index=False):
                cur = self.db.execute(
                    "INSERT INTO suggestions (round, rank, formula, fidelity, score, mean, std, "
                    "cost, status, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
                    (round_, int(r.rank), str(r.formula), str(r.fidelity), float(r.score),
                     float(r.mean), float(r.std), float(r.cost), now))  # fmt: skip
                ids.append(int(cur.lastrowid))
        return ids

    def suggestions(self, status: str | None = None) -> pd.DataFrame:
        """Suggestions (all, or of one status), in the order made."""
        query = ("SELECT id, round, rank, formula, fidelity, score, mean, std, cost, status, "
                 "created FROM suggestions")  # fmt: skip
        if status is None:
            return pd.read_sql_query(query + " ORDER BY id", self.db)
        return pd.read_sql_query(query + " WHERE status = ? ORDER BY id", self.db,
                                 params=(status,))  # fmt: skip

    def cancel(self, ids: list[int]) -> int:
        """Mark these pending suggestions cancelled; returns how many."""
        with self.transaction():
            return sum(self.db.execute(
                "UPDATE suggestions SET status = 'cancelled' WHERE id = ? AND status = 'pending'",
                (int(i),)).rowcount for i in ids)  # fmt: skip

    def cancel_pending(self) -> int:
        """Mark every pending suggestion cancelled; returns how many."""
        with self.transaction():
            return self.db.execute(
                "UPDATE suggestions SET status = 'cancelled' WHERE status = 'pending'").rowcount

    def add_checkpoint(self, n_obs: int, blob: bytes, keep: int | None = None) -> None:
        """Store a fitted model (the :mod:`mfgp.io` format) fitted on the first ``n_obs`` rows.

        With ``keep``, only the newest ``keep`` checkpoints stay (older ones are deleted in the
        same transaction, so a crash leaves either the old set or the new one).
        """
        with self.transaction():
            self.db.execute("INSERT INTO checkpoints (n_obs, blob, created) VALUES (?, ?, ?)",
                            (int(n_obs), sqlite3.Binary(blob), _now()))  # fmt: skip
            if keep is not None:
                self.db.execute(
                    "DELETE FROM checkpoints WHERE id NOT IN "
                    "(SELECT id FROM checkpoints ORDER BY id DESC LIMIT ?)", (int(max(keep, 1)),))

    def checkpoints(self) -> int:
        """How many checkpoints the store holds."""
        return int(self.db.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0])

    def latest_checkpoint(self) -> tuple[int, bytes] | None:
        """``(n_obs, blob)`` of the newest checkpoint, or ``None``."""
        row = self.db.execute(
            "SELECT n_obs, blob FROM checkpoints ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))
