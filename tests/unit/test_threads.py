"""A task's thread share (genaug.threads): torch and ONNX Runtime sessions follow the file
the local runner rewrites, and nothing changes where no runner manages the task."""

import torch

from genaug import threads
from genaug.onnx_runtime import OnnxForward


def _fresh(monkeypatch, path):
    monkeypatch.setenv(threads.SHARE_FILE_ENV, str(path))
    monkeypatch.setitem(threads._last, "read_at", -threads.POLL_S)


def test_torch_and_onnx_runtime_follow_the_share(tmp_path, monkeypatch):
    before = torch.get_num_threads()
    share = tmp_path / "share"
    share.write_text("1")
    _fresh(monkeypatch, share)
    try:
        net = torch.nn.Sequential(torch.nn.Linear(4, 3)).eval()
        forward = OnnxForward(net, [torch.zeros(2, 4)], ["x"])
        assert threads.follow() == 1 and torch.get_num_threads() == 1 and forward.threads == 1
        share.write_text("2")
        monkeypatch.setitem(threads._last, "read_at", -threads.POLL_S)  # as if POLL_S had passed
        out = forward(torch.ones(5, 4))
        assert forward.threads == 2 and threads.follow() == 2 and torch.get_num_threads() == 2
        assert torch.allclose(out, net(torch.ones(5, 4)).detach(), atol=1e-6)
    finally:
        torch.set_num_threads(before)


def test_without_a_runner_nothing_changes(monkeypatch):
    monkeypatch.delenv(threads.SHARE_FILE_ENV, raising=False)
    before = torch.get_num_threads()
    assert threads.share() is None and threads.follow() is None and torch.get_num_threads() == before
