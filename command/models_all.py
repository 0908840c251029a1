"""Import every table module so the shared metadata knows the whole schema."""

from command.feeds import models as _feeds  # noqa: F401
from command.incidents import models as _incidents  # noqa: F401
from command.units import models as _units  # noqa: F401
from command.alerts import models as _alerts  # noqa: F401
from command.incidents import events as _incident_events  # noqa: F401
from command.orders import models as _orders  # noqa: F401
from command.users import models as _users  # noqa: F401
from command.briefing import models as _briefs  # noqa: F401
from command.matters import models as _matters  # noqa: F401
from command.photos import models as _photos  # noqa: F401
