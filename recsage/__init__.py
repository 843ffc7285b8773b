"""recsage: LLM understanding of content and users, turned into signals a recommender can use."""

__version__ = "0.1.0"
