"""Models, losses and training loops (torch only, no Qt)."""
