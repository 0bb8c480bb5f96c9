"""Coverage-guided fuzzing of fxplain's readers of untrusted files (see targets.py and run.py)."""
