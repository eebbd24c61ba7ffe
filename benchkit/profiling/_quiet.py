"""Imported first by the package: FLOP counting imports ``torch.utils.cpp_extension``, which logs "No CUDA runtime
is found" on a machine that has an ``nvcc`` but no GPU. That is a note about compiling extensions, unrelated to
counting, so a profile's output keeps only benchkit's own lines."""

import logging

logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
