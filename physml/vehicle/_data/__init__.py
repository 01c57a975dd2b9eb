"""Driving data: the log and its file format, the manoeuvre programme, the drift stabiliser,
`collect`."""
