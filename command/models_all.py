"""Import every table module so the shared metadata knows the whole schema."""

from command.feeds import models as _feeds  # noqa: F401
from command.incidents import models as _incidents  # noqa: F401
from command.units import models as _units  # noqa: F401
