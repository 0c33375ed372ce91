"""Test-only: let torchvision accept small CIFAR-10 fixture files in pipeline subprocesses.

torchvision checks each file of the real archive against its published md5, so a fixture
in the real pickled format fails that check. When GENAUG_TEST_CIFAR_MD5 names a JSON file
of {file name: md5}, the checks use the fixture's sums instead. Imported at start-up by
every Python process whose PYTHONPATH holds this folder; a no-op otherwise.
"""

import json
import os

_path = os.environ.get("GENAUG_TEST_CIFAR_MD5")
if _path:
    import torchvision.datasets as tvd

    _md5 = json.loads(open(_path).read())
    tvd.CIFAR10.train_list = [[f"data_batch_{i}", _md5[f"data_batch_{i}"]] for i in range(1, 6)]
    tvd.CIFAR10.test_list = [["test_batch", _md5["test_batch"]]]
    tvd.CIFAR10.meta = {"filename": "batches.meta", "key": "label_names", "md5": _md5["batches.meta"]}
