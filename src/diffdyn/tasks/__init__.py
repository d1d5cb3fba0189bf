"""Tasks that show what a differentiable memory buys.

Algorithmic sequence tasks (copy, repeat-copy, associative recall) and two-hop queries.
"""

from .algorithmic import (
    MemoryTask as MemoryTask,
    associative_recall_task as associative_recall_task,
    bit_error as bit_error,
    copy_task as copy_task,
    repeat_copy_task as repeat_copy_task,
)
from .two_hop import two_hop_batch as two_hop_batch, two_hop_vocab_size as two_hop_vocab_size
