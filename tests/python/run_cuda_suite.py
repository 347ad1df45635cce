"""CTest `python_cuda` (label cuda): the whole Python suite once more with
every jitted program on the GPU (XCS_DEVICE=cuda makes device="auto" pick
it).  Where no CUDA device is usable it prints why and exits 77, which
CTest reports as skipped."""
import os
import subprocess
import sys

import ember.xcs as xcs

cuda = xcs.devices()[1]
if not cuda["available"]:
    print(f"SKIP: no usable CUDA device: {cuda.get('reason')}")
    sys.exit(77)
here = os.path.dirname(os.path.abspath(__file__))
env = dict(os.environ, XCS_DEVICE="cuda")
sys.exit(subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", here] + sys.argv[1:],
                         env=env))
