"""LLM-specific errors: transient ones are retried by the batch runner, the rest are not."""

from __future__ import annotations

from recsage.core.errors import RecsageError


class LLMError(RecsageError):
    """A call failed in a way retrying will not fix (bad model path, context overflow, 4xx)."""


class TransientLLMError(LLMError):
    """Worth retrying with backoff: timeouts, connection resets, HTTP 429/5xx."""


class ModelFileError(LLMError):
    """Weights missing, truncated or corrupted (size/hash mismatch)."""


class EngineError(LLMError):
    """A batch engine could not start or run: unreachable Ray address, a job that cannot be sent to workers."""
