"""`get_backend(name, **options)`: the one way components obtain a model."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from recsage.core.registry import Registry
from recsage.llm.base import LLMBackend
from recsage.llm.cache import CachedBackend, LLMCache

BACKENDS: Registry = Registry("LLM backend")


@dataclass(frozen=True)
class LLMConfig:
    """Overridable from CLI flags or env (RECSAGE_LLM_BACKEND, RECSAGE_LLM_MODEL, RECSAGE_LLM_BASE_URL)."""

    backend: str = "embedded"
    model: str | None = None  # embedded: default|small|<name>; openai/vllm: model name; llamacpp: GGUF path
    base_url: str | None = None
    json_mode: str = "json_schema"
    cache: bool = True
    cache_path: str | None = None
    n_ctx: int = 4096
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, **overrides: Any) -> LLMConfig:
        env = {
            "backend": os.environ.get("RECSAGE_LLM_BACKEND"),
            "model": os.environ.get("RECSAGE_LLM_MODEL"),
            "base_url": os.environ.get("RECSAGE_LLM_BASE_URL"),
        }
        merged = {k: v for k, v in env.items() if v} | {k: v for k, v in overrides.items() if v is not None}
        return cls(**merged)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@BACKENDS.register("embedded")
def _embedded(cfg: LLMConfig) -> LLMBackend:
    from recsage.llm.embedded import DEFAULT_MODEL, ensure_gguf, resolve_model
    from recsage.llm.llamacpp import LlamaCppBackend

    model = resolve_model(cfg.model or DEFAULT_MODEL)
    return LlamaCppBackend(ensure_gguf(model.name), n_ctx=cfg.n_ctx, model_name=model.name, **cfg.options)


@BACKENDS.register("llamacpp")
def _llamacpp(cfg: LLMConfig) -> LLMBackend:
    from recsage.llm.errors import LLMError
    from recsage.llm.llamacpp import LlamaCppBackend

    if not cfg.model:
        raise LLMError("the llamacpp backend needs --model PATH.gguf (or use backend 'embedded')")
    return LlamaCppBackend(cfg.model, n_ctx=cfg.n_ctx, **cfg.options)


@BACKENDS.register("openai")
def _openai(cfg: LLMConfig) -> LLMBackend:
    from recsage.llm.openai_http import OpenAICompatibleBackend

    return OpenAICompatibleBackend(cfg.base_url, cfg.model, json_mode=cfg.json_mode, **cfg.options)


@BACKENDS.register("transformers")
def _transformers(cfg: LLMConfig) -> LLMBackend:
    from recsage.llm.errors import LLMError
    from recsage.llm.transformers_backend import TransformersBackend

    if not cfg.model:
        raise LLMError("the transformers backend needs --model pointing at a local model directory")
    return TransformersBackend(cfg.model, **cfg.options)


@BACKENDS.register("vllm")
def _vllm(cfg: LLMConfig) -> LLMBackend:
    from recsage.llm.errors import LLMError
    from recsage.llm.vllm_backend import VLLMBackend

    if not cfg.model:
        raise LLMError("the vllm backend needs --model (a local model directory)")
    return VLLMBackend(cfg.model, **cfg.options)


def get_backend(name: str | None = None, *, config: LLMConfig | None = None, **overrides: Any) -> LLMBackend:
    """Builds a backend (wrapped in the SQLite cache unless `cache=False`)."""
    cfg = config or LLMConfig.from_env(backend=name, **overrides)
    backend = BACKENDS.get(cfg.backend)(cfg)
    if cfg.cache:
        backend = CachedBackend(backend, LLMCache(cfg.cache_path))
    return backend


class LazyBackend(LLMBackend):
    """A backend given as configuration, built (with its cache) on first use in the process using it.

    Ray workers receive a batch job's function pickled; a loaded llama.cpp model cannot travel,
    its `LLMConfig` can — so each actor builds one model of its own. Pickling drops a built backend.
    """

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self._backend: LLMBackend | None = None

    def built(self) -> LLMBackend:
        if self._backend is None:
            self._backend = get_backend(config=self.config)
        return self._backend

    def __getstate__(self) -> dict[str, Any]:
        return {"config": self.config, "_backend": None}

    @property
    def name(self) -> str:  # type: ignore[override]
        return self._backend.name if self._backend is not None else self.config.backend

    @property
    def supports_json_schema(self) -> bool:  # type: ignore[override]
        return self.built().supports_json_schema

    @property
    def max_concurrency(self) -> int:  # type: ignore[override]
        return self.built().max_concurrency

    @property
    def model_id(self) -> str:
        """Known without loading the model for the embedded, llamacpp and server backends."""
        cfg = self.config
        if self._backend is None:
            if cfg.backend == "embedded":
                from recsage.llm.embedded import DEFAULT_MODEL, resolve_model

                return resolve_model(cfg.model or DEFAULT_MODEL).name
            if cfg.backend == "llamacpp" and cfg.model:
                return Path(cfg.model).stem
            if cfg.backend == "openai" and cfg.model:
                return cfg.model
        return self.built().model_id

    def chat(self, conversations, params=None, json_schema=None):  # type: ignore[no-untyped-def]
        return self.built().chat(conversations, params, json_schema)

    def info(self) -> dict[str, Any]:
        return self.built().info()

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None


def backend_for(engine: Any, llm: LLMConfig | None = None) -> LLMBackend:
    """The backend a pipeline hands its component: loaded here for the local engine, configuration
    for the ray engine (each actor loads its own, see `LazyBackend`)."""
    cfg = llm or LLMConfig.from_env()
    if engine is not None and getattr(engine, "engine", "local") == "ray":
        return LazyBackend(cfg)
    return get_backend(config=cfg)


def stage_for(engine: Any, llm: LLMConfig | None = None) -> Any:
    """Ray's own LLM stage for a job on the ray engine whose backend is an engine of its own:
    `vllm` → the vLLM engine stage (`actors` replicas, `gpus_per_actor` GPUs each for tensor
    parallelism), `openai` → the HTTP stage posting to `base_url` (`actors` request actors).
    None otherwise: the job then runs one recsage backend per actor."""
    cfg = llm or LLMConfig.from_env()
    if engine is None or getattr(engine, "engine", "local") != "ray" or cfg.backend not in ("vllm", "openai"):
        return None
    if cfg.backend == "vllm":
        from recsage.llm.errors import LLMError
        from recsage.llm.ray_vllm import VLLMProcessorSettings, VLLMStage

        if not cfg.model:
            raise LLMError("the vllm backend needs --model (a local model folder the cluster's nodes can read)")
        return VLLMStage(VLLMProcessorSettings(model_source=cfg.model, replicas=engine.actors,
                                               tensor_parallel_size=max(1, int(engine.gpus_per_actor or 1)),
                                               max_model_len=cfg.n_ctx))
    from recsage.llm.ray_processor import HttpStage

    return HttpStage(cfg.base_url or os.environ.get("RECSAGE_LLM_BASE_URL") or "", cfg.model or "default", json_mode=cfg.json_mode,
                     api_key=os.environ.get("RECSAGE_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY"),
                     concurrency=engine.actors)
