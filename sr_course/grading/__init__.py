"""Instructors only (the student release leaves this folder out): the release of the student kit
and the autograder, stage by stage (the TODOs in a sandbox, the static scan, the notebooks, the
gradebook)."""
