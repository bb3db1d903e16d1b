from __future__ import annotations

import json

import torch

from muselab.train import state as st


def test_flatten_round_trip_of_an_optimizer_state() -> None:
    p = torch.nn.Parameter(torch.randn(3, 2))
    opt = torch.optim.Adam([p], lr=1e-3, betas=(0.5, 0.9))
    p.grad = torch.randn(3, 2)
    opt.step()
    tree = {"opt": opt.state_dict(), "t": (1, 2.5, "x", None, True),
            "g": torch.Generator().get_state()}
    tensors: dict[str, torch.Tensor] = {}
    meta = json.loads(st.dumps(st.flatten(tree, "s", tensors)))
    back = st.unflatten(meta, tensors)
    assert back["t"] == (1, 2.5, "x", None, True)
    assert torch.equal(back["g"], tree["g"])
    assert list(back["opt"]["state"].keys()) == [0]  # int keys survive
    assert torch.equal(back["opt"]["state"][0]["exp_avg"], tree["opt"]["state"][0]["exp_avg"])
    assert back["opt"]["param_groups"][0]["betas"] == (0.5, 0.9)
    opt2 = torch.optim.Adam([torch.nn.Parameter(torch.zeros(3, 2))])
    opt2.load_state_dict(back["opt"])
    assert opt2.param_groups[0]["lr"] == 1e-3
