"""regzoo's shared package: spatial transforms, losses, metrics, networks, data and engines.

Conventions (see the repository README): tensors are channel-first ``(B, C, *spatial)``;
a displacement field (DDF) ``u`` is ``(B, ndim, *spatial)`` in voxel units, channel ``c``
along spatial axis ``c``, and maps a fixed-image point ``p`` to ``p + u(p)``.

``import common`` makes every subpackage available (bundle configs write ``$import common``).
"""

from . import spatial  # noqa: I001  (dependency order: spatial first)
from . import losses, metrics, networks, data, engines, bundle, export, realscan

__version__ = "0.1.0"
__all__ = ["__version__", "bundle", "data", "engines", "export", "losses", "metrics", "networks", "realscan", "spatial"]
