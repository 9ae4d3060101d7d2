# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The edge cache and the ``cf-cache-status`` it answers, following developers.cloudflare.com/cache/:

- By default only files with a static extension (Cloudflare's "Default cache behavior" list) are
  eligible; HTML, JSON and everything else is ``DYNAMIC``. A cache rule (``set_cache_settings``)
  with ``cache: true`` makes anything it matches eligible; ``cache: false`` answers ``BYPASS``.
- Only GET and HEAD are cached. An eligible answer is stored unless the origin forbids it
  (``Cache-Control: private``, ``no-store``, ``no-cache``, ``max-age=0``) or sets a cookie: then
  ``BYPASS``, as Cloudflare answers then.
- Stored: ``MISS`` the first time, ``HIT`` (with ``Age``) until the edge TTL runs out, then
  ``EXPIRED`` (fetched again). The TTL is the origin's ``s-maxage`` or ``max-age``, else 2 hours
  for a 200 (Cloudflare's default edge TTL), or the rule's ``edge_ttl`` (``override_origin``).
The cache key is scheme, host and path with query, Cloudflare's default.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

STATIC_EXTENSIONS = frozenset((
    "7z", "avi", "avif", "apk", "bin", "bmp", "bz2", "class", "css", "csv", "doc", "docx", "dmg", "ejs", "eot", "eps", "exe",
    "flac", "gif", "gz", "ico", "iso", "jar", "jpg", "jpeg", "js", "mid", "midi", "mkv", "mp3", "mp4", "ogg", "otf", "pdf",
    "pict", "pls", "png", "ppt", "pptx", "ps", "rar", "svg", "svgz", "swf", "tar", "tif", "tiff", "ttf", "webm", "webp",
    "woff", "woff2", "xls", "xlsx", "zip", "zst"))
CACHEABLE_STATUSES = {200: 7200, 206: 7200, 301: 7200, 404: 180}  # default edge TTLs in seconds, by status
MAX_ENTRIES = 4000
_MAX_AGE = re.compile(r"(?:^|,)\s*(s-maxage|max-age)\s*=\s*(\d+)", re.I)


@dataclass
class CacheSettings:
    """What the matching cache rules decided (later rules override earlier ones, as Cloudflare applies them)."""

    cache: bool | None = None
    edge_ttl: int | None = None

    def apply(self, parameters: dict[str, Any]) -> None:
        if isinstance(parameters.get("cache"), bool):
            self.cache = parameters["cache"]
        edge_ttl = parameters.get("edge_ttl")
        if isinstance(edge_ttl, dict) and edge_ttl.get("mode") == "override_origin" and isinstance(edge_ttl.get("default"), int):
            self.edge_ttl = edge_ttl["default"]
        elif isinstance(edge_ttl, dict) and edge_ttl.get("mode") == "respect_origin":
            self.edge_ttl = None


@dataclass
class Entry:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    stored: float
    ttl: int
    zone_id: str = field(default="")


def eligibility(method: str, path: str, settings: CacheSettings) -> str:
    """``eligible``, or the status of a request the cache never stores: ``DYNAMIC`` or ``BYPASS``."""
    if settings.cache is False:
        return "BYPASS"
    if method not in ("GET", "HEAD"):
        return "DYNAMIC"
    if settings.cache is True:
        return "eligible"
    extension = path.rsplit("/", 1)[-1].rpartition(".")[2].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return "eligible" if extension in STATIC_EXTENSIONS else "DYNAMIC"


def edge_ttl(status: int, headers: list[tuple[str, str]], settings: CacheSettings) -> int | None:
    """How long to keep an origin answer; None when the origin forbids it (the answer is then ``BYPASS``)."""
    lowered = [(name.lower(), value) for name, value in headers]
    if any(name == "set-cookie" for name, _value in lowered):
        return None
    control = ", ".join(value for name, value in lowered if name == "cache-control").lower()
    if any(word in control for word in ("private", "no-store", "no-cache")):
        return None
    if status not in CACHEABLE_STATUSES:
        return None
    if settings.edge_ttl is not None:
        return settings.edge_ttl
    ages = {name.lower(): int(seconds) for name, seconds in _MAX_AGE.findall(control)}
    seconds = ages.get("s-maxage", ages.get("max-age"))
    if seconds == 0:
        return None
    return seconds if seconds is not None else CACHEABLE_STATUSES[status]


class EdgeCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str, str], Entry] = OrderedDict()

    def get(self, key: tuple[str, str, str]) -> tuple[Entry | None, bool]:
        """(entry, fresh): the stored answer, if any, and whether it may still be served."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None, False
            return entry, time.monotonic() - entry.stored < entry.ttl

    def put(self, key: tuple[str, str, str], entry: Entry) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)

    def purge(self, zone_id: str | None = None) -> int:
        """Forget every entry (of one zone); how many were dropped."""
        with self._lock:
            keys = [key for key, entry in self._entries.items() if zone_id is None or entry.zone_id == zone_id]
            for key in keys:
                del self._entries[key]
            return len(keys)
