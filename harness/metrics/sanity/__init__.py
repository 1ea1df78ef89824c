"""Sanity checks: does the explanation change when the model or the target does?"""
