"""`make bench` / `python -m bench`: the workbench measured side by side with plain RQ in the same run."""
