"""Peewee models and database setup, blob stores, and artifact writing (metadata, hashing, lineage)."""
from storage.blobs import BlobStore, LocalBlobStore, open_blob_store
from storage.db import database, open_database
from storage.models import FINISHED, Artifact, Job, Lineage, User

__all__ = ["Artifact", "BlobStore", "FINISHED", "Job", "Lineage", "LocalBlobStore", "User", "database",
           "open_blob_store", "open_database"]
