"""The connect dialog's back end: live remote sessions and their viewer windows."""
