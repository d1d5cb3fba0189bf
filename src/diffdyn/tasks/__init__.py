"""Tasks that show what a differentiable memory buys.

Algorithmic sequence tasks (copy, repeat-copy, associative recall), two-hop queries and
pattern completion (Miconi et al. 2018), and
the runner that trains a sequence model on one and scores it per size (`diffdyn task`).
"""

from .algorithmic import (
    MemoryTask as MemoryTask,
    associative_recall_task as associative_recall_task,
    bit_error as bit_error,
    copy_task as copy_task,
    repeat_copy_task as repeat_copy_task,
)
from .pattern_completion import pattern_completion_task as pattern_completion_task
from .runner import (
    SEQUENCE_MODELS as SEQUENCE_MODELS,
    TASKS as TASKS,
    check_task as check_task,
    run_task as run_task,
    score_task as score_task,
    train_task as train_task,
)
from .two_hop import two_hop_batch as two_hop_batch, two_hop_vocab_size as two_hop_vocab_size
