"""Step definitions for the runbooks in features/: one line of intent each, over harness/."""
