# todoman reading the task lists that syncd keeps: copy to ~/.config/todoman/config.py.
#
# syncd puts task lists (JMAP TaskList, where the server has them) next to the
# calendars, one directory each, under the pair's `local:` root; `path` is a glob
# over those directories, the same root as the pair's `local:` in
# ~/.config/syncd/config.yaml. Calendar directories hold no VTODO and show as
# empty lists; `todo list NAME` picks one.

path = "~/.local/share/calendars/home/*"
date_format = "%Y-%m-%d"
time_format = "%H:%M"
# default_list = "Tasks"
# default_due = 0  # new tasks have no due date
