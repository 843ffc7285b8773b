"""LLM runtime: backends behind one interface, structured output, cache, batch jobs, embeddings.

Nothing else in recsage talks to a model directly; components take an `LLMBackend`.
"""

from recsage.llm.base import LLMBackend
from recsage.llm.batch import BatchJob, BatchSummary, EngineConfig
from recsage.llm.cache import CachedBackend, LLMCache
from recsage.llm.embed import Embedder, FaissIndex
from recsage.llm.errors import EngineError, LLMError, ModelFileError, TransientLLMError
from recsage.llm.prompts import PromptTemplate, delimit
from recsage.llm.registry import BACKENDS, LazyBackend, LLMConfig, backend_for, get_backend
from recsage.llm.scripted import ScriptedBackend
from recsage.llm.structured import StructuredResult, extract_json, structured
from recsage.llm.types import Completion, GenerationParams, Message

__all__ = [
    "BACKENDS", "BatchJob", "BatchSummary", "CachedBackend", "Completion", "Embedder", "EngineConfig", "EngineError", "FaissIndex",
    "GenerationParams", "LazyBackend", "LLMBackend", "LLMCache", "LLMConfig", "LLMError", "Message", "ModelFileError", "PromptTemplate", "ScriptedBackend",
    "StructuredResult", "TransientLLMError", "backend_for", "delimit", "extract_json", "get_backend", "structured",
]
