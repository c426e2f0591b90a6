"""
The file service: streamed, verified, atomic, resumable uploads and
downloads.  See docs/protocols/files.md for the protocol.
"""

from suite.files.contract import FileStore, OpenedFile, PartialUpload, Upload
from suite.files.memory import MemoryStore
from suite.files.factory import FileFactory
from suite.files.server import FileProtocol
from suite.files.storage import Storage
from suite.files.upload import DiskUpload
from suite.files.wire import StoredFile
from suite.files.wire import ErrorCode, FileError, check_name

__all__ = [
    "DiskUpload",
    "ErrorCode",
    "FileError",
    "FileFactory",
    "FileProtocol",
    "FileStore",
    "MemoryStore",
    "OpenedFile",
    "PartialUpload",
    "Storage",
    "StoredFile",
    "Upload",
    "check_name",
]
