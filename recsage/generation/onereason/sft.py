"""SFT chat records for LLM recommenders: perception (SID ↔ text) and reasoning (history → think → SID).

Record shape (one JSON object per line; the same rows as Parquet):
`{"messages": [{"role": "system"|"user"|"assistant", "content": …}], "metadata": {…}}`.
SIDs are rendered as the codebook renders them (`<a_12><b_3><c_201>`). As in OneRec-Think's data,
a reasoning prompt lists the purchased items as SID + title + categories and the answer is
`<think>…</think>` followed by the target SID. Each reasoning record says where its thought came
from (`text_source`: llm-verified | llm-repaired | template) and that it was derived knowing the
target (`hindsight`), so nobody evaluates on it by mistake.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from recsage.generation.onereason.chains import CHAIN_VERSION, Chain
from recsage.generation.onereason.verify import PARTS, template_text

SYSTEM = "You are a recommender. Items are named by semantic IDs; answer with semantic IDs or titles as asked."


def _item_line(item: Mapping[str, Any], sid: str, title_chars: int = 80) -> str:
    cats = [str(c) for c in (item.get("categories") if item.get("categories") is not None else [])][-2:]
    return f"{sid} {str(item.get('title') or '')[:title_chars]}" + (f" ({' / '.join(cats)})" if cats else "")


def perception_records(items: pd.DataFrame, sid_text: Sequence[str], *, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """SID → title and title → SID for each item (the grounding OneReason's perception stage trains)."""
    rows = items.sort_values("item_id").to_dict("records")[: limit if limit is not None else None]
    for it in rows:
        sid, title = sid_text[int(it["item_id"])], str(it.get("title") or "")
        if not title.strip():
            continue
        meta = {"task": "sid_to_title", "item_id": str(it["raw_id"])}
        yield {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"Which item is {sid}? Give its title and categories."},
                            {"role": "assistant", "content": _item_line(it, "").strip()}], "metadata": meta}
        yield {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"What is the semantic ID of this item: {title[:120]}"},
                            {"role": "assistant", "content": sid}], "metadata": {**meta, "task": "title_to_sid"}}


def reasoning_records(chains: Sequence[Chain], items: pd.DataFrame, sid_text: Sequence[str], user_raw_ids: Mapping[int, str],
                      texts: Mapping[int, dict[str, Any]] | None = None) -> Iterator[dict[str, Any]]:
    """History (SID + title + categories) → `<think>` chain text `</think>` + target SID.
    `texts`: verbalised chains by user id (`status`, `text`); template wording otherwise."""
    by_id = {int(r["item_id"]): r for r in items.to_dict("records")}
    titles = {i: str(r.get("title") or "") for i, r in by_id.items()}
    for c in chains:
        if c.target is None:
            continue
        done = (texts or {}).get(c.user_id)
        if done is not None and done.get("status") in ("verified", "repaired"):
            text, source = done["text"], f"llm-{done['status']}"
        else:
            text, source = template_text(c, titles), "template"
        listing = "\n".join(_item_line(by_id[i], sid_text[i]) for i in c.history)
        think = " ".join(str(text[p]) for p in PARTS)
        yield {"messages": [{"role": "system", "content": SYSTEM},
                            {"role": "user", "content": f"The user bought, oldest to newest:\n{listing}\nWhich item comes next? Think, then answer with its semantic ID."},
                            {"role": "assistant", "content": f"<think>{think}</think>{sid_text[c.target]}"}],
               "metadata": {"task": "next_item_cot", "user_id": str(user_raw_ids.get(c.user_id, c.user_id)), "hindsight": True,
                            "text_source": source, "chain_version": CHAIN_VERSION, "target_item": str(by_id[c.target]["raw_id"])}}


def write_sft(records: Iterator[dict[str, Any]], out: str | Path) -> dict[str, Any]:
    """`out/sft.jsonl` + `out/sft.parquet` (metadata kept as a JSON string column in Parquet)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tasks: Counter = Counter()
    sources: Counter = Counter()
    chars, rows = 0, []
    with open(out / "sft.jsonl", "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
            tasks[r["metadata"]["task"]] += 1
            if "text_source" in r["metadata"]:
                sources[r["metadata"]["text_source"]] += 1
            chars += sum(len(m["content"]) for m in r["messages"])
            rows.append({"messages": r["messages"], "metadata": json.dumps(r["metadata"])})
    pd.DataFrame(rows).to_parquet(out / "sft.parquet", index=False)
    n = sum(tasks.values())
    stats = {"records": n, "by_task": dict(tasks), "reasoning_text_sources": dict(sources), "mean_chars": round(chars / max(n, 1), 1),
             "files": ["sft.jsonl", "sft.parquet"]}
    (out / "sft_meta.json").write_text(json.dumps(stats, indent=2))
    return stats
