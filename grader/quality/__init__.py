"""What we check in an essay's text before trusting its grade: the prompt-injection detector and
the recheck of suspect grades.
"""
