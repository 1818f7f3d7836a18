"""`make run` / `make demo`: start the whole pipeline, show its live status, stop it cleanly."""
