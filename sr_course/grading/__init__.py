"""Instructors only (the student release leaves this folder out): the release of the student kit
and the autograder, stage by stage (the operating-system sandbox, the TODOs in it, the static scan,
the notebooks, the gradebook)."""
