"""LLM fixtures live in tests/conftest.py (shared with knowledge/ and generation/ tests)."""
