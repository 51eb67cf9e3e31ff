"""Training: the Trainer around the student's steps, what it builds from the config, checkpoints
and exact resume, and the run guard (lock, Ctrl-C, NaN). The Trainer is the `t` the student's steps
receive (the step contract: sr_course/contract.py)."""
