"""Talking to the model: the prompt, one chat request and its reply, and which failures are worth
retrying.
"""
