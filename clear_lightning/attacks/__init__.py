"""Robustness attacks: does forgotten knowledge come back? (issue 14)"""
