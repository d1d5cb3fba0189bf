"""Two-hop query task: a question that one memory lookup cannot answer.

A story holds ``chains`` two-link chains "item IN box" and "room HOLDS box", shuffled together
(``2 * chains`` sentences of 3 tokens: ``[subject, relation, object]``). Items and boxes are
distinct within a story; rooms are drawn at random. The question ``[WHERE, item, 0]`` asks
where the item ultimately is; the answer is the room of the item's box.
The first lookup finds "item IN box" but only tells the box; a second lookup keyed by that box
finds "room HOLDS box" (the box sits in the same word position in both facts, so a
position-encoded memory can match the box read in the first hop against the second fact). With
a single hop a model can only guess among the story's rooms.

Vocabulary (fixed): 0 = padding, 1 = ``IN``, 2 = ``HOLDS``, 3 = ``WHERE``, then ``num_items``
item tokens, ``num_boxes`` box tokens and ``num_rooms`` room tokens; see `two_hop_vocab_size`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Int, PRNGKeyArray

from diffdyn.errors import DiffdynError

__all__ = ["HOLDS", "IN", "WHERE", "two_hop_batch", "two_hop_vocab_size"]

IN = 1
HOLDS = 2
WHERE = 3


def two_hop_vocab_size(num_items: int = 8, num_boxes: int = 8, num_rooms: int = 4) -> int:
    """Number of token ids the two-hop task uses (padding, IN, HOLDS, WHERE and the entities)."""
    return 4 + num_items + num_boxes + num_rooms


def two_hop_batch(
    key: PRNGKeyArray,
    batch: int,
    *,
    chains: int = 3,
    num_items: int = 8,
    num_boxes: int = 8,
    num_rooms: int = 4,
) -> tuple[Int[Array, "B S 3"], Int[Array, "B 3"], Int[Array, " B"]]:
    """Sample ``batch`` two-hop stories.

    Returns ``(stories [B, 2*chains, 3], questions [B, 3], answers [B])``.

    **Example:**

    >>> import jax
    >>> stories, questions, answers = two_hop_batch(jax.random.key(0), 4)
    >>> stories.shape, questions.shape, answers.shape
    ((4, 6, 3), (4, 3), (4,))
    """
    if batch < 1 or chains < 1 or num_rooms < 1:
        raise DiffdynError(
            f"two_hop_batch needs batch, chains and num_rooms >= 1, got {batch}, {chains}, "
            f"{num_rooms}; pass positive sizes."
        )
    if chains > min(num_items, num_boxes):
        raise DiffdynError(
            f"two_hop_batch with {chains} chains needs at least {chains} items and boxes, got "
            f"{num_items} and {num_boxes}; lower chains or raise num_items/num_boxes."
        )
    item0, box0 = 4, 4 + num_items
    room0 = box0 + num_boxes

    def one(k):
        k_item, k_box, k_room, k_order, k_query = jax.random.split(k, 5)
        items = item0 + jax.random.permutation(k_item, num_items)[:chains]
        boxes = box0 + jax.random.permutation(k_box, num_boxes)[:chains]
        rooms = room0 + jax.random.randint(k_room, (chains,), 0, num_rooms)
        ins = jnp.full((chains,), IN)
        facts = jnp.concatenate(
            [
                jnp.stack([items, ins, boxes], -1),
                jnp.stack([rooms, jnp.full((chains,), HOLDS), boxes], -1),
            ]
        )
        story = facts[jax.random.permutation(k_order, 2 * chains)]
        q = jax.random.randint(k_query, (), 0, chains)
        question = jnp.array([WHERE, 0, 0]).at[1].set(items[q])
        return story, question, rooms[q]

    return jax.vmap(one)(jax.random.split(key, batch))
