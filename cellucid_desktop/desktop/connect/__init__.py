"""The connect dialog's back end: live remote sessions (``sessions``), tunnels and
saved connections (``connections``), remote files the app starts a server for
(``files``), plans and listings for the page (``launch``)."""
