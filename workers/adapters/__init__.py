"""The torch side of per-user LoRA adapters and preference vectors: fit, evaluate, store, mix.

Importing it (before torch) makes idle OpenMP threads sleep instead of spinning, as
``workers.modeling`` does: on a shared CPU, spinning threads slow small-model fits several-fold.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
