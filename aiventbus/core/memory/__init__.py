"""Distilled long-term memory: store and search (`store`), merge rules (`merge`), distillation (`distill`)."""

from aiventbus.core.memory.distill import Distiller
from aiventbus.core.memory.store import MemoryStore
from aiventbus.records.memory import Memory, MemoryIn, MemoryPatch

__all__ = ["Distiller", "Memory", "MemoryIn", "MemoryPatch", "MemoryStore"]
