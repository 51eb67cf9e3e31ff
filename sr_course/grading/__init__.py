"""Instructors only (the student release leaves this folder out): the release of the student kit
and the autograder, stage by stage (the operating-system sandbox, the TODOs in it, the static scan,
the notebooks, the points, the gradebook), and the ways out to where courses grade (Gradescope and
PrairieLearn results, the Gradescope bundle, LMS imports, feedback pages, the similarity check)."""
