"""TagCF: LLM item tags and user roles, the role↔topic logic graph, graph features, role identification."""

from recsage.knowledge.tagcf.extract import ItemTagger, ItemTags, propose_tags
from recsage.knowledge.tagcf.graph import RoleGraph
from recsage.knowledge.tagcf.vocab import Tag, TagVocabulary, consolidate, seed_vocabulary

__all__ = ["ItemTagger", "ItemTags", "RoleGraph", "Tag", "TagVocabulary", "consolidate", "propose_tags", "seed_vocabulary"]
