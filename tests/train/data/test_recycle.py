"""Recycled CPU batch memory: written again only once no tensor, view, array or saved
activation holds it."""

import gc

import numpy as np
import torch

from brickwork.train.data.recycle import Recycler


def test_memory_is_used_again_once_nothing_holds_it() -> None:
    recycler = Recycler()
    first = recycler.empty((2, 3))
    where = first.data_ptr()
    del first
    gc.collect()
    again = recycler.empty((2, 3))
    assert again.data_ptr() == where
    assert again.shape == (2, 3)
    assert again.dtype == torch.float32
    assert again.is_contiguous()


def test_a_view_or_an_array_of_a_tensor_keeps_its_memory_from_later_tensors() -> None:
    recycler = Recycler(keep=2)
    tensor = recycler.empty((4,)).fill_(1)
    view = tensor[1:]
    array = recycler.empty((4,)).fill_(2).numpy()
    del tensor
    gc.collect()
    for value in range(3, 8):  # more tensors than the recycler keeps
        recycler.empty((4,)).fill_(value)
    assert view.tolist() == [1, 1, 1]
    assert array.tolist() == [2, 2, 2, 2]


def test_an_activation_saved_for_backward_keeps_its_memory() -> None:
    recycler = Recycler(keep=1)
    x = recycler.empty((3,))
    x.copy_(torch.tensor([1.0, 2.0, 3.0]))
    weight = torch.ones(3, requires_grad=True)
    loss = (x * weight).sum()  # the product saves x for the weight's gradient
    del x
    gc.collect()
    recycler.empty((3,)).fill_(9)
    loss.backward()
    assert weight.grad is not None
    assert weight.grad.tolist() == [1.0, 2.0, 3.0]


def test_a_block_of_another_shape_gives_way_and_a_new_shape_is_served() -> None:
    recycler = Recycler(keep=1)
    assert recycler.empty((2, 2)).shape == (2, 2)
    last = recycler.empty((1, 2))
    assert last.shape == (1, 2)
    np.testing.assert_array_equal(last.fill_(4).numpy(), [[4, 4]])
