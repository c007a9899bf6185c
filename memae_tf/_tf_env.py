"""TensorFlow process settings that must be made before TensorFlow is imported.

TF 2.21's oneDNN CPU kernels corrupt the heap on some of this package's
convolutions (seen as aborts, segfaults and "could not set native handle of a
memory object" errors during training on AVX-512 CPUs), so oneDNN is off by
default. Set `TF_ENABLE_ONEDNN_OPTS=1` in the environment to opt back in. The
setting only takes effect when `memae_tf` is imported before `tensorflow`.
"""

import os
import sys

if "tensorflow" not in sys.modules:
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
