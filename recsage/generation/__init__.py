"""Text the product writes: PushGen push copy with a reward model, OneReason chains of thought."""
