"""Facts of a chain, its faithful template wording, and the verifier for LLM wording.

The LLM only puts a derived chain into words; the verifier holds the words to the structure.
Sentence by sentence it checks:
- quoted titles ("…") are items of this history (or the target, in hindsight text);
- a number counting items ("3 items", "two purchases") is a count the chain has; any other
  number appears in the facts the LLM was given;
- Semantic-ID tokens (`<a_12>`) belong to the chain;
- an interest (catalogue category) it names is one of this chain's interests;
- a dynamics word (rising, long-term, periodic, one-off) is one the chain assigns.
A failing sentence is dropped (repair); a part left empty gets the template sentence; text where
most sentences fail is rejected. Verified, repaired and rejected are counted by the caller.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from recsage.generation.onereason.chains import DYNAMICS, NEW_INTEREST, Chain

PARTS = ("induction", "abduction", "deduction")
NUMBER_WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                                            "sixteen seventeen eighteen nineteen twenty".split())}
COUNTED = r"(?:items?|products?|purchases?|times?|movies?|films?|ratings?|entries|things|pieces|ones?)"
_QUOTE = re.compile(r"[\"“”]([^\"“”]{3,}?)[\"“”]")
_SID = re.compile(r"<[a-z]_\d+>")
_COUNT = re.compile(rf"\b(\d+|{'|'.join(NUMBER_WORDS)})\s+(?:\w+\s+)?{COUNTED}\b", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", s.lower()).strip()


def chain_facts(chain: Chain, titles: Mapping[int, str], *, hindsight: bool = False, title_chars: int = 70) -> str:
    """What the verbaliser is told — nothing else may appear in its text."""
    lines = [f"History: {len(chain.history)} items, oldest to newest."]
    for i in chain.interests:
        examples = "; ".join(f'"{titles[x][:title_chars]}"' for x in i.example_items)
        lines.append(f"Interest {i.slot + 1}: {i.name} — {i.count} of the {len(chain.history)} items, {i.dynamics}. Examples: {examples}.")
    if chain.role:
        lines.append(f"Role from the profile: {chain.role}.")
    chosen = chain.chosen
    lines.append("Next item most likely serves: " + (f"interest {chosen.slot + 1} ({chosen.name})." if chosen else "a new interest, none of the above."))
    if hindsight and chain.target is not None:
        lines.append(f'The actual next item (hindsight): "{titles[chain.target][:title_chars]}".')
    return "\n".join(lines)


def template_text(chain: Chain, titles: Mapping[int, str], *, title_chars: int = 50) -> dict[str, str]:
    """A faithful wording of every level, used when there is no LLM text or to fill a repaired part."""
    n = len(chain.history)
    names = [f"{i.name} ({i.count} of {n} items)" for i in chain.interests]
    induction = f"The {n} items group into {len(chain.interests)} interests: " + "; ".join(names) + "."
    abduction = " ".join(f"{i.name} is {i.dynamics}, last seen at position {i.positions[-1] + 1} of {n}." for i in chain.interests)
    if chain.role:
        abduction += f" The profile says {chain.role}."
    chosen = chain.chosen
    if chosen is None:
        deduction = "The next item most likely starts a new interest."
    else:
        deduction = f'The next item most likely serves {chosen.name}, as "{titles[chosen.example_items[0]][:title_chars]}" did.'
    return {"induction": induction, "abduction": abduction, "deduction": deduction}


@dataclass
class Verification:
    status: str  # verified | repaired | rejected
    text: dict[str, str]  # the text to keep (repaired where needed; template when rejected)
    problems: list[dict[str, str]] = field(default_factory=list)
    sentences: int = 0

    @property
    def ok(self) -> bool:
        return self.status != "rejected"


class ChainVerifier:
    """`names`: every interest name the vocabulary has (a name outside the chain is a fabricated interest)."""

    def __init__(self, names: Sequence[str], titles: Mapping[int, str]) -> None:
        self.names = [n for n in names if len(_norm(n)) >= 3]
        self.titles = titles

    def _allowed(self, chain: Chain, hindsight: bool) -> tuple[set[int], set[str], list[str], set[str], str]:
        n = len(chain.history)
        counts = {n, len(chain.interests)} | {i.count for i in chain.interests}
        items = list(chain.history) + ([chain.target] if hindsight and chain.target is not None else [])
        titles = [_norm(self.titles[i]) for i in items]
        names = {_norm(i.name) for i in chain.interests}
        sids = set(_SID.findall(" ".join(i.name for i in chain.interests)))
        facts = chain_facts(chain, self.titles, hindsight=hindsight) + " " + " ".join(template_text(chain, self.titles).values())
        return counts, sids, titles, names, facts

    def check_sentence(self, sentence: str, chain: Chain, hindsight: bool = False, allowed: tuple | None = None) -> str | None:
        """The reason the sentence is not supported by the chain, or None. `allowed`: the chain's
        `_allowed(...)`, when the caller checks many sentences of one chain."""
        counts, sids, titles, names, facts = allowed or self._allowed(chain, hindsight)
        for q in _QUOTE.findall(sentence):
            nq = _norm(q)
            if nq and not any(nq in t or (len(t) >= 8 and t in nq) or _overlap(nq, t) >= 0.6 for t in titles) and nq not in names:
                return f'quotes "{q[:50]}", which is not an item of this history'
        bare = _QUOTE.sub(" ", sentence)
        for tok in _SID.findall(bare):
            if tok not in sids:
                return f"cites the semantic ID {tok}, which is not in the chain"
        bare = _SID.sub(" ", bare)
        for m in _COUNT.finditer(bare):
            raw = m.group(1).lower()
            value = NUMBER_WORDS.get(raw, int(raw) if raw.isdigit() else -1)
            if value not in counts:
                return f'says "{m.group(0)}", but the chain counts {sorted(counts)}'
        fact_numbers = set(_NUMBER.findall(facts))
        for num in _NUMBER.findall(_COUNT.sub(" ", bare)):
            if num not in fact_numbers:
                return f"mentions the number {num}, which is not in the facts"
        low = _norm(bare)
        for name in self.names:
            nn = _norm(name)
            if re.search(rf"\b{re.escape(nn)}\b", low) and nn not in names and not any(nn in x for x in names):
                return f"names the interest {name!r}, which this history does not show"
        have = {i.dynamics for i in chain.interests}
        for word in DYNAMICS:
            if re.search(rf"\b{re.escape(word.replace('-', ' '))}\b", low) and word not in have:
                return f"calls an interest {word}, which no interest of this chain is"
        return None

    def verify(self, text: Mapping[str, str], chain: Chain, *, hindsight: bool = False) -> Verification:
        template = template_text(chain, self.titles)
        allowed = self._allowed(chain, hindsight)
        kept: dict[str, str] = {}
        problems: list[dict[str, str]] = []
        total = 0
        for part in PARTS:
            sentences = [s.strip() for s in _SENTENCE.split(str(text.get(part) or "").strip()) if s.strip()]
            good = []
            for s in sentences:
                total += 1
                reason = self.check_sentence(s, chain, hindsight, allowed)
                if reason:
                    problems.append({"part": part, "sentence": s[:200], "reason": reason})
                else:
                    good.append(s)
            kept[part] = " ".join(good) if good else template[part]
            if not sentences:
                problems.append({"part": part, "sentence": "", "reason": "empty"})
        failed = len([p for p in problems if p["reason"] != "empty"])
        if total == 0 or failed * 2 > total:
            return Verification("rejected", template, problems, total)
        return Verification("verified" if not problems else "repaired", kept, problems, total)


def _overlap(a: str, b: str) -> float:
    sa, sb = set(a.split()), set(b.split())
    return len(sa & sb) / max(1, len(sa))


def deduction_claim(chain: Chain) -> str:
    """The chain's deduction in one phrase (for tables and explanations)."""
    return "a new interest" if chain.chosen_slot == NEW_INTEREST else chain.interests[chain.chosen_slot].name
