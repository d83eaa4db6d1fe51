"""A compact cursor over a folder of delivered files: a high-water mark, not a list of every file.

The landing sensor's cursor used to hold every file it had seen with its fingerprint (about 120
entries for 60 days of two tables, which the UI's tick table printed in full). A delivered file
carries the time it was written, so the newest modification time seen (the mark) says which files
are new: those written after it, and those written at the mark that were not among the files seen
at it. A digest of the listing (names, times, sizes) covers what a mark cannot see, a file that
disappeared or one moved in with an older time (``mv`` keeps it): when the files below the mark no
longer match the digest, every file is a candidate again. Candidates are only what *may* need work:
the caller keeps those whose partition was not stored after the file was written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

Listing = Mapping[str, tuple[int, int]]  # relative path -> (modification time in ns, size in bytes)


def listing_digest(files: Listing) -> str:
    """A short digest of a listing; the empty listing's is the empty string, as a fresh cursor's."""
    if not files:
        return ""
    lines = "\n".join(f"{name}:{mtime}:{size}" for name, (mtime, size) in sorted(files.items()))
    return hashlib.sha1(lines.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class LandingCursor:
    mark_ns: int = 0
    at_mark: tuple[str, ...] = ()
    listing: str = ""
    files: int = 0

    def encode(self) -> str:
        return json.dumps(
            {"files": self.files, "listing": self.listing, "mark_ns": self.mark_ns, "at_mark": self.at_mark},
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, text: str | None) -> LandingCursor:
        """The stored cursor; none, or one of an older format, is a fresh start (every file a candidate)."""
        stored = json.loads(text) if text else {}
        if not isinstance(stored, dict) or "mark_ns" not in stored:
            return cls()
        return cls(
            int(stored["mark_ns"]), tuple(stored["at_mark"]), str(stored["listing"]), int(stored["files"])
        )


@dataclass(frozen=True)
class Scan:
    candidates: tuple[str, ...]  # files that may need work, in name order
    unchanged: bool  # the listing is the one the cursor saw
    rescanned: bool  # files below the mark changed: every file was a candidate
    cursor: LandingCursor  # the cursor after this scan


def scan(cursor: LandingCursor, files: Listing) -> Scan:
    """Which of ``files`` are new or changed since ``cursor``, and the cursor that follows."""
    digest = listing_digest(files)
    mark = max([cursor.mark_ns, *(mtime for mtime, _ in files.values())])
    at_mark = tuple(sorted(n for n, (mtime, _) in files.items() if mtime == mark))
    after = LandingCursor(mark, at_mark, digest, len(files))
    if digest == cursor.listing:
        return Scan((), True, False, after)
    above = {
        name
        for name, (mtime, _) in files.items()
        if mtime > cursor.mark_ns or (mtime == cursor.mark_ns and name not in cursor.at_mark)
    }
    below = {name: state for name, state in files.items() if name not in above}
    if listing_digest(below) != cursor.listing:
        return Scan(tuple(sorted(files)), False, True, after)
    return Scan(tuple(sorted(above)), False, False, after)
