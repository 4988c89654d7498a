"""``litexp`` with the checksums of the small fake datasets accepted: tests run it as a real subprocess
(``python -m tests.experiments.fit_on_fake_data fit ...``) on the files ``LITEXP_DATA_DIR`` holds."""

from __future__ import annotations

import sys

from datamodules import vision
from experiments.cli import main

if __name__ == "__main__":
    vision.FashionMNIST.content_md5 = {}
    vision.FashionMNIST.system_dirs = ()
    sys.exit(main(sys.argv[1:]))
