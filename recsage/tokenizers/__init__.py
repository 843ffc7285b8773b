"""Semantic-ID codebooks: item vectors to short code tuples, collisions, prefix index, metrics."""
