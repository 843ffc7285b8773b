"""LCU: LLM comment understanding (teacher labels → student) for comment-section engagement."""

from recsage.knowledge.lcu.annotate import CommentAnnotator, annotate_comments_batch, read_labels
from recsage.knowledge.lcu.labels import LabelLayout
from recsage.knowledge.lcu.student import CommentLabelStudent

__all__ = ["CommentAnnotator", "CommentLabelStudent", "LabelLayout", "annotate_comments_batch", "read_labels"]
