"""What we check in an essay's text before trusting a grade: injection detector and recheck."""
