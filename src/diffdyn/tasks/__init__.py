"""Tasks that show what a differentiable memory buys.

Algorithmic sequence tasks (copy, repeat-copy, associative recall) and two-hop queries.
"""
