"""The in-memory limit: a dataset that does not fit is refused before anything is decoded."""

import pytest

from genaug.data import memory
from genaug.data.commands import main as data_main


def test_a_dataset_above_the_limit_is_refused_naming_both_numbers_and_a_size_that_fits():
    machine = 24 * 10**9  # 9.6 GB for one dataset
    memory.check("parts@abc", 780_000, 3, 64, memory=machine)  # 9.58 GB: fits
    with pytest.raises(memory.MemoryLimitError) as err:
        memory.check("parts@abc", 1_000_000, 3, 64, memory=machine)  # 12.3 GB, as the issue says
    message = str(err.value)
    assert "parts@abc: 1,000,000 images of 3x64x64 take 12.3 GB" in message
    assert "limit of 9.6 GB (40% of 24.0 GB)" in message and "32 px fits" in message


def test_the_limits_table_names_a_24_and_an_80_gb_machine(capsys):
    assert data_main(["limits"]) == 0
    table = capsys.readouterr().out
    assert "24 GB machine" in table and "80 GB machine" in table and "64x64 RGB" in table
    assert f"{memory.max_images(80 * 10**9, 3, 64):,}" in table and memory.max_images(80 * 10**9, 3, 64) == 2_604_166
