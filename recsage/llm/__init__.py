"""LLM runtime: backends behind one interface, structured output, cache, batch jobs, embeddings."""
