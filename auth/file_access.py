"""Which files a request may read: one check in front of every route of Gradio's that serves a file.

Gradio serves a file named in the URL on several routes (`/gradio_api/file=PATH`,
`/gradio_api/file/PATH`, ...), each spelt in more ways than one (`%2F`, `//`, `dir/../`). Rather than
recognising spellings, `FileGuard` matches the request's decoded path against the very route
templates Gradio registers (with Starlette's own `compile_path`, so the path parameter it extracts is
the one Gradio would open), then decides on the resolved path, denying by default:

- a stored file (under the blob folder) only to a caller who holds its artifact;
- Gradio's upload and cache folders, whose paths carry a per-process secret hash (what Gradio hands
  out for uploads and outputs), to any caller;
- anything else (a URL, the database, `/etc/passwd`, `/proc/self/environ`) to nobody.

`FILE_ROUTES` lists the routes of Gradio 6.31 that serve a file named by the caller, and
`URL_ROUTES` those that fetch a URL for the caller (Atelier never needs them); tests/test_file_access.py
lists every route the mounted app registers and fails on one that is in neither list nor known to
serve no such file, so a Gradio upgrade that adds a route is caught.
"""
from __future__ import annotations

import os
import pathlib
import re
from collections.abc import Callable

from starlette.routing import compile_path

# Route templates as Gradio registers them (the path parameter is what it opens).
FILE_ROUTES = ("/gradio_api/file={path_or_url:path}", "/gradio_api/file/{path:path}")
URL_ROUTES = ("/gradio_api/proxy={url_path:path}",)

Holds = Callable[[object, str], bool]     # (request, artifact id) -> whether the caller holds it


def _patterns(templates: tuple[str, ...]) -> list[re.Pattern]:
    return [compile_path(template)[0] for template in templates]


def resolved(path: str) -> pathlib.Path:
    """`path` as Gradio opens it: relative to the working folder, symlinks and `..` resolved, and a
    leading `//` (which POSIX keeps apart from `/`) read as `/`."""
    if path.startswith("/"):
        path = "/" + path.lstrip("/")
    return pathlib.Path(os.path.realpath(path))


class FileGuard:
    """Decides whether a request may read the file its URL names.

    Args:
        blob_root: the folder of stored files (artifacts' blobs).
        gradio_folders: Gradio's upload and cache folders.
        holds: whether the request's caller holds the artifact with a given id.
    """

    def __init__(self, blob_root: str | os.PathLike, gradio_folders: tuple[str | os.PathLike, ...], holds: Holds):
        self.blob_root = resolved(str(blob_root))
        self.gradio_folders = tuple(resolved(str(folder)) for folder in gradio_folders)
        self.holds = holds
        self._file_routes = _patterns(FILE_ROUTES)
        self._url_routes = _patterns(URL_ROUTES)

    def named_file(self, url_path: str) -> str | None:
        """The file (or URL) a request for `url_path` (decoded, as in the ASGI scope) would be served;
        None when it is not a route that serves one."""
        for pattern in self._file_routes + self._url_routes:
            match = pattern.match(url_path)
            if match is not None:
                return next(iter(match.groupdict().values()))
        return None

    def may_read(self, request, url_path: str) -> bool:
        """Whether the caller of `request` may have what `url_path` serves (True for routes that
        serve no named file)."""
        named = self.named_file(url_path)
        if named is None:
            return True
        if any(pattern.match(url_path) for pattern in self._url_routes) or re.match(r"^[a-zA-Z][\w+.-]*:", named):
            return False
        try:
            path = resolved(named)
        except (OSError, ValueError):
            return False
        if path.is_relative_to(self.blob_root):
            return self.holds(request, path.name[:64])
        return any(path.is_relative_to(folder) for folder in self.gradio_folders)
