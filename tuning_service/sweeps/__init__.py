"""Layer orchestration: whole sweeps (run, resume, submit, schedule, refit, and read them back)."""
