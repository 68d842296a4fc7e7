"""The store: packages, plans, approvals, applies, locks and the audit log, behind one protocol.

`open_store(url)` picks the backend from the URL: a directory path (default `.tfreview`) or `s3://bucket/prefix`.
The workflow never asks which one it has.
"""
from __future__ import annotations

from tfreview.store.base import Store, get_json, put_json

__all__ = ["Store", "open_store", "get_json", "put_json"]


def open_store(url: str) -> Store:
    """Open the store at `url` (a local directory, or s3://bucket/prefix)."""
    if url.startswith("s3://"):
        from tfreview.store.s3 import S3Store  # lazy: boto3 is heavy

        return S3Store.from_url(url)
    from tfreview.store.local import LocalStore

    return LocalStore(url)
