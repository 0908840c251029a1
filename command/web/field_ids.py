"""Component ids of the Dash faces (/command, /township, /desk), in one place.

The pages hand these to their scripts (assets/command.js, assets/desk.js, assets/worklist.js)
through each page's state store, so the strings are written only here.
"""

# /command: the leader's and duty officer's desk
COMMAND_STATE = "command-state"
COMMAND_STATUS = "command-live-status"
COMMAND_CLOCK = "command-clock"
COMMAND_MAP = "command-map"
COMMAND_LIST = "command-list"
COMMAND_LIST_COUNT = "command-list-count"
COMMAND_FACTS = "command-facts"
COMMAND_ACTIONS = "command-actions"
COMMAND_TREE = "command-tree"
COMMAND_FORM = "command-form"
COMMAND_TIMELINE = "command-timeline"
COMMAND_MESSAGE = "command-message"

# /township: a township's (or a stationed department's) desk
TOWNSHIP_STATE = "township-state"
TOWNSHIP_STATUS = "township-live-status"
TOWNSHIP_NODES = "township-nodes"
TOWNSHIP_NODE_COUNT = "township-node-count"
TOWNSHIP_INCIDENTS = "township-incidents"
TOWNSHIP_MESSAGE = "township-message"
TOWNSHIP_MATTERS = "township-matters"
TOWNSHIP_MATTER_COUNT = "township-matter-count"


# /desk: the one window (无差别受理窗口)
DESK_STATE = "desk-state"
DESK_STATUS = "desk-live-status"
DESK_FORM = "desk-form"
DESK_EARLIER = "desk-earlier"
DESK_QUEUE = "desk-queue"
DESK_QUEUE_COUNT = "desk-queue-count"
DESK_TODO = "desk-todo"
DESK_FIND = "desk-find"
DESK_DETAIL = "desk-detail"
DESK_MESSAGE = "desk-message"

# /command: the statistics view (事项统计) below the desk (assets/command_stats.js)
COMMAND_STATS = "command-stats"
COMMAND_STATS_BY = "command-stats-by"
COMMAND_STATS_PERIOD = "command-stats-period"
COMMAND_STATS_FROM = "command-stats-from"
COMMAND_STATS_TO = "command-stats-to"
COMMAND_STATS_NOTE = "command-stats-note"
COMMAND_STATS_TABLE = "command-stats-table"
COMMAND_STATS_CSV = "command-stats-csv"
COMMAND_STATS_XLSX = "command-stats-xlsx"
COMMAND_MATTERS_CSV = "command-matters-csv"
COMMAND_MATTERS_XLSX = "command-matters-xlsx"
