"""Lease starts kept safe in an append-only file until the store has them.

A new lease's visit (who was shown the number, from which campaign) must survive a kill -9
from the moment the number is shown. A SQLite transaction for each start does that, but writes
pages to the write-ahead log for every visitor; a JSON line copied into a shared mapping of a
journal file here does the same for a small fraction of that, with no system call (a ``write()``
a start cost 3-10 µs in the kernel). Both land in the kernel's page cache: safe from a killed
process, not from a power cut, as SQLite's NORMAL commit. The store then takes the starts in big
transactions, where a row costs a few µs, and a journal file goes once it is full and every line
in it is stored.

A file's blocks are reserved when it is made (``posix_fallocate``), so a full disk refuses the
file then, with an OSError the caller answers, and never a page of the mapping later (which would
kill the process with SIGBUS). What the lines leave of a file reads as zero bytes: readers stop at
the first (JSON text never holds one).

Each process writes its own files, ``<db>.starts-<pid>-<random>-<n>``, and holds an exclusive
``flock`` on each while it lives. Opening the store, an engine replays the files nobody holds
(their process died) into it, then removes them: the store's writes of starts are idempotent,
so a line stored twice changes nothing.
"""
from __future__ import annotations

import fcntl
import json
import logging
import math
import mmap
import os
import secrets
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from .base import LeaseRow, Store

log = logging.getLogger("k50core.store")

Start = tuple[dict[str, Any], "LeaseRow"]  # (the visit, its lease row), as Store.save_starts takes them
ROTATE_BYTES = 4 << 20  # a busy journal moves to a new file at this size; stored files are removed


class _File:
    __slots__ = ("path", "fd", "map", "capacity", "size", "unstored")

    def __init__(self, path: str, capacity: int) -> None:
        # made under a name no listing takes, locked, its blocks reserved, mapped, then named:
        # recovery elsewhere never sees it unlocked (it would take an empty journal for a dead one
        # and remove it), nor a file a full disk refused
        folder, name = os.path.split(path)
        hidden = os.path.join(folder, "." + name + ".new")
        self.fd = os.open(hidden, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)  # "alive": recovery leaves a held file alone
            _reserve(self.fd, capacity)
            self.map = mmap.mmap(self.fd, capacity, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            os.rename(hidden, path)
        except BaseException:
            if hasattr(self, "map"):
                self.map.close()
            os.close(self.fd)
            try:
                os.unlink(hidden)
            except OSError:
                pass
            raise
        self.path = path
        self.capacity = capacity
        self.size = 0
        self.unstored = 0

    def close(self) -> None:
        self.map.close()
        os.close(self.fd)


def _reserve(fd: int, size: int) -> None:
    """The file's blocks, allocated now (a full disk raises OSError here, not SIGBUS later)."""
    fallocate = getattr(os, "posix_fallocate", None)
    if fallocate is not None:
        fallocate(fd, 0, size)
        return
    zeros, done = bytes(min(size, 1 << 16)), 0  # (no posix_fallocate: written out)
    while done < size:
        done += os.pwrite(fd, zeros[:size - done], done)


class StartJournal:
    """``append(starts)`` before the number is shown; ``stored(n)`` once the store holds the
    oldest ``n`` queued (the host writes starts in the order it queued them). ``skip(n)`` queues
    starts the journal could not take (a failing disk), so the order still adds up."""

    def __init__(self, db_path: str) -> None:
        self.db_path = db_path
        self.pid = os.getpid()
        self.prefix = f"{os.path.abspath(db_path)}.starts-{self.pid}-{secrets.token_hex(3)}-"
        self._files: list[_File] = []
        self._order: deque[list[Any]] = deque()  # [file or None (not journaled), count], oldest first
        self._made = 0
        self.read_at: dict[str, tuple[int, int]] = {}  # other processes' journals: (inode, bytes read), see catch_up
        self._new_file()

    def reopened(self) -> StartJournal:
        """This journal for a forked child: files of its own (the parent's stay the parent's: one
        process emptying a file it shares would drop the other's lines)."""
        for f in self._files:
            f.close()  # the child's copies; the parent keeps its lock and its mapping
        self._files.clear()
        return StartJournal(self.db_path)

    def _new_file(self, at_least: int = 0) -> None:
        """The next file (raises OSError when the disk refuses it: nothing else changes)."""
        f = _File(f"{self.prefix}{self._made + 1}", max(ROTATE_BYTES, at_least))
        self._made += 1
        self._files.append(f)

    def append(self, starts: Sequence[Start]) -> None:
        """The starts' lines copied into the current file's mapping; safe from a kill once this
        returns. Raises OSError (nothing queued) when the disk refuses a new file."""
        data = b"".join([_line(visit, row) for visit, row in starts])
        current = self._files[-1] if self._files else None
        if current is None or current.size + len(data) > current.capacity:
            self._new_file(len(data))
            if current is not None and not current.unstored:  # (a file all stored goes: see stored)
                self._files.remove(current)
                _remove(current)
            current = self._files[-1]
        end = current.size + len(data)
        current.map[current.size:end] = data
        current.size = end
        current.unstored += len(starts)
        self._queue(current, len(starts))

    def skip(self, count: int) -> None:
        """``count`` starts queued for the store that are not in the journal."""
        self._queue(None, count)

    def _queue(self, f: Any, count: int) -> None:
        if self._order and self._order[-1][0] is f:
            self._order[-1][1] += count
        else:
            self._order.append([f, count])

    def stored(self, count: int) -> None:
        """The oldest ``count`` queued starts are in the store: files fully stored go."""
        while count > 0 and self._order:
            entry = self._order[0]
            done = min(count, entry[1])
            entry[1] -= done
            count -= done
            if not entry[1]:
                self._order.popleft()
            f = entry[0]
            if f is None:
                continue
            f.unstored -= done
            if f.unstored:
                continue
            if f is self._files[-1]:
                # the file written now, all stored: kept and written on until full (a new file a
                # batch cost 3-4 µs a start in page faults and unmapping); after a crash its stored
                # lines are only replayed again, to no effect
                continue
            self._files.remove(f)
            _remove(f)

    @property
    def unstored(self) -> int:
        return sum(f.unstored for f in self._files)

    def close(self) -> None:
        """Remove the files (everything in them stored) or, with starts not stored, keep them for
        the next engine to replay, released. (In a forked child, which shares the parent's files,
        only its descriptors close.)"""
        for f in self._files:
            if f.unstored or os.getpid() != self.pid:
                f.close()
            else:
                _remove(f)
        self._files.clear()
        self._order.clear()

    def __del__(self) -> None:  # an engine dropped without close(): its descriptors and locks go too
        try:
            self.close()
        except Exception:
            pass


def _line(visit: dict[str, Any], row: LeaseRow) -> bytes:
    """One start as a line of JSON (orjson: a tenth of the stdlib encoder's time, and bytes already)."""
    return orjson.dumps([visit, [row.lease, row.pool, row.number, row.visitor_id, row.session_id, row.rule,
                                 row.start, row.last, row.ends, row.shared]]) + b"\n"


def _remove(f: _File) -> None:
    """Unlink and close a journal file whose lines are all stored (an error is logged: the
    store has the starts, so a file left behind is only replayed again, to no effect)."""
    try:
        os.unlink(f.path)
    except OSError as exc:
        log.warning("lease start journal %s: could not remove it (%s)", f.path, exc)
    finally:
        f.close()


def journals(db_path: str) -> list[str]:
    """The journal files of the store at ``db_path`` (one directory listing)."""
    folder, base = os.path.split(os.path.abspath(db_path))
    prefix = base + ".starts-"
    return sorted(os.path.join(folder, name) for name in os.listdir(folder) if name.startswith(prefix))


def recover(db_path: str, store: Store, paths: list[str] | None = None) -> int:
    """Replay into ``store`` every journal of ``db_path`` that no live process holds, then remove
    it; returns how many starts were replayed. A line that cannot be read (cut short, edited) is
    logged and skipped; a store that fails leaves the file for the next try."""
    replayed = 0
    for path in journals(db_path) if paths is None else paths:
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:  # replayed and removed by another engine just now
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # its process is alive
                continue
            try:
                if os.fstat(fd).st_ino != os.stat(path).st_ino:
                    continue
            except FileNotFoundError:
                continue
            starts, _ = _parse(_read_from(fd, 0, whole=True), path, complete_only=False)
            _save(store, starts, path, durable=True)
            os.unlink(path)
            replayed += len(starts)
        finally:
            os.close(fd)
    if replayed:
        log.warning("replayed %d lease starts a stopped process had journaled but not stored", replayed)
    return replayed


def catch_up(db_path: str, store: Store, own: StartJournal) -> int:
    """Put into ``store`` now what the other processes on ``db_path`` have journaled and not yet
    stored (they store it within a second; a call attributed meanwhile needs it at once); the
    journals of dead processes are recovered. ``own`` remembers how far each file was read, so
    a busy worker's journal is read once, not at every call. Returns how many starts were read."""
    others = [p for p in journals(db_path) if not p.startswith(own.prefix)]
    read_at = own.read_at
    for path in [p for p in read_at if p not in others]:
        del read_at[path]
    if not others:  # the usual case, one process: a directory listing and done
        return 0
    recover(db_path, store, others)
    starts: list[Start] = []
    for path in others:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # stored and removed by its process meanwhile, or recovered above
            read_at.pop(path, None)
            continue
        try:
            info = os.fstat(fd)
            inode, offset = read_at.get(path, (info.st_ino, 0))
            if inode != info.st_ino or info.st_size < offset:  # a new file, or emptied: from the top
                offset = 0
            got, used = _parse(_read_from(fd, offset), path, complete_only=True)
            starts += got
            read_at[path] = (info.st_ino, offset + used)
        finally:
            os.close(fd)
    if starts:  # what its process stores again later changes nothing
        _save(store, starts, "other workers' journals", durable=False)
    return len(starts)


def _read_from(fd: int, offset: int, whole: bool = False) -> bytes:
    """A journal's bytes from ``offset`` up to its first zero byte: what its lines left of the
    file. ``whole``: a dead process's file, all of it but the zero tail, any zero byte among the
    lines (damage) read as a line break, so the lines after it are not lost."""
    chunks: list[bytes] = []
    while True:
        chunk = os.pread(fd, 1 << 20, offset)
        if not chunk:
            break
        end = -1 if whole else chunk.find(0)
        if end >= 0:
            chunks.append(chunk[:end])
            break
        chunks.append(chunk)
        offset += len(chunk)
    data = b"".join(chunks)
    return data.rstrip(b"\0").replace(b"\0", b"\n") if whole else data


def lines(path: str) -> list[bytes]:
    """The lines of one journal file (for tools and tests: what recovery would read)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return [line for line in _read_from(fd, 0, whole=True).split(b"\n") if line.strip()]
    finally:
        os.close(fd)


def _save(store: Store, starts: list[Start], where: str, durable: bool) -> None:
    """Replayed starts into the store, all at once; if that fails, one by one, skipping (and
    logging) a line the store refuses. If it refuses every one, the store itself is failing:
    raised, and the journal stays for the next try."""
    if not starts:
        return
    try:
        store.save_starts(starts, durable=durable, replayed=True)
        return
    except Exception as exc:
        first = exc
    refused = 0
    for one in starts:
        try:
            store.save_starts([one], durable=durable, replayed=True)
        except Exception as exc:
            refused += 1
            log.warning("lease start journal %s: a start the store refuses, skipped (%s)", where, exc)
    if refused == len(starts):
        raise first


def _checked(visit: Any, row: Any) -> list[Any]:
    """The lease row of a journal line, after checking the line is one _line() writes: anything
    else (an edited or damaged file) raises ValueError, so one bad line cannot fail the batch."""
    if type(visit) is not dict or not _is_row(row):
        raise ValueError("expected [visit, lease row]")
    replaced = visit.get("superseded", [])  # the number's previous lease as it ended (see Engine._save_start)
    if type(replaced) is not list or len(replaced) > 1 or not all(_is_row(r) for r in replaced):
        raise ValueError("superseded: expected a list of one lease row")
    if not all(t is None or type(t) is str for t in (visit.get("visitor_id"), visit.get("session_id"))) \
            or not _is_time(visit.get("at")) or type(visit.get("joined", False)) is not bool \
            or not isinstance(visit.get("attributes") or {}, dict):
        raise ValueError("a field of the wrong type")
    return row


def _is_time(t: Any) -> bool:
    return type(t) in (int, float) and math.isfinite(t)


def _is_row(row: Any) -> bool:
    """A lease row as _line() writes it: lease, pool, number (text); visitor, session, rule (text or
    null); start, last, ends (finite numbers); shared (a bool)."""
    return type(row) is list and len(row) == 10 and all(type(t) is str for t in row[0:3]) \
        and all(t is None or type(t) is str for t in row[3:6]) and all(_is_time(t) for t in row[6:9]) \
        and type(row[9]) is bool


def _parse(data: bytes, path: str, complete_only: bool) -> tuple[list[Start], int]:
    """The starts in a journal's bytes, and how many bytes they took. A line that cannot be read
    is logged and skipped; with ``complete_only`` (a live process may be writing it) a last line
    without its newline is left for the next read."""
    from .base import LeaseRow

    end = data.rfind(b"\n") + 1 if complete_only else len(data)
    starts: list[Start] = []
    for number, raw in enumerate(data[:end].split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            visit, row = json.loads(raw.decode("utf-8"))
            starts.append((visit, LeaseRow(*_checked(visit, row))))
        except (ValueError, TypeError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            log.warning("lease start journal %s, line %d: unreadable, skipped (%s)", path, number, exc)
    return starts, end
