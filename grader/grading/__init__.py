"""Grading rules with no I/O: rubrics, the checks on an essay, the model's answer turned into a
grade, combining samples, and prices.
"""
