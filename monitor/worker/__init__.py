"""Workers on PostgreSQL: the monitor's steps as tasks any number of processes share."""

from monitor.worker.status import MonitorStatus, monitor_status

__all__ = ["MonitorStatus", "monitor_status"]
