"""Ray Data's own vLLM processor (`ray.data.llm`) for GPU clusters.

On a GPU cluster the fastest path is not one recsage backend per actor but Ray's vLLM stage:
continuous batching inside each replica, chat template and tokenisation as separate stages. This
module maps recsage's pieces onto that processor: a component's `PromptTask` gives the messages
and the output schema, which becomes vLLM structured output (`StructuredOutputsParams(json=…)`;
the old `guided_*` sampling fields were removed in vLLM 0.12); `ray_processor` runs the task
(expand → this stage → the task's own parse and validation) with the batch job's resume rules.

vLLM needs a GPU and is not installed on CPU machines: building the configuration and the
processor works without it (tested), running it needs a cluster. See README "Scaling".
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from recsage.core.errors import InvalidInputError
from recsage.llm.errors import EngineError
from recsage.llm.tasks import ChatRequest


@dataclass(frozen=True)
class VLLMProcessorSettings:
    """One vLLM replica per `replicas`, each on `tensor_parallel_size` GPUs; `batch_size` rows per call."""

    model_source: str  # a local model folder (or a hub id where the hub is reachable)
    replicas: int = 1
    batch_size: int = 32
    tensor_parallel_size: int = 1
    max_model_len: int = 4096
    gpu_memory_utilization: float = 0.9
    accelerator_type: str | None = None  # e.g. "L4", "A100"

    def __post_init__(self) -> None:
        if not self.model_source:
            raise InvalidInputError("the vLLM processor needs a model (a local folder with config.json and weights)", field="model")
        for name in ("replicas", "batch_size", "tensor_parallel_size", "max_model_len"):
            if getattr(self, name) < 1:
                raise InvalidInputError(f"{name} must be at least 1, got {getattr(self, name)}", field=name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sampling_params(max_tokens: int, temperature: float, json_schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """Per-row sampling parameters as Ray's vLLM stage reads them. The schema travels as a JSON
    string: a nested dict would become an Arrow struct column whose shape differs row to row."""
    params: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature}
    if json_schema is not None:
        params["structured_outputs"] = {"json": json.dumps(json_schema, sort_keys=True)}
    return params


def vllm_processor_config(settings: VLLMProcessorSettings) -> Any:
    try:
        from ray.data.llm import vLLMEngineProcessorConfig
    except ImportError as e:  # pragma: no cover - the scale extra is part of make install
        raise EngineError("the vLLM processor needs Ray Data: pip install 'recsage[scale]'") from e
    return vLLMEngineProcessorConfig(
        model_source=settings.model_source,
        engine_kwargs={
            "max_model_len": settings.max_model_len,
            "tensor_parallel_size": settings.tensor_parallel_size,
            "gpu_memory_utilization": settings.gpu_memory_utilization,
            "enable_chunked_prefill": True,
        },
        concurrency=settings.replicas,
        batch_size=settings.batch_size,
        accelerator_type=settings.accelerator_type,
    )


class VLLMStage:
    """Ray's vLLM engine stage as a recsage generation stage (see `ray_processor`): chat template →
    tokenize → vLLM (continuous batching, one replica per `replicas`) → detokenize."""

    kind = "vllm"

    def __init__(self, settings: VLLMProcessorSettings) -> None:
        self.settings = settings

    def config(self) -> Any:
        return vllm_processor_config(self.settings)

    def check(self, cluster_resources: dict[str, float]) -> None:
        """Each replica's actor asks Ray for its GPUs: on a cluster without them it would wait forever."""
        s = self.settings
        wanted, have = s.replicas * s.tensor_parallel_size, float(cluster_resources.get("GPU", 0))
        if wanted > have:
            raise EngineError(f"Ray's vLLM stage needs {s.replicas} replicas x {s.tensor_parallel_size} GPUs = {wanted} GPUs, but the Ray "
                              f"cluster has {have:g}: run on a GPU cluster, lower --actors / --gpus-per-actor, or use --backend openai "
                              "with a running server")

    def row(self, request: ChatRequest) -> dict[str, Any]:
        p = request.params
        return {"messages": request.messages,
                "sampling_params": sampling_params(p.max_tokens, p.temperature, request.json_schema)}

    @staticmethod
    def text(row: dict[str, Any]) -> str:
        return str(row["generated_text"])

    def describe(self) -> dict[str, Any]:
        return {"stage": self.kind, **self.settings.to_dict()}
