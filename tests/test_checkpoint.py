import pytest
import torch

from imitgame import checkpoint


def test_atomic_save_round_trip(tmp_path):
    path = tmp_path / "ckpt.pt"
    checkpoint.save_atomic({"x": torch.arange(3)}, path)
    assert torch.equal(checkpoint.load(path)["x"], torch.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_failed_write_keeps_previous_checkpoint(tmp_path):
    path = tmp_path / "ckpt.pt"
    checkpoint.save_atomic({"step": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        checkpoint.save_atomic({"step": 2, "bad": Unpicklable()}, path)
    assert checkpoint.load(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]
