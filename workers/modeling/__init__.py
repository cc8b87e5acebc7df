"""The model layer: the built-in style model, the base-model loader, prompting and generation.

Idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE`` unless set already):
on a CPU shared with other processes, spinning threads slow small-model training several times.
It takes effect only when this package is imported before torch.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
