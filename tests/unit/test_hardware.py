"""genaug.hardware: the accelerator report and the bf16 throughput checks, on this CPU."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from genaug import hardware


@pytest.fixture(autouse=True)
def on_the_cpu(monkeypatch):
    monkeypatch.setenv("GENAUG_DEVICE", "cpu")


def _counted(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def test_matmul_counts_the_flops_torch_counts_and_divides_by_its_time():
    t = hardware.matmul(n=48, calls=3)
    a = torch.randn(48, 48, dtype=torch.bfloat16)
    assert t.flops == _counted(lambda: a @ a)
    assert (t.op, t.device, t.dtype, t.calls, t.shape) == ("matmul", "cpu", "bfloat16", 3, "[48, 48] @ [48, 48]")
    assert t.seconds > 0 and t.tflops == pytest.approx(t.flops * 3 / t.seconds / 1e12)
    assert t.line().startswith("matmul [48, 48] @ [48, 48] bfloat16 on cpu: ")


def test_conv_counts_the_flops_torch_counts():
    t = hardware.conv2d(batch=2, channels=8, side=10, kernel=3, calls=2)
    conv = torch.nn.Conv2d(8, 8, 3, padding=1, bias=False).to(torch.bfloat16)
    x = torch.randn(2, 8, 10, 10, dtype=torch.bfloat16)
    assert t.flops == _counted(lambda: conv(x))
    assert (t.op, t.device, t.shape) == ("conv2d", "cpu", "[2, 8, 10, 10] * 3x3")


def test_the_sizes_default_to_the_device_s():
    assert hardware.matmul(calls=1).shape == f"[{hardware.MATMUL_N['cpu']}, {hardware.MATMUL_N['cpu']}] @ " \
                                             f"[{hardware.MATMUL_N['cpu']}, {hardware.MATMUL_N['cpu']}]"


def test_the_report_says_it_is_the_cpu():
    info = hardware.accelerator()
    assert info["device"] == "cpu" and info["count"] >= 1 and info["memory_gib"] is None
    assert info["torch"] == torch.__version__ and info["capability"] is None
