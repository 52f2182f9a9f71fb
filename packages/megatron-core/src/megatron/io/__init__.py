"""Reading and writing data. Every installed source and storage backend is an attribute,
resolved through the plugin registry; ``open_storage`` opens a backend from a URL or object.
``BatchSource`` is the base class of batch sources, for plugins to subclass."""

from megatron.io.batch import Batch
from megatron.plugins.facade import registry_module
from megatron.storage import MemoryStorage, Storage, open_storage

__all__ = ["Batch", "BatchSource", "MemoryStorage", "Storage", "open_storage"]

__getattr__, __dir__ = registry_module(
    __name__, "source", globals(), exports={"BatchSource": "megatron.io.sources:BatchSource"}
)
