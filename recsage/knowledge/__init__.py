"""Signals about items and users from LLM understanding: TagCF tags/roles/logic graph, LCU comment labels."""
