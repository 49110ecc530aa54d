"""Evaluation of any model on the CLEAR sets: per-item records first, aggregates from them."""
