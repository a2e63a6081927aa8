"""Monitoring: is the data the model meets now still like the data it was trained on?

batch.py reads and checks a batch of current data, reference.py finds the champion and its
training data, statistics.py holds the per-column measures, drift.py compares and decides,
report.py holds the verdict (its text and JSON), html_report.py draws it, and collect.py turns
the model server's logs into a batch.
SciPy and matplotlib (the `monitor` dependency group) are imported here only: the serving image
has neither.
"""
